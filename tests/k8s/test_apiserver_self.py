#!/usr/bin/python3
"""Self-test of the fake Kubernetes API server (tests/k8s/apiserver.py).

Starts it over HTTP with every fixture, and over HTTPS with a bearer token
and a certificate from `apiserver.py make-cert`, then checks the protocol a
client relies on: lists and pagination, watch replay and live latency,
bookmarks, stream endings (clean, broken, 410), fault injection, auth, the
request log.  Prints "ok - ..." / "not ok - ..." and "N passed, M failed";
exits 1 on any failure.  Python 3 stdlib only; runs in a few seconds.
"""

import glob
import http.client
import ipaddress
import json
import os
import select
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "apiserver.py")
FIXTURES = sorted(glob.glob(os.path.join(HERE, "fixtures", "*.json")))
SERVICES = "/api/v1/services"
PODS = "/api/v1/pods"
LIVE_BUDGET_S = 0.100
CLEAN, BROKEN = "clean end", "broken end"   # how a watch stream can end

# --------------------------------------------------------------------------
# Server process and plain requests


class Server:
    """One apiserver.py process; stop() kills it by its pid."""

    def __init__(self, *args, token=None, cafile=None):
        self.proc = subprocess.Popen(
            [sys.executable, SERVER, "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self._first_line(10.0)
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError("apiserver did not start: %r %s" % (
                line, self.proc.stderr.read().decode(errors="replace")))
        url = line.split()[-1]
        self.tls = url.startswith("https://")
        self.host, port = url.split("://")[1].rsplit(":", 1)
        self.port = int(port)
        self.token = token
        self.ctx = ssl.create_default_context(cafile=cafile) if cafile else None

    def _first_line(self, timeout):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline().decode().strip() if ready else ""

    def stop(self):
        self.proc.kill()
        self.proc.wait()

    def connect(self):
        if self.tls:
            return http.client.HTTPSConnection(self.host, self.port,
                                               context=self.ctx, timeout=10)
        return http.client.HTTPConnection(self.host, self.port, timeout=10)

    def call(self, method, path, body=None, token=None, conn=None):
        """(status, headers, parsed JSON or text).  token: None uses the
        server's, "" sends none."""
        own = conn is None
        conn = conn or self.connect()
        headers = {"Accept": "application/json"}
        token = self.token if token is None else token
        if token:
            headers["Authorization"] = "Bearer " + token
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        if own:
            conn.close()
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = raw.decode(errors="replace")
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, doc

    def get(self, path, **kw):
        status, _, doc = self.call("GET", path, **kw)
        assert status == 200, "GET %s: %d %s" % (path, status, doc)
        return doc

    def ctl(self, what, body=None, method="POST"):
        status, _, doc = self.call(method, "/_control/" + what, body)
        assert status == 200, "%s /_control/%s: %d %s" % (
            method, what, status, doc)
        return doc

    def rv(self):
        return int(self.ctl("state", method="GET")["resourceVersion"])


# --------------------------------------------------------------------------
# A watch stream read byte by byte


class Watch:
    """A watch request parsed at the byte level (status, headers, then the
    chunked body), so a test can tell a clean end (the 0-length chunk) from
    a broken one (EOF or reset inside the body)."""

    def __init__(self, srv, path, token=None):
        sock = socket.create_connection((srv.host, srv.port), timeout=5)
        if srv.tls:
            sock = srv.ctx.wrap_socket(sock, server_hostname=srv.host)
        token = srv.token if token is None else token
        auth = "Authorization: Bearer %s\r\n" % token if token else ""
        sock.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\n%s"
                      "Accept: application/json\r\n\r\n"
                      % (path, srv.host, srv.port, auth)).encode())
        self.sock, self.buf, self.eof = sock, bytearray(), False
        self.status, self.headers = self._read_head(time.monotonic() + 5)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except (ConnectionError, ssl.SSLError):
            data = b""
        if not data:
            self.eof = True
        self.buf += data

    def _read_head(self, deadline):
        while b"\r\n\r\n" not in self.buf:
            if self.eof:
                raise AssertionError("connection closed before headers")
            self._fill(deadline)
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        self.buf = bytearray(rest)
        lines = head.decode().split("\r\n")
        headers = dict((k.strip().lower(), v.strip()) for k, v in
                       (ln.split(":", 1) for ln in lines[1:]))
        return int(lines[0].split()[1]), headers

    def _parse(self):
        """One complete chunk off the buffer: an event dict, CLEAN, or
        None when more bytes are needed."""
        i = self.buf.find(b"\r\n")
        if i < 0:
            return None
        size = int(bytes(self.buf[:i]).split(b";")[0], 16)
        end = i + 2 + size + 2
        if len(self.buf) < end:
            return None
        data = bytes(self.buf[i + 2:i + 2 + size])
        assert self.buf[end - 2:end] == b"\r\n", "bad chunk trailer"
        del self.buf[:end]
        if size == 0:
            return CLEAN
        assert data.endswith(b"\n") and data.count(b"\n") == 1, \
            "a chunk must be one event and its newline: %r" % data
        return json.loads(data)

    def next(self, timeout=2.0):
        """The next event, CLEAN, BROKEN, or None if nothing came."""
        deadline = time.monotonic() + timeout
        while True:
            got = self._parse()
            if got is not None:
                return got
            if self.eof:
                return BROKEN
            try:
                self._fill(deadline)
            except TimeoutError:
                return None

    def body(self):
        """The whole body of a non-streamed (error) response."""
        n = int(self.headers.get("content-length", "0"))
        while len(self.buf) < n and not self.eof:
            self._fill(time.monotonic() + 5)
        return json.loads(bytes(self.buf[:n]))

    def close(self):
        self.sock.close()


