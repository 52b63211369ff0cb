// What the Kubernetes issue asks of Sluice's manifests, checked on the
// objects a kustomization renders: the agent's host network, capabilities
// instead of privilege, bpffs propagation, probes, update strategy and
// requests; a proxy DaemonSet of its own; read-only RBAC on exactly the
// resources the watcher reads; and settings and image where they belong.
import { parse } from "yaml";

const ns = "sluice-system";
const agentCaps = ["BPF", "NET_ADMIN", "PERFMON", "SYS_ADMIN"];
const rbacWanted = ["/namespaces", "/pods", "/services", "discovery.k8s.io/endpointslices"];

function find(objects, kind, name) {
  return objects.find((o) => o.kind === kind && o.metadata && o.metadata.name === name);
}

// The value of --flag=value or --flag value in @args, or undefined.
function arg(args, flag) {
  for (let i = 0; i < (args || []).length; i++) {
    if (args[i] === flag)
      return args[i + 1];
    if (args[i].startsWith(`${flag}=`))
      return args[i].slice(flag.length + 1);
  }
  return undefined;
}

function same(a, b) {
  return JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());
}

function pod(ds) {
  return (ds && ds.spec && ds.spec.template && ds.spec.template.spec) || {};
}

function container(ds, name) {
  return (pod(ds).containers || []).find((c) => c.name === name) || {};
}

function mountOf(c, volume) {
  return (c.volumeMounts || []).find((m) => m.name === volume);
}

function volumeOf(ds, name) {
  return (pod(ds).volumes || []).find((v) => v.name === name) || {};
}

