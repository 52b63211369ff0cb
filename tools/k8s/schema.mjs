// Offline validation of Kubernetes objects: each object is checked against
// the OpenAPI schema of its apiVersion and kind as kubernetes-models ships it
// (Kubernetes 1.33), plus what those schemas let through:
//   - unknown fields (the schemas allow any extra key, and a misspelt field
//     is the most common manifest mistake: kubectl would drop or refuse it);
//   - a few rules the API server enforces beyond the schema (volume mounts
//     of undefined volumes, a selector that misses the template's labels,
//     two containers with one name, an object without a name).
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const modelsDir = join(dirname(fileURLToPath(import.meta.url)), "node_modules", "kubernetes-models");
const apiVersionForm = /^(?:[a-z0-9]([a-z0-9.-]*[a-z0-9])?\/)?v[0-9]+(?:(?:alpha|beta)[0-9]+)?$/;

// ---- which model: apiVersion + kind -> a kubernetes-models class ----

function versionDir(apiVersion) {
  return join(modelsDir, ...apiVersion.split("/"));
}

// Every GA apiVersion kubernetes-models knows: "v1", "apps/v1", ...
function knownApiVersions() {
  const out = [];

  for (const top of readdirSync(modelsDir, { withFileTypes: true })) {
    if (!top.isDirectory() || top.name.startsWith("_"))
      continue;
    if (/^v[0-9]/.test(top.name)) {
      out.push(top.name);
      continue;
    }
    for (const ver of readdirSync(join(modelsDir, top.name), { withFileTypes: true }))
      if (ver.isDirectory() && !/(alpha|beta)[0-9]+$/.test(ver.name))
        out.push(`${top.name}/${ver.name}`);
  }
  return out;
}

async function importKind(apiVersion, kind) {
  if (!/^[A-Z][A-Za-z0-9]*$/.test(kind) || !existsSync(join(versionDir(apiVersion), `${kind}.mjs`)))
    return null;
  const mod = await import(`kubernetes-models/${apiVersion}/${kind}`);
  const cls = mod[kind];
  // DaemonSetSpec and friends have modules too; only objects have a kind.
  return cls && cls.kind === kind && cls.apiVersion === apiVersion ? cls : null;
}

function editDistance(a, b) {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);

  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

// " (did you mean 'x'?)" for the closest of @names, or "".
export function suggest(word, names) {
  let best = null;
  let bestCost = Math.max(2, Math.floor(word.length / 3)) + 1;

  for (const name of names) {
    const cost = name.toLowerCase() === word.toLowerCase() ? 0 : editDistance(word, name);
    if (cost < bestCost) {
      best = name;
      bestCost = cost;
    }
  }
  return best === null ? "" : ` (did you mean '${best}'?)`;
}

// modelFor() -> { cls }, or { field, error } saying what is wrong with the pair.
export async function modelFor(apiVersion, kind) {
  if (typeof apiVersion !== "string" || !apiVersion)
    return { field: "apiVersion", error: "missing apiVersion" };
  if (typeof kind !== "string" || !kind)
    return { field: "kind", error: "missing kind" };
  const known = apiVersionForm.test(apiVersion) && existsSync(join(versionDir(apiVersion), "index.mjs"));
  const stable = !/(alpha|beta)[0-9]+$/.test(apiVersion);
  if (known && stable) {
    const cls = await importKind(apiVersion, kind);
    if (cls)
      return { cls };
  }
  // Where else is this kind? (a wrong apiVersion for a real kind)
  const homes = [];
  for (const version of knownApiVersions())
    if (version !== apiVersion && (await importKind(version, kind)))
      homes.push(version);
  const use = homes.length ? ` (it is served as ${homes.join(", ")})` : "";
  // kubernetes-models keeps every beta it ever had; most are no longer
  // served, the others are off by default: only GA versions are taken.
  if (known && !stable)
    return { field: "apiVersion", error: `${apiVersion} is not a GA API version (betas are removed or off by default)${use}` };
  if (!known)
    return {
      field: "apiVersion",
      error: `unknown apiVersion '${apiVersion}'` + (use ? ` for kind ${kind}${use}` : suggest(apiVersion, knownApiVersions())),
    };
  if (homes.length)
    return { field: "apiVersion", error: `kind ${kind} is not in ${apiVersion} (it is served as ${homes.join(", ")})` };
  const kinds = readdirSync(versionDir(apiVersion))
    .filter((f) => f.endsWith(".mjs") && f !== "index.mjs")
    .map((f) => f.slice(0, -4));
  return { field: "kind", error: `unknown kind '${kind}' in ${apiVersion}${suggest(kind, kinds)}` };
}

// ---- which fields the schema knows ----

// The compiled validators read each property their schema names
// (`void 0 === data.field`) and enumerate only maps (labels, data,
// resource lists). So a proxy that records what the validator read tells,
// for every mapping it entered, which keys the schema knows.
function tracked(value, seen) {
  if (value === null || typeof value !== "object")
    return value;
  let info = seen.get(value);
  if (!info) {
    info = { read: new Set(), enumerated: false, proxy: null };
    info.proxy = new Proxy(value, {
      get(target, key, receiver) {
        if (typeof key === "string")
          info.read.add(key);
        return tracked(Reflect.get(target, key, receiver), seen);
      },
      has(target, key) {
        if (typeof key === "string")
          info.read.add(key);
        return Reflect.has(target, key);
      },
      ownKeys(target) {
        info.enumerated = true;
        return Reflect.ownKeys(target);
      },
    });
    seen.set(value, info);
  }
  return info.proxy;
}

