// A small offline kustomize for machines without kubectl: exactly the
// features deploy/kubernetes uses, in kustomize's order (resources, then
// this level's generators, then its transformers: images, replacements,
// the `transformers:` list), with local-config objects dropped at the
// top. Anything else is refused by name rather than rendered wrongly;
// where kubectl exists, tests/k8s/test_manifests.sh checks that both
// render the same objects.
import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { loadFile, objectId } from "./yamldocs.mjs";

const kustomizationKeys = new Set([
  "apiVersion", "kind", "resources", "images", "configMapGenerator", "replacements", "transformers",
]);
const localConfig = "config.kubernetes.io/local-config";

class RenderError extends Error {}

function fail(where, message) {
  throw new RenderError(`${where}: ${message}`);
}

function readObjects(file) {
  const loaded = loadFile(file);
  if (loaded.errors.length)
    fail(file, loaded.errors.join("; "));
  return loaded.docs.map((d) => d.value);
}

function kustomizationFile(dir) {
  for (const name of ["kustomization.yaml", "kustomization.yml", "Kustomization"])
    if (existsSync(join(dir, name)))
      return join(dir, name);
  return fail(dir, "no kustomization.yaml");
}

// ---- generators ----

function generatedConfigMap(gen, file) {
  const opts = gen.options || {};
  for (const key of Object.keys(gen))
    if (!["name", "namespace", "behavior", "literals", "options"].includes(key))
      fail(file, `configMapGenerator '${gen.name}': '${key}' is not supported offline (use kubectl kustomize)`);
  // A merge keeps the options of the ConfigMap it merges into.
  if (!opts.disableNameSuffixHash && gen.behavior !== "merge")
    fail(file, `configMapGenerator '${gen.name}': name hashing is not supported offline (set options.disableNameSuffixHash)`);
  const data = {};
  for (const literal of gen.literals || []) {
    const eq = String(literal).indexOf("=");
    if (eq < 1)
      fail(file, `configMapGenerator '${gen.name}': literal '${literal}' is not KEY=VALUE`);
    data[literal.slice(0, eq)] = literal.slice(eq + 1);
  }
  const metadata = { name: gen.name };
  if (gen.namespace)
    metadata.namespace = gen.namespace;
  if (opts.annotations)
    metadata.annotations = { ...opts.annotations };
  if (opts.labels)
    metadata.labels = { ...opts.labels };
  return { apiVersion: "v1", kind: "ConfigMap", metadata, data };
}

function runGenerators(objects, gens, file) {
  for (const gen of gens || []) {
    const made = generatedConfigMap(gen, file);
    const behavior = gen.behavior || "create";
    const at = objects.findIndex((o) => o.kind === "ConfigMap" && o.metadata.name === gen.name &&
      (o.metadata.namespace || "") === (gen.namespace || ""));
    if (behavior === "create") {
      if (at >= 0)
        fail(file, `configMapGenerator '${gen.name}' exists already (use behavior: merge)`);
      objects.push(made);
    } else if (behavior === "merge" || behavior === "replace") {
      if (at < 0)
        fail(file, `configMapGenerator '${gen.name}': behavior ${behavior} but no such ConfigMap`);
      const old = objects[at];
      if (behavior === "merge") {
        made.data = { ...old.data, ...made.data };
        made.metadata.annotations = { ...old.metadata.annotations, ...made.metadata.annotations };
        if (old.metadata.labels || made.metadata.labels)
          made.metadata.labels = { ...old.metadata.labels, ...made.metadata.labels };
      }
      objects[at] = made;
    } else {
      fail(file, `configMapGenerator '${gen.name}': unknown behavior '${behavior}'`);
    }
  }
}

// ---- transformers ----

function splitImage(image) {
  const at = image.indexOf("@");
  const base = at >= 0 ? image.slice(0, at) : image;
  const colon = base.lastIndexOf(":");
  const slash = base.lastIndexOf("/");
  if (colon > slash)
    return { name: base.slice(0, colon), tag: base.slice(colon + 1) };
  return { name: base, tag: null };
}

function runImages(objects, images, file) {
  for (const img of images || []) {
    if (img.digest)
      fail(file, `images '${img.name}': digest is not supported offline`);
    for (const obj of objects) {
      const spec = obj.kind === "Pod" ? obj.spec : obj.spec && obj.spec.template && obj.spec.template.spec;
      if (!spec)
        continue;
      for (const c of [...(spec.initContainers || []), ...(spec.containers || [])]) {
        const cur = splitImage(c.image || "");
        if (cur.name !== img.name)
          continue;
        const tag = img.newTag !== undefined ? img.newTag : cur.tag;
        c.image = (img.newName || cur.name) + (tag ? `:${tag}` : "");
      }
    }
  }
}