def events_until(w, n, timeout=2.0):
    out = []
    while len(out) < n:
        ev = w.next(timeout)
        assert isinstance(ev, dict), "after %d events: %r" % (len(out), ev)
        out.append(ev)
    return out


def svc(name, **labels):
    return {"kind": "Service", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": "default",
                         "labels": labels or {"test": "self"}},
            "spec": {"clusterIP": "198.19.0.99", "clusterIPs": ["198.19.0.99"],
                     "type": "ClusterIP", "ports": [
                         {"name": "http", "protocol": "TCP", "port": 80,
                          "targetPort": 8080}]}}


def names(items):
    return [o["metadata"]["name"] for o in items]


# --------------------------------------------------------------------------
# Tests over HTTP


def t_list_shape(s):
    doc = s.get(SERVICES)
    assert (doc["kind"], doc["apiVersion"]) == ("ServiceList", "v1"), doc
    assert int(doc["metadata"]["resourceVersion"]) == s.rv()
    assert len(doc["items"]) == 6, names(doc["items"])
    for item in doc["items"]:
        assert "kind" not in item and "apiVersion" not in item, item
        assert item["metadata"]["uid"] and item["metadata"]["resourceVersion"]
    nsd = s.get("/api/v1/namespaces/default/services")
    assert names(nsd["items"]) == names(doc["items"])
    eps = s.get("/apis/discovery.k8s.io/v1/endpointslices")
    assert eps["kind"] == "EndpointSliceList"
    assert eps["apiVersion"] == "discovery.k8s.io/v1"
    assert len(eps["items"]) == 6
    assert names(s.get("/api/v1/namespaces")["items"]) == \
        ["default", "kube-system"]


def t_get_and_not_found(s):
    web = s.get("/api/v1/namespaces/default/services/web")
    assert web["kind"] == "Service" and web["spec"]["clusterIP"] == \
        "198.19.0.10"
    status, _, doc = s.call("GET", "/api/v1/namespaces/default/services/nope")
    assert status == 404 and doc["reason"] == "NotFound", doc
    assert doc["details"] == {"name": "nope", "kind": "services"}, doc
    status, _, doc = s.call("GET", "/api/v1/frobs")
    assert status == 404 and doc["kind"] == "Status" and doc["code"] == 404


