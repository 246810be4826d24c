// Validates Kubernetes manifests the way a cluster would before applying them, without a cluster:
//
//   node validate.mjs [--metrics FILE] DIR...
//
// Each DIR is a kustomization (a directory with kustomization.yaml). It is rendered (resources,
// namespace, images and strategic-merge patches: the subset of kustomize airlock's manifests use;
// any other kustomization field is an error rather than silently ignored), and every object is
// checked against the Kubernetes OpenAPI schema of its apiVersion and kind (the kubernetes-models
// package: types, required fields, enums, formats). Then the rules airlock's pod must keep: no
// privileged container, hostUsers: false, procMount: Unmasked, a Localhost seccomp profile,
// probes on /readyz and /healthz, a preStop hook, a StatefulSet whose pods pass their names as
// --replica with a headless Service, an unprivileged balancer with its site files, a
// PodDisruptionBudget, and an autoscaler whose metrics airlock exports (their names are looked
// up in --metrics, api/metrics.cc).
// Where kubectl is installed, its own `kubectl kustomize` must render the same objects.
// With --write-config OUT, what the pod's airlock reads is written under OUT for airlock itself to
// check: airlock.yaml (the ConfigMap's, then the Secret's api_keys, as the container's command
// joins them), policies/ (the site's policies ConfigMap) and balancer/ (the balancer's site files).
// Exit 0 when every DIR passes; 1 with one line per problem otherwise.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseAllDocuments } from "yaml";

const problems = [];
const problem = (where, message) => problems.push(`${where}: ${message}`);

function readDocuments(file) {
  const objects = [];
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    if (doc.errors.length) {
      problem(file, doc.errors.map((e) => e.message).join("; "));
      continue;
    }
    const value = doc.toJS();
    if (value !== null) objects.push({ object: value, file });
  }
  return objects;
}

// --- Rendering: the part of kustomize these manifests use. ----------------------------------------

const supportedKustomizationFields = new Set([
  "apiVersion", "kind", "namespace", "resources", "images", "patches",
]);

const isMap = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

// Strategic merge as the core types define it for what these manifests patch: maps merge, lists of
// named items (containers, volumes, ports, env) merge by name, other lists and scalars replace.
function merge(base, patch) {
  if (isMap(base) && isMap(patch)) {
    const out = { ...base };
    for (const [key, value] of Object.entries(patch)) {
      out[key] = key in base ? merge(base[key], value) : value;
    }
    return out;
  }
  const named = (list) => Array.isArray(list) && list.length && list.every((i) => isMap(i) && "name" in i);
  if (named(base) && named(patch)) {
    const out = base.map((item) => {
      const match = patch.find((p) => p.name === item.name);
      return match ? merge(item, match) : item;
    });
    for (const item of patch) if (!base.some((b) => b.name === item.name)) out.push(item);
    return out;
  }
  return patch;
}

const clusterScoped = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass"]);

function podSpecOf(object) {
  return object?.spec?.template?.spec;
}

function render(dir) {
  const file = join(dir, "kustomization.yaml");
  if (!existsSync(file)) {
    problem(dir, "no kustomization.yaml");
    return [];
  }
  const [entry] = readDocuments(file);
  const k = entry?.object ?? {};
  for (const key of Object.keys(k)) {
    if (!supportedKustomizationFields.has(key)) {
      problem(file, `kustomization field "${key}" is not one this validator renders`);
    }
  }
  let objects = [];
  for (const resource of k.resources ?? []) {
    const path = resolve(dir, resource);
    if (!existsSync(path)) {
      problem(file, `resource ${resource} does not exist`);
    } else if (statSync(path).isDirectory()) {
      objects.push(...render(path));
    } else {
      objects.push(...readDocuments(path));
    }
  }
  for (const { path } of k.patches ?? []) {
    for (const { object: patch } of readDocuments(resolve(dir, path))) {
      const target = objects.find((o) => o.object.kind === patch.kind &&
                                         o.object.metadata?.name === patch.metadata?.name);
      if (!target) {
        problem(join(dir, path), `patches ${patch.kind}/${patch.metadata?.name}, which no resource is`);
        continue;
      }
      target.object = merge(target.object, patch);
    }
  }
  for (const image of k.images ?? []) {
    for (const { object } of objects) {
      for (const c of podSpecOf(object)?.containers ?? []) {
        const [name, tag] = c.image.split(":");
        if (name !== image.name) continue;
        c.image = `${image.newName ?? name}:${image.newTag ?? tag ?? "latest"}`;
      }
    }
  }
  if (k.namespace) {
    for (const { object } of objects) {
      if (!clusterScoped.has(object.kind)) object.metadata = { ...object.metadata, namespace: k.namespace };
    }
  }
  return objects;
}

// --- The schema check. ----------------------------------------------------------------------------

