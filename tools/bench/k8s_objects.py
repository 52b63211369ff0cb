#!/usr/bin/env python3
"""What tools/bench/k8s.sh needs of Python: the fake Kubernetes API server
loaded with its objects, the equivalent sluice config, a readiness poller
and timed EndpointSlice changes.

    k8s_objects.py serve N PER [APISERVER_OPTION...]
        tests/k8s/apiserver.py holding N Services (ClusterIP 198.19.x.y,
        port 80/tcp -> 8080), each with one EndpointSlice of PER ready
        endpoints (198.18.x.y, PER <= 16) and one Pod for each endpoint (3
        labels), and the default Namespace. It keeps each list page it
        encoded (see serve_lists_from_cache)
    k8s_objects.py warm API PAGE
        list every kind from the fake server at API as sluiced does, in
        pages of PAGE objects: each page is encoded before an agent asks
    k8s_objects.py config N PER FILE [--endpoints]
        the same services as a sluice config; with --endpoints, the pods'
        policy endpoints too (the state sluiced --k8s publishes)
    k8s_objects.py static FILE
        one service of 10 backends outside those ranges
    k8s_objects.py ready URL TIMEOUT_S
        print "polling", then poll URL (every 2 ms at first) until 200; print
        the wall clock then (epoch us)
    k8s_objects.py change API LOG STATE N
        N times: set endpoint 0 of service 0's slice (as the fake server at
        API has it) to STATE (ready or terminating; then the other), POST it,
        wait for the next "k8s: published" line of the agent's LOG; print
        the latency (us) from just before the POST to that line's time, a
        tab and the line

Objects keep the shape of tests/k8s/fixtures, managedFields included: a
real list carries them. LOG times are user/lib/log.c's (UTC, ms).
"""
import calendar
import copy
import gc
import json
import os
import re
import signal
import sys
import time
import urllib.error
import urllib.request
import uuid

K8S_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "..", "..", "tests", "k8s")
FIXTURES = os.path.join(K8S_DIR, "fixtures")
POD_HASH = "6d4cf56db6"
PUBLISHED = " k8s: published "


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return json.load(f)


def vip(i):
    """Service i's cluster IP: 198.19.0.1 onwards, no .0 or .255."""
    return "198.19.%d.%d" % (i // 250, i % 250 + 1)


def pod_ip(i, j):
    """Endpoint j (< 16) of service i: 198.18.1.1 onwards, no .0 or .255."""
    n = i * 16 + j
    return "198.18.%d.%d" % (1 + n // 250, n % 250 + 1)


def uid(name):
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, name + ".bench.sluice"))


def svc_name(i):
    return "svc-%04d" % i


def pod_name(i, j):
    return "%s-%s-%05d" % (svc_name(i), POD_HASH, j)


def pod_labels(i):
    return {"app": svc_name(i), "pod-template-hash": POD_HASH, "tier": "backend"}


def service(tmpl, i):
    o = copy.deepcopy(tmpl)
    name = svc_name(i)
    m = o["metadata"]
    m.update(name=name, uid=uid(name), labels={"app": name})
    m.pop("annotations", None)
    o["spec"]["ports"] = [{"name": "http", "protocol": "TCP", "port": 80,
                           "targetPort": 8080}]
    o["spec"]["selector"] = {"app": name}
    o["spec"]["clusterIP"] = vip(i)
    o["spec"]["clusterIPs"] = [vip(i)]
    return o


def endpoint_slice(tmpl, i, per):
    """Service i's slice: per endpoints, all ready."""
    o = copy.deepcopy(tmpl)
    name = svc_name(i)
    m = o["metadata"]
    m.update(name=name + "-bench", generateName=name + "-", uid=uid(name + "-slice"))
    m["labels"].update({"app": name, "kubernetes.io/service-name": name})
    m["ownerReferences"][0].update(name=name, uid=uid(name))
    ep0 = o["endpoints"][0]
    o["endpoints"] = []
    for j in range(per):
        o["endpoints"].append(dict(
            ep0, addresses=[pod_ip(i, j)],
            conditions={"ready": True, "serving": True, "terminating": False},
            targetRef=dict(ep0["targetRef"], name=pod_name(i, j), uid=uid(pod_name(i, j))),
            nodeName="node-a" if j % 2 == 0 else "node-b",
            zone="zone-a" if j % 2 == 0 else "zone-b"))
    o["ports"] = [{"name": "http", "protocol": "TCP", "port": 8080}]
    return o


