// Multi-document YAML as kubectl reads it: YAML 1.1 scalars (sigs.k8s.io/yaml
// is go-yaml v2, so `yes` is a boolean), unique keys, and every document
// kept with its source so that a finding can name the line it is about.
import { readFileSync } from "node:fs";
import { LineCounter, isMap, isSeq, parseAllDocuments } from "yaml";

// loadDocs(text, label) -> { docs: [{ value, doc, index }], errors: [string] }
// Empty documents (only comments, or `---` alone) are left out; syntax
// errors come back as "LABEL:LINE:COL: message" lines.
export function loadDocs(text, label) {
  const lines = new LineCounter();
  const parsed = parseAllDocuments(text, { lineCounter: lines, version: "1.1", prettyErrors: false });
  const out = { docs: [], errors: [], lines, label };

  if (!Array.isArray(parsed)) {
    out.errors.push(`${label}: not a YAML stream`);
    return out;
  }
  parsed.forEach((doc, index) => {
    for (const err of doc.errors) {
      const pos = lines.linePos(err.pos[0]);
      out.errors.push(`${label}:${pos.line}:${pos.col}: invalid YAML: ${err.message.split("\n")[0]}`);
    }
    if (doc.errors.length || doc.contents === null)
      return;
    out.docs.push({ value: doc.toJS({ maxAliasCount: 100 }), doc, index });
  });
  return out;
}

export function loadFile(file, label = file) {
  let text;

  try {
    text = file === "-" ? readFileSync(0, "utf8") : readFileSync(file, "utf8");
  } catch (err) {
    return { docs: [], errors: [`${label}: cannot read: ${err.message}`], lines: null, label };
  }
  return loadDocs(text, label);
}

// The node at @path (keys and indexes) in @doc, or the deepest one found.
function nodeAt(doc, path) {
  let node = doc.contents;

  for (const step of path) {
    let next;

    if (isMap(node))
      next = node.items.find((pair) => pair.key && pair.key.value === step);
    else if (isSeq(node))
      next = { value: node.items[step] };
    if (!next || !next.value)
      break;
    node = next.value;
  }
  return node;
}

// "LABEL:LINE" for the value at @path, or for the key @key of the mapping
// at @path when @key is given.
export function where(loaded, entry, path, key) {
  let node = nodeAt(entry.doc, path);

  if (key !== undefined && isMap(node)) {
    const pair = node.items.find((p) => p.key && p.key.value === key);
    if (pair)
      node = pair.key;
  }
  if (!node || !node.range || !loaded.lines)
    return loaded.label;
  return `${loaded.label}:${loaded.lines.linePos(node.range[0]).line}`;
}

// spec.template.spec.containers[0].name, from ["spec", ..., 0, "name"].
export function dotted(path) {
  return path
    .map((step, i) => (typeof step === "number" ? `[${step}]` : i ? `.${step}` : step))
    .join("");
}

export function objectId(obj) {
  const meta = (obj && obj.metadata) || {};
  const ns = meta.namespace ? `${meta.namespace}/` : "";
  const name = typeof meta.name === "string" && meta.name ? meta.name : "(no name)";
  return `${obj && obj.kind}/${ns}${name}`;
}