def t_pagination(s):
    all_names = names(s.get(SERVICES)["items"])
    p1 = s.get(SERVICES + "?limit=4")
    meta = p1["metadata"]
    assert len(p1["items"]) == 4 and meta["remainingItemCount"] == 2, meta
    s.ctl("apply", svc("aaa-late"))     # sorts first: must not show up
    s.ctl("apply", svc("zzz-late"))     # sorts last: must not show up
    p2 = s.get(SERVICES + "?limit=4&continue=" + meta["continue"])
    assert p2["metadata"]["resourceVersion"] == meta["resourceVersion"], \
        "continued page must be read at the first page's rv"
    assert "continue" not in p2["metadata"], p2["metadata"]
    assert names(p1["items"]) + names(p2["items"]) == all_names
    for n in ("aaa-late", "zzz-late"):
        s.ctl("delete", {"kind": "Service", "namespace": "default", "name": n})


def t_selectors(s):
    web = s.get(PODS + "?labelSelector=app%3Dweb")["items"]
    assert len(web) == 3, names(web)
    on_a = s.get(PODS + "?fieldSelector=spec.nodeName%3Dnode-a")["items"]
    assert sorted(names(on_a)) == sorted(
        ["web-6d4cf56db6-2xkqp", "web-6d4cf56db6-qs4tn", "migrate-5vq8t",
         "node-agent-x7k2m"]), names(on_a)
    sets = s.get(PODS + "?labelSelector=app+in+(web,node-agent),"
                 "pod-template-hash")["items"]
    assert len(sets) == 3, names(sets)
    status, _, doc = s.call("GET", PODS + "?fieldSelector=spec.bogus%3Dx")
    assert status == 400 and doc["reason"] == "BadRequest", doc


def t_watch_replays_from_rv(s):
    r0 = s.rv()
    a = s.ctl("apply", svc("replay-a"))
    changed = svc("replay-a")
    changed["metadata"]["annotations"] = {"touched": "1"}
    b = s.ctl("apply", changed)
    d = s.ctl("delete", {"kind": "Service", "name": "replay-a"})
    w = Watch(s, SERVICES + "?watch=1&resourceVersion=%d" % r0)
    assert w.status == 200 and w.headers["transfer-encoding"] == "chunked"
    assert w.headers["content-type"] == "application/json"
    evs = events_until(w, 3)
    w.close()
    assert [e["type"] for e in evs] == ["ADDED", "MODIFIED", "DELETED"], evs
    rvs = [e["object"]["metadata"]["resourceVersion"] for e in evs]
    assert rvs == [o["metadata"]["resourceVersion"] for o in (a, b, d)], rvs
    assert int(rvs[2]) > int(rvs[1]), "DELETED carries a new rv"
    assert evs[2]["object"]["metadata"]["annotations"] == {"touched": "1"}
    assert evs[0]["object"]["kind"] == "Service", "events carry kind"


def t_noop_apply_and_missing_delete(s):
    before = s.rv()
    web = s.get("/api/v1/namespaces/default/services/web")
    again = s.ctl("apply", web)
    assert s.rv() == before, "an unchanged object is not a write"
    assert again["metadata"] == web["metadata"], again["metadata"]
    status, _, doc = s.call("POST", "/_control/delete", {
        "kind": "Service", "namespace": "default", "name": "nope"})
    assert status == 404 and doc["reason"] == "NotFound", doc


def t_watch_zero_lists_first(s):
    w = Watch(s, "/api/v1/namespaces?watch=true&resourceVersion=0")
    evs = events_until(w, 2)
    assert w.next(0.2) is None, "only the current objects, then live"
    w.close()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == \
        [("ADDED", "default"), ("ADDED", "kube-system")], evs


def t_live_latency(s):
    w = Watch(s, SERVICES + "?watch=1&resourceVersion=%d" % s.rv())
    worst = 0.0
    for i in range(5):
        t0 = time.monotonic()
        s.ctl("apply", svc("live-%d" % i))
        ev = w.next(1.0)
        worst = max(worst, time.monotonic() - t0)
        assert isinstance(ev, dict) and ev["type"] == "ADDED", ev
    for i in range(5):
        s.ctl("delete", {"kind": "Service", "name": "live-%d" % i})
    w.close()
    assert worst < LIVE_BUDGET_S, "slowest event took %.1f ms" % (worst * 1e3)
    return "slowest of 5: %.1f ms" % (worst * 1e3)