async function validateSchema({ object, file }) {
  const where = `${file}: ${object.kind}/${object.metadata?.name}`;
  if (typeof object.apiVersion !== "string" || typeof object.kind !== "string") {
    problem(file, "an object without apiVersion and kind");
    return;
  }
  let model;
  try {
    const group = await import(`kubernetes-models/${object.apiVersion}`);
    model = group[object.kind];
  } catch {
    model = undefined;
  }
  if (!model) {
    problem(where, `no Kubernetes schema for apiVersion ${object.apiVersion}, kind ${object.kind}`);
    return;
  }
  try {
    new model(object).validate();
  } catch (e) {
    problem(where, `does not match the ${object.apiVersion} ${object.kind} schema: ${e.message}`);
  }
}

// --- airlock's own rules. -------------------------------------------------------------------------

// Workloads (StatefulSet, Deployment) whose pod runs a container of this name.
function workloadsRunning(objects, container) {
  return objects.filter(({ object }) => ["StatefulSet", "Deployment"].includes(object.kind) &&
    (podSpecOf(object)?.containers ?? []).some((c) => c.name === container));
}

function checkAirlock(dir, objects, metricsSource) {
  const of = (kind) => objects.filter((o) => o.object.kind === kind);
  const workloads = workloadsRunning(objects, "airlock");
  if (!workloads.length) problem(dir, "no workload runs a container named airlock");
  for (const { object, file } of workloads) {
    const where = `${file}: ${object.kind}/${object.metadata?.name}`;
    const pod = podSpecOf(object) ?? {};
    checkReplicaNames(where, object, objects);
    if (pod.hostUsers !== false) problem(where, "hostUsers must be false (a user namespace per pod)");
    const podSeccomp = pod.securityContext?.seccompProfile;
    for (const c of [...(pod.initContainers ?? []), ...(pod.containers ?? [])]) {
      const at = `${where} container ${c.name}`;
      const sc = c.securityContext ?? {};
      if (sc.privileged !== false) problem(at, "privileged must be stated false");
      if (sc.procMount !== "Unmasked") problem(at, "procMount must be Unmasked (nested pid namespaces mount /proc)");
      const seccomp = sc.seccompProfile ?? podSeccomp;
      if (seccomp?.type !== "Localhost" || !seccomp.localhostProfile) {
        problem(at, "needs a Localhost seccomp profile (deploy/container/seccomp.json)");
      }
      if ((sc.capabilities?.drop ?? []).join() !== "ALL") problem(at, "capabilities must drop ALL, then add");
    }
    for (const c of pod.containers ?? []) {
      const at = `${where} container ${c.name}`;
      if (c.readinessProbe?.httpGet?.path !== "/readyz") problem(at, "readinessProbe must GET /readyz");
      if (c.livenessProbe?.httpGet?.path !== "/healthz") problem(at, "livenessProbe must GET /healthz");
      if (!c.lifecycle?.preStop) problem(at, "needs a preStop hook (drain before SIGTERM)");
    }
  }
  checkBalancer(dir, objects);
  if (!of("PodDisruptionBudget").length) problem(dir, "no PodDisruptionBudget");
  const autoscalers = of("HorizontalPodAutoscaler");
  if (!autoscalers.length) problem(dir, "no HorizontalPodAutoscaler");
  for (const { object, file } of autoscalers) {
    for (const metric of object.spec?.metrics ?? []) {
      const name = metric.pods?.metric?.name ?? metric.object?.metric?.name ?? metric.external?.metric?.name;
      if (name && metricsSource !== null && !metricsSource.includes(`"${name} `)) {
        problem(`${file}: HorizontalPodAutoscaler/${object.metadata?.name}`,
                `metric ${name} is not one airlock exports (api/metrics.cc)`);
      }
    }
  }
}

// Sessions live on one replica, named in their ids: each replica needs a stable name of its own
// (a StatefulSet's pod name, passed as --replica) that the balancer can reach through a headless
// Service.
function checkReplicaNames(where, object, objects) {
  if (object.kind !== "StatefulSet") {
    problem(where, "must be a StatefulSet: each replica needs a stable name for the ids of its sessions");
    return;
  }
  const service = objects.find((o) => o.object.kind === "Service" &&
                                      o.object.metadata?.name === object.spec?.serviceName)?.object;
  if (!service) problem(where, `serviceName ${object.spec?.serviceName} names no Service`);
  else if (service.spec?.clusterIP !== "None") problem(where, `Service ${service.metadata.name} must be headless (clusterIP: None)`);
  const container = podSpecOf(object).containers.find((c) => c.name === "airlock");
  const command = [...(container.command ?? []), ...(container.args ?? [])].join(" ");
  const podName = (container.env ?? []).find((e) => e.valueFrom?.fieldRef?.fieldPath === "metadata.name");
  if (!podName || !command.includes(`--replica "$${podName.name}"`) && !command.includes(`--replica $(${podName.name})`)) {
    problem(`${where} container airlock`, "must pass its pod's name as --replica (env from metadata.name)");
  }
}

