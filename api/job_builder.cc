#include "api/job_builder.h"

#include <algorithm>

#include "api/wire/translate.h"
#include "policies/canonical.h"
#include "policies/egress.h"
#include "api/wire/wire.h"

namespace airlock::api {

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out.empty() ? "(none)" : out;
}

void report_forbidden(const ApiContext& context, const Identity& identity, const std::string& code,
                      const std::string& path) {
  if (context.on_refused) {
    context.on_refused({403, code, identity.key_name, identity.client, "POST", path});
  }
}

std::variant<std::shared_ptr<const policies::Policy>, std::string> narrowed_policy(
    std::shared_ptr<const policies::Policy> policy, const Identity& identity,
    const std::optional<std::vector<std::string>>& asked) {
  if (!policy->egress.enabled() || (!identity.egress && !asked)) return policy;
  auto narrowed = std::make_shared<policies::Policy>(*policy);
  if (identity.egress) {
    // The key's list may name destinations of other policies: only this policy's count.
    std::vector<std::string> kept;
    for (const policies::EgressRule& rule : policy->egress.allow) {
      const std::string destination = policies::destination_text(rule);
      if (std::find(identity.egress->begin(), identity.egress->end(), destination) !=
          identity.egress->end()) {
        kept.push_back(destination);
      }
    }
    policies::narrow_egress(narrowed->egress, kept, narrowed->name);
  }
  if (asked) {
    if (auto problem = policies::narrow_egress(narrowed->egress, asked, narrowed->name)) {
      return *problem;
    }
  }
  if (!narrowed->egress.enabled()) narrowed->network = "loopback";  // its sockets stay local
  narrowed->canonical = policies::canonical_text(*narrowed);
  narrowed->hash = "sha256:" + policies::policy_digest(narrowed->canonical);
  return std::shared_ptr<const policies::Policy>(std::move(narrowed));
}

std::vector<std::string> usable_policies(const ApiContext& context, const Identity& identity) {
  std::vector<std::string> names = context.policies.names();
  std::erase_if(names, [&](const std::string& name) { return !identity.may_use(name); });
  return names;
}

std::variant<Job, JobRefusal> build_job(const ApiContext& context, const Identity& identity,
                                        const v1::ExecutionRequest& message) {
  Job job;
  if (auto problem = to_run_request(message, context.config.max_file_bytes, job.request)) {
    return JobRefusal{400, *problem};
  }
  const std::string policy_name =
      message.policy().empty() ? context.config.default_policy : message.policy();
  std::vector<std::string> usable = usable_policies(context, identity);
  // Checked before existence, so a key cannot probe which policy names exist.
  if (!identity.may_use(policy_name)) {
    return JobRefusal{403, make_error("policy_forbidden",
                                      "this API key may not use policy \"" + policy_name +
                                          "\"; it may use: " + joined(usable),
                                      "policy", usable)};
  }
  job.policy = context.policies.get(policy_name);
  if (!job.policy) {
    return JobRefusal{
        400, make_error("unknown_policy",
                        "no policy named \"" + policy_name + "\"; valid: " + joined(usable),
                        "policy", usable)};
  }
  std::optional<std::vector<std::string>> asked;
  if (message.has_egress()) {
    asked.emplace(message.egress().allow().begin(), message.egress().allow().end());
  }
  auto narrowed = narrowed_policy(job.policy, identity, asked);
  if (auto* problem = std::get_if<std::string>(&narrowed)) {
    return JobRefusal{400, make_error("invalid_request", "egress: " + *problem, "egress")};
  }
  job.policy = std::get<std::shared_ptr<const policies::Policy>>(narrowed);
  const policies::Policy& policy = *job.policy;
  const runner::RuntimeTable& runtimes = context.executor.runtimes();
  const std::string& runtime = job.request.runtime;
  if (!runtimes.contains(runtime) || !policy.allows_runtime(runtime)) {
    std::vector<std::string> valid;
    for (const auto& [name, unused] : runtimes) {
      if (policy.allows_runtime(name)) valid.push_back(name);
    }
    std::string why =
        runtimes.contains(runtime)
            ? "policy \"" + policy.name + "\" does not allow runtime \"" + runtime + "\""
            : "no runtime named \"" + runtime + "\"";
    return JobRefusal{
        400, make_error("unknown_runtime", why + "; valid with this policy: " + joined(valid),
                        "runtime", valid)};
  }
  if (auto problem = context.executor.validate(job.request, policy)) {
    return JobRefusal{400,
                      make_error("invalid_request",
                                 problem->field.empty() ? problem->message
                                                        : problem->field + ": " + problem->message,
                                 problem->field)};
  }
  job.owner = identity.key_name;
  job.client = identity.client;
  return job;
}

}  // namespace airlock::api