def t_bookmark(s):
    w = Watch(s, "/apis/discovery.k8s.io/v1/endpointslices?watch=1"
              "&resourceVersion=%d&allowWatchBookmarks=true" % s.rv())
    plain = Watch(s, SERVICES + "?watch=1&resourceVersion=%d" % s.rv())
    time.sleep(0.05)    # both registered before the bookmark is asked for
    assert s.ctl("bookmark")["bookmarks"] == 1, "only the asking watch"
    ev = w.next(1.0)
    assert ev["type"] == "BOOKMARK", ev
    obj = ev["object"]
    assert (obj["kind"], obj["apiVersion"]) == ("EndpointSlice",
                                                "discovery.k8s.io/v1")
    assert int(obj["metadata"]["resourceVersion"]) == s.rv()
    assert plain.next(0.2) is None, "no bookmark without allowWatchBookmarks"
    w.close()
    plain.close()


def t_timeout_ends_cleanly(s):
    t0 = time.monotonic()
    w = Watch(s, SERVICES + "?watch=1&resourceVersion=%d&timeoutSeconds=1"
              % s.rv())
    end = w.next(3.0)
    took = time.monotonic() - t0
    w.close()
    assert end == CLEAN, end
    assert 0.9 < took < 1.6, "ended after %.2f s" % took


def t_drop_breaks_stream(s):
    w = Watch(s, SERVICES + "?watch=1&resourceVersion=%d" % s.rv())
    time.sleep(0.05)
    assert s.ctl("drop")["dropped"] >= 1
    end = w.next(2.0)
    w.close()
    assert end == BROKEN, end
    w = Watch(s, PODS + "?watch=1&resourceVersion=%d" % s.rv())
    time.sleep(0.05)
    s.ctl("drop", {"rst": True, "resource": "pods"})
    end = w.next(2.0)
    w.close()
    assert end == BROKEN, end


def t_watchers_count(s):
    ws = [Watch(s, PODS + "?watch=1&resourceVersion=%d" % s.rv())
          for _ in range(2)]
    time.sleep(0.05)
    assert s.ctl("watchers", method="GET")["pods"] == 2
    for w in ws:
        w.close()
    deadline = time.monotonic() + 2
    while s.ctl("watchers", method="GET")["pods"] and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    assert s.ctl("watchers", method="GET")["pods"] == 0, \
        "a closed client's watch must go away"


def t_label_move_is_delete(s):
    w = Watch(s, PODS + "?watch=1&labelSelector=app%%3Dweb&resourceVersion=%d"
              % s.rv())
    pod = s.get("/api/v1/namespaces/default/pods/web-6d4cf56db6-h7v9m")
    pod["metadata"]["labels"]["app"] = "moved"
    s.ctl("apply", pod)
    ev = w.next(1.0)
    assert ev["type"] == "DELETED", ev
    assert ev["object"]["metadata"]["labels"]["app"] == "web", \
        "DELETED carries the last state the watch selected"
    pod["metadata"]["labels"]["app"] = "web"
    s.ctl("apply", pod)
    assert w.next(1.0)["type"] == "ADDED"
    w.close()


def t_send_initial_events(s):
    w = Watch(s, "/api/v1/namespaces?watch=1&sendInitialEvents=true"
              "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true")
    evs = events_until(w, 3)
    w.close()
    assert [e["type"] for e in evs] == ["ADDED", "ADDED", "BOOKMARK"], evs
    assert evs[2]["object"]["metadata"]["annotations"] == \
        {"k8s.io/initial-events-end": "true"}