def pod(tmpl, i, j):
    """Pod j of service i. Shallow copies down to what differs: the store
    copies each object anyway, and deepcopy of 10,000 pods takes seconds."""
    name, ip = pod_name(i, j), pod_ip(i, j)
    o = dict(tmpl)
    m = o["metadata"] = dict(tmpl["metadata"])
    m.update(name=name, generateName=name[:-5], uid=uid(name), labels=pod_labels(i))
    m["ownerReferences"] = [dict(tmpl["metadata"]["ownerReferences"][0],
                                 name="%s-%s" % (svc_name(i), POD_HASH),
                                 uid=uid(svc_name(i) + "-rs"))]
    kubelet = dict(m["managedFields"][1])
    status = dict(kubelet["fieldsV1"]["f:status"])
    status["f:podIPs"] = {".": {}, 'k:{"ip":"%s"}' % ip: {".": {}, "f:ip": {}}}
    kubelet["fieldsV1"] = {"f:status": status}
    m["managedFields"] = [m["managedFields"][0], kubelet]
    o["spec"] = dict(tmpl["spec"], nodeName="node-a" if j % 2 == 0 else "node-b")
    o["status"] = dict(tmpl["status"], podIP=ip, podIPs=[{"ip": ip}])
    return o


def make_objects(n, per):
    svc_t = fixture("service-web.json")
    slice_t = fixture("endpointslice-web.json")
    pod_t = fixture("pod-web-1.json")
    out = [fixture("namespace-default.json")]
    for i in range(n):
        out.append(service(svc_t, i))
        out.append(endpoint_slice(slice_t, i, per))
        out.extend(pod(pod_t, i, j) for j in range(per))
    return out


def serve_lists_from_cache(apiserver):
    """Encode each list page once, keyed by URL and the store's version:
    kube-apiserver serves lists from its watch cache in Go, while here
    json.dumps of the 50 MB of pods takes seconds of Python, which would
    be most of what the bench times. The first list fills it."""
    handler, pages = apiserver.Handler, {}
    serve_list, send_json = handler.serve_list, handler.send_json

    def cached_list(self, route, query):
        self.page_key = (self.path, self.app.store.rv)
        try:
            serve_list(self, route, query)
        finally:
            self.page_key = None

    def cached_send(self, code, body, headers=None):
        key = getattr(self, "page_key", None)
        if code != 200 or headers or key is None:
            return send_json(self, code, body, headers)
        data = pages.get(key)
        if data is None:
            data = pages[key] = json.dumps(body, separators=(",", ":")).encode()
        # As send_json does, from the bytes kept.
        self.send_response(code)
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        return None

    handler.serve_list, handler.send_json = cached_list, cached_send


def cmd_serve(n, per, options):
    if per > 16:
        sys.exit("serve: at most 16 endpoints a service")
    sys.path.insert(0, K8S_DIR)
    sys.dont_write_bytecode = True      # no __pycache__ in the tree
    import apiserver

    objects = make_objects(n, per)

    def load(store, paths):
        # The collector would walk the growing store again and again.
        gc.disable()
        for obj in objects:
            store.apply(obj)
        objects.clear()
        gc.freeze()
        gc.enable()

    apiserver.load_fixtures = load
    serve_lists_from_cache(apiserver)
    signal.signal(signal.SIGTERM, apiserver.on_sigterm)
    return apiserver.main(options)


def cmd_config(n, per, path, endpoints):
    lines = ["services:"]
    for i in range(n):
        lines.append("  - name: %s.default\n    vip: %s:80/tcp\n    backends:"
                     % (svc_name(i), vip(i)))
        lines.extend("      - %s:8080" % pod_ip(i, j) for j in range(per))
    if endpoints:
        lines.append("endpoints:")
        for i in range(n):
            labels = dict(pod_labels(i), **{"io.kubernetes.pod.namespace": "default"})
            text = ", ".join("%s: %s" % kv for kv in sorted(labels.items()))
            lines.extend("  - address: %s\n    labels: { %s }" % (pod_ip(i, j), text)
                         for j in range(per))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def cmd_static(path):
    backends = "".join("      - 198.18.250.%d:8080\n" % j for j in range(1, 11))
    with open(path, "w") as f:
        f.write("services:\n  - name: static\n    vip: 198.19.250.1:80/tcp\n"
                "    backends:\n" + backends)