// Keys of mappings the validator entered and never read. A mapping it
// enumerated is a map (any key is valid); one it read nothing of was not
// entered (beneath a type error) or is free-form: neither is judged.
function unknownFields(value, path, seen, out) {
  if (Array.isArray(value)) {
    value.forEach((item, i) => unknownFields(item, [...path, i], seen, out));
    return;
  }
  if (value === null || typeof value !== "object")
    return;
  const info = seen.get(value);
  const judged = info && !info.enumerated && info.read.size > 0;
  for (const [key, child] of Object.entries(value)) {
    if (judged && !info.read.has(key)) {
      const known = [...info.read].filter((k) => !(k in value));
      out.push({ path, key, message: `unknown field '${key}'${suggest(key, known)}` });
      continue;
    }
    unknownFields(child, [...path, key], seen, out);
  }
}

// ---- schema errors, said plainly ----

function pathOf(obj, pointer) {
  const path = [];
  let node = obj;

  for (const raw of pointer.split("/").slice(1)) {
    const step = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    const key = Array.isArray(node) && /^[0-9]+$/.test(step) ? Number(step) : step;
    path.push(key);
    node = node == null ? undefined : node[key];
  }
  return path;
}

function schemaErrors(obj, errors) {
  const byPath = new Map();

  for (const err of errors) {
    const list = byPath.get(err.instancePath) || [];
    list.push(err);
    byPath.set(err.instancePath, list);
  }
  const out = [];
  for (const [pointer, list] of byPath) {
    const path = pathOf(obj, pointer);
    // int-or-string and friends: one line, not one per alternative.
    if (list.some((e) => e.keyword === "oneOf" || e.keyword === "anyOf")) {
      const types = list.filter((e) => e.keyword === "type").map((e) => e.params.type);
      out.push({ path, message: types.length ? `must be ${types.join(" or ")}` : "matches none of its allowed forms" });
      continue;
    }
    for (const e of list) {
      let message = e.message || e.keyword;
      if (e.keyword === "required")
        message = `missing required field '${e.params.missingProperty}'`;
      if (e.keyword === "enum")
        message = `must be one of ${e.params.allowedValues.map((v) => JSON.stringify(v)).join(", ")}`;
      out.push({ path, message });
    }
  }
  return out;
}

// ---- what the API server checks beyond the schema ----

function podTemplateRules(spec, path, out) {
  if (!spec || typeof spec !== "object")
    return;
  const volumes = new Set((spec.volumes || []).map((v) => v && v.name));
  const names = new Map();
  for (const group of ["initContainers", "containers"]) {
    (spec[group] || []).forEach((c, i) => {
      if (!c || typeof c !== "object")
        return;
      if (names.has(c.name))
        out.push({ path: [...path, group, i, "name"], message: `duplicate container name '${c.name}'` });
      names.set(c.name, true);
      (c.volumeMounts || []).forEach((m, j) => {
        if (m && !volumes.has(m.name))
          out.push({
            path: [...path, group, i, "volumeMounts", j, "name"],
            message: `no volume named '${m.name}' in the pod${suggest(String(m.name), [...volumes])}`,
          });
      });
    });
  }
}

function apiRules(obj, out) {
  if (!obj.metadata || typeof obj.metadata.name !== "string" || !obj.metadata.name)
    out.push({ path: ["metadata"], message: "missing required field 'name'" });
  const spec = obj.spec;
  if (!spec || typeof spec !== "object")
    return;
  if (obj.kind === "Pod")
    podTemplateRules(spec, ["spec"], out);
  if (!spec.template || typeof spec.template !== "object")
    return;
  podTemplateRules(spec.template.spec, ["spec", "template", "spec"], out);
  const want = (spec.selector && spec.selector.matchLabels) || {};
  const have = (spec.template.metadata && spec.template.metadata.labels) || {};
  for (const [k, v] of Object.entries(want))
    if (have[k] !== v)
      out.push({
        path: ["spec", "selector", "matchLabels", k],
        message: `selector does not match the template's labels (${k}=${v})`,
      });
}

// validateObject(obj) -> [{ path, key?, message }], [] when valid.
export async function validateObject(obj) {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj))
    return [{ path: [], message: `a document must be a mapping (an object), not ${Array.isArray(obj) ? "a list" : typeof obj}` }];
  const model = await modelFor(obj.apiVersion, obj.kind);
  if (model.error)
    return [{ path: [model.field], message: model.error }];

  const seen = new Map();
  const out = [];
  try {
    model.cls.prototype.validate.call(tracked(obj, seen));
  } catch (err) {
    if (!Array.isArray(err.errors))
      throw err;
    out.push(...schemaErrors(obj, err.errors));
  }
  unknownFields(obj, [], seen, out);
  apiRules(obj, out);
  return out;
}