def t_compact_410(s):
    p1 = s.get(SERVICES + "?limit=2")
    old = s.rv()
    s.ctl("apply", svc("compact-a"))
    s.ctl("delete", {"kind": "Service", "name": "compact-a"})
    now = int(s.ctl("compact")["resourceVersion"])
    w = Watch(s, SERVICES + "?watch=1&resourceVersion=%d" % old)
    assert w.status == 200, "410 travels inside the stream"
    ev = w.next(1.0)
    end = w.next(1.0)
    w.close()
    assert ev["type"] == "ERROR", ev
    assert ev["object"] == {
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "reason": "Expired", "code": 410,
        "message": "too old resource version: %d (%d)" % (old, now)}, ev
    assert end == CLEAN, end
    status, _, doc = s.call("GET", SERVICES + "?limit=2&continue="
                            + p1["metadata"]["continue"])
    assert status == 410 and doc["reason"] == "Expired", doc
    assert doc["metadata"]["continue"], "a 410 offers an inconsistent token"
    rest = s.get(SERVICES + "?limit=10&continue=" + doc["metadata"]["continue"])
    assert len(rest["items"]) == 4, names(rest["items"])
    w = Watch(s, SERVICES + "?watch=1&resourceVersion=%d" % s.rv())
    assert w.next(0.2) is None, "a watch from the current rv is fine"
    w.close()


