#!/usr/bin/env node
// Offline checks of Sluice's Kubernetes manifests (tests/k8s/test_manifests.sh).
// Prints one "ok - ..." or "not ok - ..." line per check, the reasons
// under a failure as "#   ..." lines, and exits 1 if any check failed.
//
//   validate.mjs schema [--label L] FILE...      every object valid for its apiVersion/kind, no unknown field
//   validate.mjs reject FILE...                  every file refused, with the messages its "# expect:" lines name
//   validate.mjs render DIR [FILE [DIR FILE...]] the kustomization in DIR rendered offline, as YAML
//                                                (to standard output, or into each FILE)
//   validate.mjs same A B [A B...]               both streams of a pair hold the same objects
//   validate.mjs semantics [--label L] [--xdp LIST] [--cgroup DIR] [--image REF] FILE
//                                                what the issue asks of the rendered manifests
//   validate.mjs mistakes FILE                   each mistake of semantics.mjs, made in good manifests, is caught
//   validate.mjs argv FILE NAME CONTAINER        the command and args of a container of DaemonSet or Pod NAME,
//                                                NUL-separated, with
//                                                $(VAR) filled in (downward API: a made-up node)
//   validate.mjs sluice-yaml FILE                print the sluice.yaml of the sluice-config ConfigMap
//
// FILE may be "-" for standard input.
import { readFileSync, writeFileSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import { stringify } from "yaml";
import { render } from "./kustomize.mjs";
import { validateObject } from "./schema.mjs";
import { checkSluice, mistakes, sluiceYaml } from "./semantics.mjs";
import { dotted, loadFile, objectId, where } from "./yamldocs.mjs";

let failed = 0;

function report(ok, what, reasons = []) {
  console.log(`${ok ? "ok" : "not ok"} - ${what}`);
  for (const r of reasons)
    console.log(`#   ${r}`);
  if (!ok)
    failed++;
}

// Every problem of every object in @loaded, as "FILE:LINE: Kind/ns/name: field: message".
async function problems(loaded) {
  const out = [...loaded.errors];

  for (const entry of loaded.docs) {
    const id = objectId(entry.value);
    for (const e of await validateObject(entry.value)) {
      const field = dotted(e.key === undefined ? e.path : [...e.path, e.key]);
      out.push(`${where(loaded, entry, e.path, e.key)}: ${id}: ${field ? `${field}: ` : ""}${e.message}`);
    }
  }
  return out;
}

function options(argv, names) {
  const opts = {};
  const rest = [];

  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].startsWith("--") ? argv[i].slice(2) : null;
    if (name !== null && names.includes(name)) {
      if (i + 1 >= argv.length)
        usage(`--${name} needs a value`);
      opts[name] = argv[++i];
    } else {
      rest.push(argv[i]);
    }
  }
  return { opts, rest };
}

function usage(why) {
  console.error(`validate.mjs: ${why}`);
  console.error("usage: validate.mjs schema|reject|render|same|semantics|sluice-yaml ... (see the file's head)");
  process.exit(2);
}

async function cmdSchema(argv) {
  const { opts, rest } = options(argv, ["label"]);
  if (!rest.length)
    usage("schema: no file");
  for (const file of rest) {
    const label = opts.label || file;
    const loaded = loadFile(file, label);
    const found = await problems(loaded);
    if (!loaded.docs.length && !found.length)
      found.push(`${label}: no Kubernetes object in it`);
    const kinds = [...new Set(loaded.docs.map((d) => d.value && d.value.kind))].join(", ");
    const n = loaded.docs.length;
    report(!found.length, `schema: ${label} (${n} object${n === 1 ? "" : "s"}: ${kinds})`, found);
  }
}