// "spec.template.spec.containers.[name=x].env" -> steps.
function fieldSteps(fieldPath, file) {
  return fieldPath.split(".").map((step) => {
    const m = /^\[([^=\]]+)=([^\]]*)\]$/.exec(step);
    if (m)
      return { key: m[1], value: m[2] };
    if (step.includes("[") || step === "*")
      fail(file, `field path '${fieldPath}': '${step}' is not supported offline`);
    return step;
  });
}

// The container of the last step of @steps in @obj, and that step.
function walk(obj, steps, fieldPath, where) {
  let node = obj;
  for (let i = 0; i < steps.length - 1; i++) {
    const step = steps[i];
    if (typeof step === "object") {
      if (!Array.isArray(node))
        fail(where, `field path '${fieldPath}': not a list at [${step.key}=${step.value}]`);
      node = node.find((item) => item && String(item[step.key]) === step.value);
    } else {
      node = node == null ? undefined : node[step];
    }
    if (node === undefined || node === null)
      fail(where, `field path '${fieldPath}' not found`);
  }
  const last = steps[steps.length - 1];
  if (typeof last === "object" || node === null || typeof node !== "object" || !(last in node))
    fail(where, `field path '${fieldPath}' not found`);
  return { node, last };
}

function matches(obj, select) {
  return Object.entries(select).every(([k, v]) => {
    if (k === "kind")
      return obj.kind === v;
    if (k === "name")
      return obj.metadata.name === v;
    if (k === "namespace")
      return (obj.metadata.namespace || "") === v;
    throw new RenderError(`replacement select '${k}' is not supported offline`);
  });
}

function runReplacements(objects, replacements, file) {
  for (const rep of replacements || []) {
    if (rep.path)
      fail(file, "replacements from a path are not supported offline");
    const src = rep.source || {};
    const from = objects.filter((o) => matches(o, { kind: src.kind, name: src.name }));
    if (from.length !== 1)
      fail(file, `replacement source ${src.kind}/${src.name}: ${from.length} objects match`);
    const got = walk(from[0], fieldSteps(src.fieldPath, file), src.fieldPath, `${file}: ${objectId(from[0])}`);
    const value = got.node[got.last];
    for (const target of rep.targets || []) {
      const hits = objects.filter((o) => matches(o, target.select || {}));
      if (!hits.length)
        fail(file, `replacement target ${JSON.stringify(target.select)} matches nothing`);
      for (const obj of hits)
        for (const fp of target.fieldPaths || []) {
          const put = walk(obj, fieldSteps(fp, file), fp, `${file}: ${objectId(obj)}`);
          put.node[put.last] = value;
        }
    }
  }
}

function runTransformerList(objects, entries, dir, file) {
  for (const entry of entries || []) {
    const path = resolve(dir, entry);
    const configs = existsSync(path) && statSync(path).isDirectory() ? build(path, false) : readObjects(path);
    for (const cfg of configs) {
      if (cfg.apiVersion !== "builtin" || cfg.kind !== "ReplacementTransformer")
        fail(file, `transformer ${cfg.apiVersion}/${cfg.kind} is not supported offline`);
      runReplacements(objects, cfg.replacements, path);
    }
  }
}

// ---- one kustomization ----

function build(dir, top) {
  const file = kustomizationFile(dir);
  const docs = readObjects(file);
  if (docs.length !== 1)
    fail(file, "must hold one document");
  const k = docs[0];
  for (const key of Object.keys(k))
    if (!kustomizationKeys.has(key))
      fail(file, `'${key}' is not supported offline (use kubectl kustomize)`);
  if (k.kind !== undefined && k.kind !== "Kustomization")
    fail(file, `kind ${k.kind} is not supported offline`);

  const objects = [];
  for (const entry of k.resources || []) {
    const path = resolve(dir, entry);
    if (!existsSync(path))
      fail(file, `resource '${entry}' does not exist`);
    objects.push(...(statSync(path).isDirectory() ? build(path, false) : readObjects(path)));
  }
  runGenerators(objects, k.configMapGenerator, file);
  runImages(objects, k.images, file);
  runReplacements(objects, k.replacements, file);
  runTransformerList(objects, k.transformers, dir, file);

  const ids = new Set();
  for (const obj of objects) {
    const id = `${obj.apiVersion} ${objectId(obj)}`;
    if (ids.has(id))
      fail(file, `${id} is defined twice`);
    ids.add(id);
  }
  if (!top)
    return objects;
  return objects.filter((o) => !(o.metadata.annotations && o.metadata.annotations[localConfig] === "true"));
}

// render(dir) -> { objects } or { error }.
export function render(dir) {
  try {
    return { objects: build(resolve(dir), true) };
  } catch (err) {
    if (err instanceof RenderError)
      return { error: err.message };
    throw err;
  }
}