def cmd_ready(url, timeout_s):
    print("polling", flush=True)
    start = time.monotonic()
    while time.monotonic() < start + timeout_s:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    print(int(time.time() * 1e6), flush=True)
                    return 0
        except (urllib.error.URLError, OSError):
            pass
        # Every 2 ms at first, then less often: each poll is a request the
        # agent serves meanwhile; the figure is at most 0.5% late.
        time.sleep(min(0.05, max(0.002, (time.monotonic() - start) / 200)))
    sys.exit("ready: %s not 200 within %g s" % (url, timeout_s))


def cmd_warm(api, page):
    """List every kind as sluiced does (user/lib/k8s_client.c list_page():
    ?limit=PAGE, then &continue=TOKEN, which is base64url: curl_easy_escape
    leaves it as is), so that the fake server has encoded each page before
    an agent asks."""
    for path in ("/api/v1/services", "/apis/discovery.k8s.io/v1/endpointslices",
                 "/api/v1/pods", "/api/v1/namespaces"):
        cont = ""
        while True:
            url = "%s%s?limit=%d%s" % (api, path, page, cont and "&continue=" + cont)
            with urllib.request.urlopen(url, timeout=120) as r:
                body = r.read()
            # The metadata comes before the items: no need to parse 50 MB.
            found = re.search(rb'"metadata":\{[^{}]*"continue":"([^"]*)"', body[:4096])
            cont = found.group(1).decode() if found else ""
            if not cont:
                break


def log_time_us(line):
    """Epoch us of a log line "2026-11-27T08:02:14.736Z info  ...": the
    millisecond it names plus half of one (the logger truncates)."""
    stamp = line.split(" ", 1)[0]
    secs = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
    return secs * 1000000 + int(stamp[20:23]) * 1000 + 500


def wait_published(log, offset, timeout_s):
    """The first complete "k8s: published" line of log after offset."""
    deadline = time.monotonic() + timeout_s
    with open(log) as f:
        f.seek(offset)
        buf = ""
        while time.monotonic() < deadline:
            chunk = f.read()
            if not chunk:
                time.sleep(0.001)
                continue
            buf += chunk
            *lines, buf = buf.split("\n")
            for line in lines:
                if PUBLISHED in line:
                    return line
    sys.exit("change: no \"k8s: published\" line in %s within %g s" % (log, timeout_s))


def cmd_change(api, log, state, n):
    """n changes, the first to state, then alternating; one line each:
    the latency (us), a tab, the "k8s: published" line."""
    url = "%s/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/%s-bench" % (
        api, svc_name(0))
    with urllib.request.urlopen(url, timeout=10) as r:
        current = json.load(r)
    bodies = {}
    for st in ("ready", "terminating"):
        term = st == "terminating"
        current["endpoints"][0]["conditions"] = {"ready": not term, "serving": True,
                                                 "terminating": term}
        bodies[st] = json.dumps(current).encode()
    other = {"ready": "terminating", "terminating": "ready"}
    for _ in range(n):
        req = urllib.request.Request(api + "/_control/apply", data=bodies[state],
                                     method="POST",
                                     headers={"Content-Type": "application/json"})
        offset = os.path.getsize(log)
        t0 = int(time.time() * 1e6)
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()
        line = wait_published(log, offset, 10)
        print("%d\t%s" % (log_time_us(line) - t0, line), flush=True)
        state = other[state]
        time.sleep(0.1)     # each change alone: the agent is done with the last


def main(argv):
    verb, args = (argv[1], argv[2:]) if len(argv) > 1 else ("", [])
    if verb == "serve" and len(args) >= 2:
        return cmd_serve(int(args[0]), int(args[1]), args[2:])
    if verb == "config" and len(args) in (3, 4) and args[3:] in ([], ["--endpoints"]):
        return cmd_config(int(args[0]), int(args[1]), args[2], len(args) == 4)
    if verb == "static" and len(args) == 1:
        return cmd_static(args[0])
    if verb == "ready" and len(args) == 2:
        return cmd_ready(args[0], float(args[1]))
    if verb == "warm" and len(args) == 2:
        return cmd_warm(args[0], int(args[1]))
    if verb == "change" and len(args) == 4 and args[2] in ("ready", "terminating"):
        return cmd_change(args[0], args[1], args[2], int(args[3]))
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