def t_too_large_rv(s):
    w = Watch(s, SERVICES + "?watch=1&resourceVersion=%d" % (s.rv() + 100))
    assert w.status == 504, w.status
    doc = w.body()
    w.close()
    assert doc["reason"] == "Timeout", doc
    assert doc["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"


def t_fail_injection(s):
    s.ctl("fail", {"resource": "services", "status": 500, "count": 2})
    for _ in range(2):
        status, _, doc = s.call("GET", SERVICES)
        assert status == 500 and doc["reason"] == "InternalError", doc
    assert s.call("GET", SERVICES)[0] == 200
    s.ctl("fail", {"resource": "pods", "status": 429, "watch_only": True})
    assert s.call("GET", PODS)[0] == 200, "a list is not a watch"
    w = Watch(s, PODS + "?watch=1")
    assert w.status == 429 and w.headers["retry-after"] == "1", w.headers
    assert w.body()["reason"] == "TooManyRequests"
    w.close()
    s.ctl("fail", {"resource": "*", "status": 403})
    status, _, doc = s.call("GET", "/api/v1/namespaces")
    assert status == 403 and doc["reason"] == "Forbidden", doc
    assert 'cannot list resource "namespaces"' in doc["message"], doc


def t_requests_log(s):
    s.ctl("reset-requests")
    s.call("GET", SERVICES + "?limit=1&labelSelector=app%3Dweb")
    s.ctl("state", method="GET")        # control calls are not logged
    log = s.ctl("requests", method="GET")
    assert len(log) == 1, log
    e = log[0]
    assert (e["method"], e["path"], e["authorized"]) == \
        ("GET", SERVICES, True), e
    assert e["query"] == {"limit": "1", "labelSelector": "app=web"}, e
    assert abs(e["t"] - time.time()) < 5 and e["status"] == 200, e


def t_keepalive(s):
    conn = s.connect()
    s.call("GET", SERVICES, conn=conn)
    sock = conn.sock
    s.call("GET", PODS, conn=conn)
    assert conn.sock is sock, "second request must reuse the connection"
    conn.close()


def t_fixtures_shape(s):
    allowed = [ipaddress.ip_network(n) for n in
               ("198.18.0.0/15", "fd00::/8")]
    for path in FIXTURES:
        with open(path) as f:
            doc = json.load(f)
        if "type" in doc:
            continue
        meta = doc["metadata"]
        assert doc["kind"] and doc["apiVersion"], path
        assert meta["uid"] and meta["resourceVersion"] and \
            meta["creationTimestamp"] and meta["managedFields"], path
        for ip in ips_in(doc):
            assert any(ip in n for n in allowed), "%s: %s" % (path, ip)
    with open(os.path.join(HERE, "fixtures", "watch-410.json")) as f:
        ev = json.load(f)
    assert ev["type"] == "ERROR" and ev["object"]["code"] == 410


def ips_in(doc):
    if isinstance(doc, dict):
        for v in doc.values():
            yield from ips_in(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from ips_in(v)
    elif isinstance(doc, str):
        try:
            yield ipaddress.ip_address(doc)
        except ValueError:
            pass


HTTP_TESTS = [t_list_shape, t_get_and_not_found, t_pagination, t_selectors,
              t_watch_replays_from_rv, t_noop_apply_and_missing_delete,
              t_watch_zero_lists_first,
              t_live_latency, t_bookmark, t_timeout_ends_cleanly,
              t_drop_breaks_stream, t_watchers_count, t_label_move_is_delete,
              t_send_initial_events, t_compact_410, t_too_large_rv,
              t_fail_injection, t_requests_log, t_keepalive, t_fixtures_shape]

# --------------------------------------------------------------------------
# Tests over HTTPS with a token


def t_https_needs_token(s):
    status, _, doc = s.call("GET", SERVICES, token="")
    assert status == 401, status
    assert (doc["reason"], doc["code"]) == ("Unauthorized", 401), doc
    status, _, doc = s.call("GET", SERVICES, token="wrong")
    assert status == 401, status
    assert s.call("GET", SERVICES)[0] == 200
    log = s.ctl("requests", method="GET")
    assert [e["authorized"] for e in log] == [False, False, True], log


def t_https_verifies_hostnames(s):
    for name in ("127.0.0.1", "localhost"):
        sock = socket.create_connection((s.host, s.port), timeout=5)
        tls = s.ctx.wrap_socket(sock, server_hostname=name)
        tls.close()     # the handshake verified chain and name
    bad = ssl.create_default_context()      # system CAs: must not trust us
    sock = socket.create_connection((s.host, s.port), timeout=5)
    try:
        bad.wrap_socket(sock, server_hostname="127.0.0.1")
        raise AssertionError("an unknown CA was accepted")
    except ssl.SSLCertVerificationError:
        pass
    finally:
        sock.close()


def t_https_watch_live_and_drop(s):
    w = Watch(s, SERVICES + "?watch=1&resourceVersion=%d" % s.rv())
    t0 = time.monotonic()
    s.ctl("apply", svc("tls-live"))
    ev = w.next(1.0)
    took = time.monotonic() - t0
    assert isinstance(ev, dict) and ev["type"] == "ADDED", ev
    assert took < LIVE_BUDGET_S, "%.1f ms" % (took * 1e3)
    s.ctl("drop")
    assert w.next(2.0) == BROKEN
    w.close()
    return "%.1f ms" % (took * 1e3)


def t_https_bookmark_interval(s):
    w = Watch(s, PODS + "?watch=1&allowWatchBookmarks=1&resourceVersion=%d"
              % s.rv())
    evs = [w.next(1.0), w.next(1.0)]
    w.close()
    assert all(isinstance(e, dict) and e["type"] == "BOOKMARK" for e in evs), \
        "--bookmark-interval 0.3 must send bookmarks unasked: %r" % evs
    assert evs[0]["object"]["spec"] == {"containers": None}, evs[0]


HTTPS_TESTS = [t_https_needs_token, t_https_verifies_hostnames,
               t_https_watch_live_and_drop, t_https_bookmark_interval]

# --------------------------------------------------------------------------


def run(tests, srv, results):
    for t in tests:
        name = t.__name__[2:].replace("_", " ")
        try:
            note = t(srv)
            results.append(True)
            print("ok - %s%s" % (name, " (%s)" % note if note else ""))
        except Exception as e:      # one failure must not stop the rest
            results.append(False)
            print("not ok - %s: %s" % (name, e or type(e).__name__))
            for line in traceback.format_exc().splitlines()[-4:-1]:
                print("#   " + line)
        sys.stdout.flush()


def main():
    t0 = time.monotonic()
    results = []
    objects = [f for f in FIXTURES if "watch-" not in os.path.basename(f)]
    srv = Server("--too-large-wait", "0.2", "--fixtures", *objects)
    try:
        run(HTTP_TESTS, srv, results)
    finally:
        srv.stop()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, SERVER, "make-cert", tmp], check=True,
                       stdout=subprocess.DEVNULL)
        srv = Server("--token", "s3cret", "--bookmark-interval", "0.3",
                     "--tls-cert",
                     os.path.join(tmp, "server.crt"), "--tls-key",
                     os.path.join(tmp, "server.key"),
                     token="s3cret", cafile=os.path.join(tmp, "ca.crt"))
        try:
            run(HTTPS_TESTS, srv, results)
        finally:
            srv.stop()
    passed = sum(results)
    print("%d passed, %d failed (%.1f s)" % (
        passed, len(results) - passed, time.monotonic() - t0))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