// Each check: [name, () => null when it holds, else why not].
function checks(objects, expect) {
  const agent = find(objects, "DaemonSet", "sluiced");
  const proxy = find(objects, "DaemonSet", "sluice-proxy");
  const a = container(agent, "sluiced");
  const p = container(proxy, "sluice-proxy");
  const init = (pod(agent).initContainers || [])[0] || {};
  const metricsPort = Number((arg(a.args, "--metrics") || "").split(":").pop());
  const l7 = arg(a.args, "--l7-proxy");

  return [
    ["every object is there, namespaced ones in " + ns, () => {
      const want = [["Namespace", ns], ["ServiceAccount", "sluiced"], ["ServiceAccount", "sluice-proxy"],
        ["ClusterRole", "sluiced"], ["ClusterRoleBinding", "sluiced"], ["ConfigMap", "sluice-config"],
        ["DaemonSet", "sluiced"], ["DaemonSet", "sluice-proxy"]];
      const missing = want.filter(([k, n]) => !find(objects, k, n)).map(([k, n]) => `${k}/${n}`);
      const astray = objects.filter((o) => !["Namespace", "ClusterRole", "ClusterRoleBinding"].includes(o.kind) &&
        o.metadata.namespace !== ns).map((o) => `${o.kind}/${o.metadata.name}`);
      return missing.length || astray.length ? `missing: ${missing.join(" ") || "-"}; not in ${ns}: ${astray.join(" ") || "-"}` : null;
    }],
    ["agent: host network", () => (pod(agent).hostNetwork === true ? null : "spec.template.spec.hostNetwork is not true")],
    ["agent: container not privileged, no privilege escalation", () =>
      (a.securityContext || {}).privileged || (a.securityContext || {}).allowPrivilegeEscalation !== false
        ? `securityContext: ${JSON.stringify(a.securityContext)}` : null],
    [`agent: capabilities drop ALL, add exactly ${agentCaps.join(" ")}`, () => {
      const caps = (a.securityContext || {}).capabilities || {};
      return same(caps.drop || [], ["ALL"]) && same(caps.add || [], agentCaps) ? null : `capabilities: ${JSON.stringify(caps)}`;
    }],
    ["agent: bpffs from the host, Bidirectional in the privileged init step only, HostToContainer in the agent", () => {
      const vol = volumeOf(agent, "bpffs");
      const im = mountOf(init, "bpffs") || {};
      const am = mountOf(a, "bpffs") || {};
      const script = [...(init.command || []), ...(init.args || [])].join(" ");
      if (!vol.hostPath || vol.hostPath.path !== "/sys/fs/bpf")
        return "volume bpffs is not hostPath /sys/fs/bpf";
      if (!(init.securityContext || {}).privileged || im.mountPropagation !== "Bidirectional" || im.mountPath !== "/sys/fs/bpf")
        return "the init container is not privileged with a Bidirectional /sys/fs/bpf";
      if (!/mount -t bpf bpf \/sys\/fs\/bpf/.test(script))
        return "the init container does not mount bpffs";
      if (am.mountPropagation !== "HostToContainer" || am.mountPath !== "/sys/fs/bpf")
        return "the agent's /sys/fs/bpf is not HostToContainer";
      return arg(a.args, "--bpffs") && arg(a.args, "--bpffs").startsWith("/sys/fs/bpf/") ? null : "--bpffs is not under /sys/fs/bpf";
    }],
    [`agent: cgroup v2 root ${expect.cgroup} mounted where --cgroup points`, () => {
      const vol = volumeOf(agent, "cgroup");
      const m = mountOf(a, "cgroup") || {};
      if (!vol.hostPath || vol.hostPath.path !== expect.cgroup)
        return `volume cgroup: ${JSON.stringify(vol.hostPath)}`;
      return m.mountPath && m.mountPath === arg(a.args, "--cgroup") ? null : `mounted at ${m.mountPath}, --cgroup=${arg(a.args, "--cgroup")}`;
    }],
    [`agent: XDP interfaces '${expect.xdp}'`, () => {
      const env = (a.env || []).find((e) => e.name === "SLUICE_XDP_INTERFACES") || {};
      if (arg(a.args, "--xdp") !== "$(SLUICE_XDP_INTERFACES)")
        return `--xdp=${arg(a.args, "--xdp")}`;
      return env.value === expect.xdp ? null : `SLUICE_XDP_INTERFACES=${JSON.stringify(env.value)}`;
    }],
    ["agent: node name and IP from the downward API", () => {
      const ref = (n) => (((a.env || []).find((e) => e.name === n) || {}).valueFrom || {}).fieldRef || {};
      if (ref("NODE_NAME").fieldPath !== "spec.nodeName" || ref("NODE_IP").fieldPath !== "status.hostIP")
        return "NODE_NAME/NODE_IP are not fieldRefs of spec.nodeName/status.hostIP";
      return arg(a.args, "--k8s-node-name") === "$(NODE_NAME)" && arg(a.args, "--k8s-node-ip") === "$(NODE_IP)" &&
        a.args.includes("--k8s") ? null : "--k8s, --k8s-node-name, --k8s-node-ip do not use them";
    }],
    ["every $(VAR) in args and commands is a variable of its container", () => {
      const bad = [];
      for (const ds of [agent, proxy])
        for (const c of [...(pod(ds).initContainers || []), ...(pod(ds).containers || [])]) {
          const names = new Set((c.env || []).map((e) => e.name));
          for (const s of [...(c.command || []), ...(c.args || [])])
            for (const m of String(s).matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g))
              if (!names.has(m[1]))
                bad.push(`${c.name}: $(${m[1]})`);
        }
      return bad.length ? `undefined: ${bad.join(", ")} (Kubernetes would pass them literally)` : null;
    }],
    [`agent: liveness /healthz, readiness /readyz on the metrics port (${metricsPort})`, () => {
      const lp = (a.livenessProbe || {}).httpGet || {};
      const rp = (a.readinessProbe || {}).httpGet || {};
      if (!metricsPort)
        return "no --metrics ADDR:PORT";
      if (lp.path !== "/healthz" || lp.port !== metricsPort || rp.path !== "/readyz" || rp.port !== metricsPort)
        return `liveness ${JSON.stringify(lp)}, readiness ${JSON.stringify(rp)}`;
      const ann = ((agent.spec.template.metadata || {}).annotations || {})["prometheus.io/port"];
      return ann === String(metricsPort) ? null : `prometheus.io/port is ${ann}`;
    }],
    ["agent: RollingUpdate, maxUnavailable 1", () => {
      const u = agent.spec.updateStrategy || {};
      return u.type === "RollingUpdate" && (u.rollingUpdate || {}).maxUnavailable === 1 ? null : JSON.stringify(u);
    }],
    ["proxy: own DaemonSet, host network, not privileged, only NET_ADMIN", () => {
      const sc = p.securityContext || {};
      const caps = sc.capabilities || {};
      if (!proxy || pod(proxy).hostNetwork !== true)
        return "no sluice-proxy DaemonSet on the host network";
      if (sc.privileged || sc.allowPrivilegeEscalation !== false || !same(caps.drop || [], ["ALL"]) || !same(caps.add || [], ["NET_ADMIN"]))
        return `securityContext: ${JSON.stringify(sc)}`;
      return pod(proxy).automountServiceAccountToken === false ? null : "mounts an API token it has no use for";
    }],
    ["proxy: surge upgrade with --takeover, no host ports, probes on its listener and metrics", () => {
      const u = proxy.spec.updateStrategy || {};
      const r = u.rollingUpdate || {};
      const probe = (p.readinessProbe || {}).tcpSocket || {};
      if (u.type !== "RollingUpdate" || r.maxSurge !== 1 || r.maxUnavailable !== 0)
        return `updateStrategy ${JSON.stringify(u)}`;
      if (!(p.args || []).includes("--takeover") || (p.ports || []).length)
        return "without --takeover, or with ports (host ports block the surge pod)";
      if (`${probe.host}:${probe.port}` !== l7)
        return `readiness probe ${probe.host}:${probe.port}, agent --l7-proxy ${l7}`;
      const lp = (p.livenessProbe || {}).httpGet || {};
      return lp.port === Number((arg(p.args, "--metrics") || "").split(":").pop()) ? null : "liveness is not on --metrics";
    }],
    ["both: node-critical, tolerate every taint, grace period, requests", () => {
      for (const ds of [agent, proxy]) {
        const s = pod(ds);
        if (s.priorityClassName !== "system-node-critical")
          return `${ds.metadata.name}: priorityClassName ${s.priorityClassName}`;
        if (!(s.tolerations || []).some((t) => t.operator === "Exists" && !t.key && !t.effect))
          return `${ds.metadata.name}: no toleration of every taint`;
        if (!Number.isInteger(s.terminationGracePeriodSeconds))
          return `${ds.metadata.name}: no terminationGracePeriodSeconds`;
        for (const c of s.containers || [])
          if (!((c.resources || {}).requests || {}).cpu || !((c.resources || {}).requests || {}).memory)
            return `${c.name}: no cpu and memory requests`;
      }
      return null;
    }],
    ["RBAC: get/list/watch of exactly services, endpointslices, pods, namespaces", () => {
      const role = find(objects, "ClusterRole", "sluiced") || {};
      const got = [];
      for (const rule of role.rules || []) {
        if (!same(rule.verbs || [], ["get", "list", "watch"]) || rule.resourceNames || rule.nonResourceURLs)
          return `rule ${JSON.stringify(rule)}`;
        for (const g of rule.apiGroups || [])
          for (const r of rule.resources || [])
            got.push(`${g}/${r}`);
      }
      if (!same(got, rbacWanted))
        return `resources: ${got.join(" ")}`;
      const rb = find(objects, "ClusterRoleBinding", "sluiced") || {};
      const subj = (rb.subjects || []).map((s) => `${s.kind}/${s.namespace}/${s.name}`);
      if ((rb.roleRef || {}).name !== "sluiced" || !same(subj, [`ServiceAccount/${ns}/sluiced`]))
        return `binding: ${JSON.stringify(rb.roleRef)} to ${subj.join(" ")}`;
      return pod(agent).serviceAccountName === "sluiced" ? null : "the agent does not run as sluiced";
    }],
    ["config: sluice-config's sluice.yaml read by both, proxy.listen has --l7-proxy", () => {
      const cm = find(objects, "ConfigMap", "sluice-config") || {};
      let cfg;
      try {
        cfg = parse((cm.data || {})["sluice.yaml"] || "") || {};
      } catch (err) {
        return `sluice.yaml: ${err.message.split("\n")[0]}`;
      }
      const listen = [].concat(((cfg.proxy || {}).listen) || "127.0.0.1:15001");
      if (!listen.includes(l7))
        return `proxy.listen ${JSON.stringify(listen)} lacks the agent's --l7-proxy ${l7}`;
      for (const [ds, c] of [[agent, a], [proxy, p]]) {
        const vol = volumeOf(ds, "config");
        const m = mountOf(c, "config") || {};
        if ((vol.configMap || {}).name !== "sluice-config" || `${m.mountPath}/sluice.yaml` !== arg(c.args, "--config"))
          return `${c.name}: --config ${arg(c.args, "--config")} is not sluice-config's sluice.yaml`;
      }
      return null;
    }],
    [`images: every container runs ${expect.image}`, () => {
      const bad = [];
      for (const ds of [agent, proxy])
        for (const c of [...(pod(ds).initContainers || []), ...(pod(ds).containers || [])])
          if (c.image !== expect.image)
            bad.push(`${c.name}: ${c.image}`);
      return bad.length ? bad.join(", ") : null;
    }],
  ];
}

