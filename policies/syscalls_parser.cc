// Parses the `syscalls:` section (default action, allow/deny/log lists, argument conditions) and
// the `unsafe:` section (justified exemptions from the mandatory floor).
#include "policies/kernel_names.h"
#include "policies/layer.h"
#include "policies/syscall_groups.h"
#include "policies/yaml_fields.h"

namespace airlock::policies {
namespace {

const std::vector<std::string> kSyscallKeys{"default_action", "deny_action", "allow", "deny",
                                            "log"};
const std::vector<std::string> kEntryKeys{"syscall", "action", "family"};
const std::vector<std::string> kUnsafeKeys{"syscall", "justification"};

// " — did you mean ...", unless the file's errors are only counted by now.
std::string suggestion(const std::string& word, const std::vector<std::string>& candidates,
                       const ErrorList& errors) {
  return errors.full() ? "" : did_you_mean(word, candidates);
}

// Checks a syscall or group name; reports an unknown one with the nearest known name.
bool known_name(const std::string& name, const YAML::Mark& mark, ErrorList& errors) {
  if (name.starts_with('@')) {
    if (find_group(name) != nullptr) return true;
    errors.add(mark,
               "unknown syscall group '" + name + "'" + suggestion(name, group_names(), errors));
    return false;
  }
  if (is_known_syscall(name)) return true;
  errors.add(mark,
             "unknown syscall '" + name + "'" + suggestion(name, native_syscall_names(), errors));
  return false;
}

std::optional<Action> action_at(const YAML::Node& value, const std::string& key,
                                ErrorList& errors) {
  auto text = scalar_text(value, key, "an action such as errno(EPERM)", errors);
  if (!text) return std::nullopt;
  auto parsed = parse_action(*text);
  if (const auto* message = std::get_if<std::string>(&parsed)) {
    errors.add(value.Mark(), key + ": " + *message);
    return std::nullopt;
  }
  return std::get<Action>(parsed);
}

void parse_families(const YAML::Node& value, SyscallEntry& entry, ErrorList& errors) {
  auto items = scalar_list(value, "family", "address families such as AF_INET", errors);
  if (!items) return;
  if (items->empty()) errors.add(value.Mark(), "family: the list is empty");
  for (const auto& [name, mark] : *items) {
    auto family = address_family_from_name(name);
    if (!family) {
      errors.add(mark, "unknown address family '" + name + "'" +
                           suggestion(name, address_family_names(), errors));
    } else if (std::find(entry.families.begin(), entry.families.end(), *family) !=
               entry.families.end()) {
      errors.add(mark, "address family '" + name + "' is listed twice");
    } else {
      entry.families.push_back(*family);
    }
  }
}

void parse_entry(const YAML::Node& item, const std::string& list, PolicyLayer& layer,
                 ErrorList& errors) {
  SyscallEntry entry;
  entry.list = list;
  entry.mark = item.Mark();
  if (item.IsScalar()) {
    entry.name = item.Scalar();
  } else if (item.IsMap()) {
    YAML::Mark family_mark;
    bool has_family = false;
    for (const auto& [key_node, value] : checked_entries(item, kEntryKeys, errors)) {
      const std::string key = key_node.Scalar();
      if (key == "syscall") {
        auto text = scalar_text(value, key, "a syscall or group name", errors);
        if (!text) return;
        entry.name = *text;
        entry.mark = value.Mark();
      } else if (key == "action") {
        if (list != "deny") {
          errors.add(key_node.Mark(),
                     "only deny entries take an action; '" + list + "' entries always " + list);
          return;
        }
        entry.action = action_at(value, key, errors);
        if (!entry.action) return;
        if (entry.action->kind == sandbox::SyscallAction::allow ||
            entry.action->kind == sandbox::SyscallAction::log) {
          errors.add(value.Mark(), "action: a deny entry must kill or fail with an errno; put '" +
                                       entry.name + "' under " + format_action(*entry.action));
          return;
        }
      } else if (key == "family") {
        family_mark = value.Mark();
        has_family = true;
        parse_families(value, entry, errors);
      }
    }
    if (entry.name.empty()) {
      errors.add(item.Mark(), "a syscall entry needs 'syscall'");
      return;
    }
    if (has_family && entry.name != "socket" && entry.name != "socketpair") {
      errors.add(family_mark, "family: only socket and socketpair have an address family");
      return;
    }
  } else {
    errors.add(item.Mark(), "expected a syscall name, a group or a map with 'syscall' in '" + list +
                                "', got " + kind_name(item));
    return;
  }
  if (!known_name(entry.name, entry.mark, errors)) return;
  layer.syscalls.push_back(std::move(entry));
}

}  // namespace

void parse_syscalls_section(const YAML::Node& node, PolicyLayer& layer, ErrorList& errors) {
  if (!expect_map(node, "syscalls", errors)) return;
  for (const auto& [key_node, value] : checked_entries(node, kSyscallKeys, errors)) {
    const std::string key = key_node.Scalar();
    if (key == "default_action") {
      layer.default_action = action_at(value, key, errors);
    } else if (key == "deny_action") {
      layer.deny_action = action_at(value, key, errors);
      if (layer.deny_action && (layer.deny_action->kind == sandbox::SyscallAction::allow ||
                                layer.deny_action->kind == sandbox::SyscallAction::log)) {
        errors.add(value.Mark(), "deny_action: expected kill or errno(NAME), got '" +
                                     format_action(*layer.deny_action) + "'");
        layer.deny_action.reset();
      }
    } else {
      if (value.IsNull()) continue;
      if (!value.IsSequence()) {
        errors.add(value.Mark(), "expected a list of syscalls and groups for '" + key + "', got " +
                                     kind_name(value));
        continue;
      }
      for (const auto& item : value) parse_entry(item, key, layer, errors);
    }
  }
}

void parse_unsafe_section(const YAML::Node& node, PolicyLayer& layer, ErrorList& errors) {
  if (node.IsNull()) return;
  if (!node.IsSequence()) {
    errors.add(node.Mark(),
               "expected a list of entries with 'syscall' and 'justification' for "
               "'unsafe', got " +
                   kind_name(node));
    return;
  }
  for (const auto& item : node) {
    if (!expect_map(item, "unsafe", errors)) continue;
    UnsafeDecl decl;
    decl.mark = item.Mark();
    bool has_syscall = false;
    bool has_justification = false;
    bool ok = true;
    for (const auto& [key_node, value] : checked_entries(item, kUnsafeKeys, errors)) {
      const std::string key = key_node.Scalar();
      auto text =
          scalar_text(value, key, key == "syscall" ? "a syscall name" : "a sentence", errors);
      if (!text) {
        ok = false;
      } else if (key == "syscall") {
        decl.syscall = *text;
        decl.mark = value.Mark();
        has_syscall = true;
      } else {
        decl.justification = *text;
        has_justification = true;
        if (text->find_first_not_of(" \t\r\n") == std::string::npos) {
          errors.add(value.Mark(),
                     "unsafe: the justification is empty; say why the floor must "
                     "be lifted");
          ok = false;
        }
      }
    }
    if (!has_syscall) errors.add(item.Mark(), "unsafe: an entry needs 'syscall'");
    if (!has_justification) {
      errors.add(item.Mark(),
                 "unsafe: an entry needs 'justification' (why the floor must be "
                 "lifted)");
    }
    if (!ok || !has_syscall || !has_justification) continue;
    if (decl.syscall.starts_with('@')) {
      errors.add(decl.mark, "unsafe: name one syscall, not a group ('" + decl.syscall + "')");
      continue;
    }
    if (!known_name(decl.syscall, decl.mark, errors)) continue;
    layer.unsafe.push_back(std::move(decl));
  }
}

}  // namespace airlock::policies