// The balancer: an unprivileged nginx with the site's part of the routing in a ConfigMap.
function checkBalancer(dir, objects) {
  const balancers = workloadsRunning(objects, "balancer");
  if (!balancers.length) problem(dir, "no workload runs a container named balancer (the session router)");
  for (const { object, file } of balancers) {
    const pod = podSpecOf(object) ?? {};
    for (const c of pod.containers ?? []) {
      const at = `${file}: ${object.kind}/${object.metadata?.name} container ${c.name}`;
      const sc = c.securityContext ?? {};
      if ((sc.runAsNonRoot ?? pod.securityContext?.runAsNonRoot) !== true) problem(at, "must run as non-root");
      if (sc.privileged !== false || sc.allowPrivilegeEscalation !== false) {
        problem(at, "privileged and allowPrivilegeEscalation must be stated false");
      }
      if ((sc.capabilities?.drop ?? []).join() !== "ALL" || (sc.capabilities?.add ?? []).length) {
        problem(at, "must drop ALL capabilities and add none");
      }
      if (!c.readinessProbe) problem(at, "needs a readinessProbe");
    }
  }
  const site = objects.find((o) => o.object.kind === "ConfigMap" && o.object.metadata?.name === "airlock-balancer");
  for (const name of ["replicas.conf", "listen.conf"]) {
    if (typeof site?.object.data?.[name] !== "string") problem(dir, `ConfigMap airlock-balancer has no ${name}`);
  }
}

// --- kubectl, where installed, renders the same. --------------------------------------------------

function canonical(value) {
  if (Array.isArray(value)) return value.map(canonical);
  if (isMap(value)) {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical(value[k])]));
  }
  return value;
}

function compareWithKubectl(dir, objects) {
  let text;
  try {
    text = execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    if (e.code === "ENOENT") return false;
    problem(dir, `kubectl kustomize failed: ${e.stderr ?? e.message}`);
    return true;
  }
  const key = (o) => `${o.kind}/${o.metadata?.namespace ?? ""}/${o.metadata?.name}`;
  const theirs = new Map(parseAllDocuments(text).map((d) => d.toJS()).filter(Boolean).map((o) => [key(o), o]));
  const ours = new Map(objects.map(({ object }) => [key(object), object]));
  for (const k of new Set([...theirs.keys(), ...ours.keys()])) {
    if (JSON.stringify(canonical(theirs.get(k))) !== JSON.stringify(canonical(ours.get(k)))) {
      problem(dir, `${k} renders differently here than with kubectl kustomize`);
    }
  }
  return true;
}

// --- Main. -----------------------------------------------------------------------------------------

const args = process.argv.slice(2);
let metricsSource = null;
let configOut = null;
const dirs = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--metrics") metricsSource = readFileSync(args[++i], "utf8");
  else if (args[i] === "--write-config") configOut = args[++i];
  else dirs.push(args[i]);
}

function writeConfig(objects, out) {
  const find = (kind, name) => objects.find((o) => o.object.kind === kind && o.object.metadata?.name === name)?.object;
  const config = find("ConfigMap", "airlock-config")?.data?.["airlock.yaml"];
  const keys = find("Secret", "airlock-api-keys")?.stringData?.["api_keys.yaml"];
  if (config === undefined || keys === undefined) {
    problem(out, "no ConfigMap airlock-config with airlock.yaml or Secret airlock-api-keys with api_keys.yaml");
    return;
  }
  mkdirSync(join(out, "policies"), { recursive: true });
  writeFileSync(join(out, "airlock.yaml"), config + keys);
  for (const [name, text] of Object.entries(find("ConfigMap", "airlock-policies")?.data ?? {})) {
    writeFileSync(join(out, "policies", name), text);
  }
  mkdirSync(join(out, "balancer"), { recursive: true });
  for (const [name, text] of Object.entries(find("ConfigMap", "airlock-balancer")?.data ?? {})) {
    writeFileSync(join(out, "balancer", name), text);
  }
}
if (!dirs.length) {
  console.error("usage: node validate.mjs [--metrics api/metrics.cc] KUSTOMIZATION_DIR...");
  process.exit(2);
}
for (const dir of dirs) {
  const before = problems.length;
  const objects = render(dir);
  for (const o of objects) await validateSchema(o);
  checkAirlock(dir, objects, metricsSource);
  const kubectl = compareWithKubectl(dir, objects);
  if (configOut) writeConfig(objects, join(configOut, String(dirs.indexOf(dir))));
  const kinds = objects.map((o) => o.object.kind).join(", ");
  const verdict = problems.length === before ? "valid" : `${problems.length - before} problem(s)`;
  console.log(`${dir}: ${objects.length} objects (${kinds}): ${verdict}` +
              (kubectl ? "; kubectl kustomize agrees" : "; kubectl not installed, not compared"));
}
for (const p of problems) console.log(`  ${p}`);
process.exit(problems.length ? 1 : 0);