// checkSluice(objects, { xdp, cgroup, image }) -> [{ name, why }] (why null: holds).
export function checkSluice(objects, expect) {
  const agent = find(objects, "DaemonSet", "sluiced");
  const proxy = find(objects, "DaemonSet", "sluice-proxy");
  if (!agent || !proxy)
    return [{ name: "the agent and proxy DaemonSets exist", why: "sluiced or sluice-proxy is missing" }];
  return checks(objects, expect).map(([name, fn]) => {
    let why;
    try {
      why = fn();
    } catch (err) {
      why = `check failed: ${err.message}`;
    }
    return { name, why };
  });
}

// The sluice.yaml the ConfigMap carries, or null.
export function sluiceYaml(objects) {
  const cm = find(objects, "ConfigMap", "sluice-config");
  return cm && cm.data ? cm.data["sluice.yaml"] ?? null : null;
}

// Mistakes each check must catch: [what, the check's name starts with, mutate(objects)].
// Run on a copy of good rendered manifests, so that a check that always
// passes is found out.
export const mistakes = [
  ["the agent made privileged", "agent: container not privileged", (o) => {
    container(find(o, "DaemonSet", "sluiced"), "sluiced").securityContext.privileged = true;
  }],
  ["CAP_SYS_MODULE added to the agent", "agent: capabilities", (o) => {
    container(find(o, "DaemonSet", "sluiced"), "sluiced").securityContext.capabilities.add.push("SYS_MODULE");
  }],
  ["the agent's /sys/fs/bpf without propagation", "agent: bpffs", (o) => {
    delete mountOf(container(find(o, "DaemonSet", "sluiced"), "sluiced"), "bpffs").mountPropagation;
  }],
  ["the agent off the host network", "agent: host network", (o) => {
    pod(find(o, "DaemonSet", "sluiced")).hostNetwork = false;
  }],
  ["no readiness probe on the agent", "agent: liveness", (o) => {
    delete container(find(o, "DaemonSet", "sluiced"), "sluiced").readinessProbe;
  }],
  ["the agent updated two nodes at a time", "agent: RollingUpdate", (o) => {
    find(o, "DaemonSet", "sluiced").spec.updateStrategy.rollingUpdate.maxUnavailable = 2;
  }],
  ["'create' in the ClusterRole", "RBAC", (o) => {
    find(o, "ClusterRole", "sluiced").rules[0].verbs.push("create");
  }],
  ["secrets in the ClusterRole", "RBAC", (o) => {
    find(o, "ClusterRole", "sluiced").rules[0].resources.push("secrets");
  }],
  ["a misspelt $(NODE_NAM) in the agent's args", "every $(VAR)", (o) => {
    const a = container(find(o, "DaemonSet", "sluiced"), "sluiced");
    a.args = a.args.map((s) => s.replace("$(NODE_NAME)", "$(NODE_NAM)"));
  }],
  ["the proxy listening elsewhere than --l7-proxy", "config", (o) => {
    const cm = find(o, "ConfigMap", "sluice-config");
    cm.data["sluice.yaml"] = cm.data["sluice.yaml"].replace("127.0.0.1:15001", "127.0.0.1:15002");
  }],
  ["a host port on the proxy", "proxy: surge", (o) => {
    container(find(o, "DaemonSet", "sluice-proxy"), "sluice-proxy").ports = [{ containerPort: 9963 }];
  }],
  ["no memory request on the proxy", "both:", (o) => {
    delete container(find(o, "DaemonSet", "sluice-proxy"), "sluice-proxy").resources.requests.memory;
  }],
];