// A bad example's "# expect: TEXT" lines: each TEXT must be in a message.
async function cmdReject(argv) {
  if (!argv.length)
    usage("reject: no file");
  for (const file of argv) {
    const text = readFileSync(file, "utf8");
    const expects = [...text.matchAll(/^# expect: (.+)$/gm)].map((m) => m[1].trim());
    const found = await problems(loadFile(file));
    const missed = expects.filter((want) => !found.some((msg) => msg.includes(want)));
    if (!expects.length)
      report(false, `rejects ${file}`, ["no '# expect: TEXT' line says what the message must say"]);
    else if (!found.length)
      report(false, `rejects ${file}`, ["accepted as valid"]);
    else if (missed.length)
      report(false, `rejects ${file}`, [...missed.map((m) => `no message says: ${m}`), ...found]);
    else
      report(true, `rejects ${file}: ${found.join(" | ")}`);
  }
}

// render DIR: YAML on standard output. render DIR FILE [DIR FILE...]:
// each into its FILE, one ok / not ok line each.
function cmdRender(argv) {
  if (argv.length === 1) {
    const out = render(argv[0]);
    if (out.error) {
      console.error(`validate.mjs: render: ${out.error}`);
      process.exit(1);
    }
    process.stdout.write(toYaml(out.objects));
    return;
  }
  if (!argv.length || argv.length % 2)
    usage("render: DIR, or pairs of DIR FILE");
  for (let i = 0; i < argv.length; i += 2) {
    const out = render(argv[i]);
    if (!out.error)
      writeFileSync(argv[i + 1], toYaml(out.objects));
    report(!out.error, `offline render of ${argv[i]}`, out.error ? [out.error] : []);
  }
}

function toYaml(objects) {
  return objects.map((o) => stringify(o, { lineWidth: 0 })).join("---\n");
}

function byId(objects) {
  return new Map(objects.map((o) => [`${o.apiVersion} ${objectId(o)}`, o]));
}

// same A B [A B...]: each pair holds the same objects.
function cmdSame(argv) {
  if (!argv.length || argv.length % 2)
    usage("same: pairs of files");
  for (let i = 0; i < argv.length; i += 2) {
    const [fa, fb] = [argv[i], argv[i + 1]];
    const [a, b] = [loadFile(fa), loadFile(fb)];
    const why = [...a.errors, ...b.errors];
    const ma = byId(a.docs.map((d) => d.value));
    const mb = byId(b.docs.map((d) => d.value));
    for (const [id, obj] of ma) {
      if (!mb.has(id))
        why.push(`${id}: only in ${fa}`);
      else if (!isDeepStrictEqual(obj, mb.get(id)))
        why.push(`${id}: differs: ${JSON.stringify(obj)} vs ${JSON.stringify(mb.get(id))}`);
    }
    for (const id of mb.keys())
      if (!ma.has(id))
        why.push(`${id}: only in ${fb}`);
    report(!why.length, `same objects in ${fa} and ${fb} (${ma.size})`, why);
  }
}

function cmdSemantics(argv) {
  const { opts, rest } = options(argv, ["label", "xdp", "cgroup", "image"]);
  if (rest.length !== 1)
    usage("semantics: one file");
  const loaded = loadFile(rest[0]);
  const label = opts.label || rest[0];
  if (loaded.errors.length) {
    report(false, `${label}: readable`, loaded.errors);
    return;
  }
  const expect = {
    xdp: opts.xdp ?? "",
    cgroup: opts.cgroup ?? "/sys/fs/cgroup",
    image: opts.image ?? "localhost/sluice:0.5.0",
  };
  for (const { name, why } of checkSluice(loaded.docs.map((d) => d.value), expect))
    report(why === null, `${label}: ${name}`, why === null ? [] : [why]);
}

function cmdMistakes(argv) {
  if (argv.length !== 1)
    usage("mistakes: one file");
  const loaded = loadFile(argv[0]);
  const good = loaded.docs.map((d) => d.value);
  const expect = { xdp: "", cgroup: "/sys/fs/cgroup", image: "localhost/sluice:0.5.0" };
  for (const [what, check, mutate] of mistakes) {
    const objects = structuredClone(good);
    mutate(objects);
    const hit = checkSluice(objects, expect).filter((r) => r.why !== null);
    const caught = hit.find((r) => r.name.startsWith(check));
    report(Boolean(caught), `semantics catches ${what}${caught ? `: ${caught.why}` : ""}`,
      caught ? [] : [`expected '${check}...' to fail; failed: ${hit.map((r) => r.name).join("; ") || "none"}`]);
  }
}

// What the downward API would give the variables these manifests use.
const downward = { "spec.nodeName": "node-1", "status.hostIP": "198.18.0.1", "status.podIP": "198.18.0.1" };

function cmdArgv(argv) {
  if (argv.length !== 3)
    usage("argv: FILE NAME CONTAINER");
  const loaded = loadFile(argv[0]);
  const obj = loaded.docs.map((d) => d.value).find((o) => ["DaemonSet", "Pod"].includes(o.kind) && o.metadata.name === argv[1]);
  const spec = (obj && (obj.kind === "Pod" ? obj.spec : obj.spec.template.spec)) || {};
  const c = [...(spec.initContainers || []), ...(spec.containers || [])].find((x) => x.name === argv[2]);
  if (!c) {
    console.error(`validate.mjs: ${argv[0]}: no container ${argv[2]} in a DaemonSet or Pod ${argv[1]}`);
    process.exit(1);
  }
  const vars = {};
  for (const e of c.env || [])
    vars[e.name] = e.value ?? downward[(((e.valueFrom || {}).fieldRef) || {}).fieldPath] ?? "";
  // Kubernetes leaves $(UNKNOWN) as it is, and $$ is a literal $.
  const fill = (s) => String(s).replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g,
    (m, name) => (m === "$$" ? "$" : name in vars ? vars[name] : m));
  process.stdout.write([...(c.command || []), ...(c.args || [])].map((s) => `${fill(s)}\0`).join(""));
}

function cmdSluiceYaml(argv) {
  if (argv.length !== 1)
    usage("sluice-yaml: one file");
  const loaded = loadFile(argv[0]);
  const text = loaded.errors.length ? null : sluiceYaml(loaded.docs.map((d) => d.value));
  if (text === null) {
    console.error(`validate.mjs: ${argv[0]}: no ConfigMap sluice-config with a sluice.yaml`);
    process.exit(1);
  }
  process.stdout.write(text);
}

const commands = {
  schema: cmdSchema,
  reject: cmdReject,
  render: cmdRender,
  same: cmdSame,
  semantics: cmdSemantics,
  mistakes: cmdMistakes,
  argv: cmdArgv,
  "sluice-yaml": cmdSluiceYaml,
};
const [cmd, ...argv] = process.argv.slice(2);
if (!commands[cmd])
  usage(cmd ? `unknown command '${cmd}'` : "no command");
await commands[cmd](argv);
process.exit(failed ? 1 : 0);
