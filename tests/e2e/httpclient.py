#!/usr/bin/python3
"""HTTP/1.1 client for the sluice-proxy e2e test (tests/e2e/test_proxy.sh).

Raw sockets rather than http.client, so that a test controls every byte
(chunked bodies, pipelining, malformed heads, a head sent in halves) and
sees how the proxy ends the connection.  Every command prints one JSON
line on stdout.  Common options: --addr ADDR (default 127.0.0.1), --port P
(default 15001), --timeout S (per command, default 10).

  many --path P [--count N] [--method M] [--header K:V]...
      N sequential requests on one keep-alive connection (a new one only
      when the proxy closes it).  {"status": {code: n}, "upstream":
      {X-Upstream: n}, "connections": k, "errors": [...]}

  hash --users U --count N [--user-header x-user] [--header K:V]...
      for each of U users N requests with USER-HEADER: uU.
      {"users": {user: {X-Upstream: n}}, "status": {...}, "errors": [...]}

  concurrent --path P --count N [--header K:V]...
      N connections at once, one request each.  {"status": {...},
      "upstream": {...}, "errors": [...]}

  raw --data TEXT [--data TEXT...] [--wait S] [--half-close]
      send TEXT (Python escapes such as \\r\\n; {fill:N} becomes N 'a's,
      {headers:N} N header fields "X-Hi: v"), with --half-close then
      shut down the sending side, and read responses until the proxy
      closes or no byte comes for --wait seconds.  {"responses":
      [{"status", "headers", "body_len", "body"}], "closed": how the
      connection ended ("eof", "reset" or false), "elapsed_ms": until the
      first response, "end_ms": until it ended}; several --data: each on
      a connection of its own, all at once, and a JSON list of those

  echo --size N [--chunked] [--path /echo]
      POST N pseudo-random bytes (Content-Length, or chunks of varying
      sizes), sent while the response is read.  {"status", "sent", "got",
      "match": sha256 of both equal, "upstream"}

  get --path P
      one GET: {"status", "headers", "body_len", "chunked", "upstream"}
"""

import argparse
import hashlib
import json
import random
import re
import socket
import sys
import threading
import time


class Closed(Exception):
    """The connection ended before a whole response."""


class Conn:
    """A client connection with a read buffer and a response parser."""

    def __init__(self, addr, port, timeout):
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        self.sock = socket.create_connection((addr, port), timeout=timeout) \
            if fam == socket.AF_INET else self._connect6(addr, port, timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    @staticmethod
    def _connect6(addr, port, timeout):
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect((addr, port))
        return s

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        if self.eof:
            raise Closed("eof")
        try:
            d = self.sock.recv(65536)
        except ConnectionResetError:
            self.eof = True
            raise Closed("reset")
        if not d:
            self.eof = True
            raise Closed("eof")
        self.buf += d

    def _line(self):
        while b"\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r")

    def _exact(self, n, sink):
        while n:
            if not self.buf:
                self._fill()
            take = self.buf[:n]
            self.buf = self.buf[len(take):]
            sink(take)
            n -= len(take)

    def response(self, head_request=False):
        """Read one final response; 1xx ones are skipped."""
        while True:
            line = self._line()
            m = re.match(rb"HTTP/1\.([01]) (\d{3})", line)
            if not m:
                raise ValueError("bad status line %r" % line[:100])
            status = int(m.group(2))
            headers = []
            while True:
                h = self._line()
                if not h:
                    break
                k, _, v = h.partition(b":")
                headers.append((k.decode("latin-1").lower(), v.strip().decode("latin-1")))
            if status >= 200:
                break
        hd = {}
        for k, v in headers:
            hd[k] = hd[k] + "," + v if k in hd else v
        h = hashlib.sha256()
        resp = {"status": status, "headers": hd, "body_len": 0, "chunked": False,
                "upstream": hd.get("x-upstream")}
        first = bytearray()

        def sink(b):
            h.update(b)
            resp["body_len"] += len(b)
            if len(first) < 200:
                first.extend(b[:200 - len(first)])

        if head_request or status in (204, 304):
            pass
        elif "chunked" in hd.get("transfer-encoding", "").lower():
            resp["chunked"] = True
            while True:
                size = int(self._line().split(b";")[0].strip(), 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                self._exact(size, sink)
                if self._line() != b"":
                    raise ValueError("chunk not followed by CRLF")
        elif "content-length" in hd:
            self._exact(int(hd["content-length"]), sink)
        else:
            try:
                while True:
                    self._fill()
                    sink(self.buf)
                    self.buf = b""
            except Closed:
                pass
        resp["sha256"] = h.hexdigest()
        resp["body"] = first.decode("latin-1")
        resp["close"] = "close" in hd.get("connection", "").lower()
        return resp

    def close(self):
        self.sock.close()


def request_bytes(method, path, headers, host="proxy.test", body=b""):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: " + host]
    lines += headers
    if body:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def header_list(args):
    return [h.replace(":", ": ", 1) for h in (args.header or [])]


def bump(d, k):
    k = str(k)
    d[k] = d.get(k, 0) + 1


def cmd_many(args):
    out = {"status": {}, "upstream": {}, "connections": 0, "errors": []}
    c = None
    data = request_bytes(args.method, args.path, header_list(args))
    for _ in range(args.count):
        try:
            if c is None:
                c = Conn(args.addr, args.port, args.timeout)
                out["connections"] += 1
            c.send(data)
            r = c.response(args.method == "HEAD")
            bump(out["status"], r["status"])
            if r["upstream"]:
                bump(out["upstream"], r["upstream"])
            if r["close"]:
                c.close()
                c = None
        except Exception as e:  # noqa: BLE001 - reported, the run goes on
            out["errors"].append(repr(e)[:200])
            if c:
                c.close()
            c = None
    print(json.dumps(out, sort_keys=True))


def cmd_hash(args):
    out = {"users": {}, "status": {}, "errors": []}
    for u in range(args.users):
        user = "u%d" % u
        got = out["users"].setdefault(user, {})
        try:
            c = Conn(args.addr, args.port, args.timeout)
            data = request_bytes("GET", "/hash", header_list(args) +
                                 ["%s: %s" % (args.user_header, user)])
            for _ in range(args.count):
                c.send(data)
                r = c.response()
                bump(out["status"], r["status"])
                bump(got, r["upstream"])
            c.close()
        except Exception as e:  # noqa: BLE001
            out["errors"].append(repr(e)[:200])
    print(json.dumps(out, sort_keys=True))


def cmd_concurrent(args):
    out = {"status": {}, "upstream": {}, "errors": []}
    lock = threading.Lock()
    conns = []
    for _ in range(args.count):
        conns.append(Conn(args.addr, args.port, args.timeout))
    data = request_bytes("GET", args.path, header_list(args))
    go = threading.Barrier(args.count)

    def one(c):
        try:
            go.wait()
            c.send(data)
            r = c.response()
            with lock:
                bump(out["status"], r["status"])
                if r["upstream"]:
                    bump(out["upstream"], r["upstream"])
        except Exception as e:  # noqa: BLE001
            with lock:
                out["errors"].append(repr(e)[:200])

    threads = [threading.Thread(target=one, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(out, sort_keys=True))


def expand(text):
    """--data TEXT: Python escapes, {fill:N} and {headers:N}."""
    text = text.encode("latin-1").decode("unicode_escape")
    text = re.sub(r"\{fill:(\d+)\}", lambda m: "a" * int(m.group(1)), text)
    text = re.sub(r"\{headers:(\d+)\}",
                  lambda m: "".join("X-H%d: v\r\n" % i for i in range(int(m.group(1)))), text)
    return text.encode("latin-1")


def cmd_raw(args):
    if len(args.data) == 1:
        print(json.dumps(raw_one(args, args.data[0]), sort_keys=True))
        return
    results = [None] * len(args.data)

    def run(i):
        try:
            results[i] = raw_one(args, args.data[i])
        except Exception as e:  # noqa: BLE001
            results[i] = {"error": repr(e)[:200], "responses": [], "closed": False}

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(args.data))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(results, sort_keys=True))


def raw_one(args, text):
    out = {"responses": [], "closed": False, "elapsed_ms": None, "end_ms": None}
    c = Conn(args.addr, args.port, args.timeout)
    c.sock.settimeout(args.wait)
    data = expand(text)
    # the method of each request, so that answers to HEAD are read bodiless
    methods = re.findall(rb"(?:\A|\n\r?\n)([A-Z]+) ", data)
    start = time.monotonic()
    try:
        c.send(data)
        if args.half_close:
            c.sock.shutdown(socket.SHUT_WR)
    except OSError as e:
        out["send_error"] = repr(e)
    try:
        while True:
            i = len(out["responses"])
            r = c.response(i < len(methods) and methods[i] == b"HEAD")
            if out["elapsed_ms"] is None:
                out["elapsed_ms"] = round((time.monotonic() - start) * 1000)
            r.pop("sha256")
            out["responses"].append(r)
    except Closed as e:
        out["closed"] = str(e)
        out["end_ms"] = round((time.monotonic() - start) * 1000)
    except socket.timeout:
        out["closed"] = False
    except Exception as e:  # noqa: BLE001
        out["error"] = repr(e)[:200]
    c.close()
    return out


def cmd_echo(args):
    rng = random.Random(args.size)
    body = rng.randbytes(args.size)
    c = Conn(args.addr, args.port, args.timeout)
    head = ["POST %s HTTP/1.1" % args.path, "Host: proxy.test"] + header_list(args)
    head.append("Transfer-Encoding: chunked" if args.chunked else "Content-Length: %d" % args.size)
    send_err = []

    def sender():
        try:
            c.send(("\r\n".join(head) + "\r\n\r\n").encode())
            pos = 0
            while pos < len(body):
                n = rng.randint(1, 70000) if args.chunked else 256 * 1024
                part = body[pos:pos + n]
                pos += len(part)
                if args.chunked:
                    ext = ";x=y" if pos % 3 == 0 else ""
                    c.send(b"%x%s\r\n%s\r\n" % (len(part), ext.encode(), part))
                else:
                    c.send(part)
            if args.chunked:
                c.send(b"0\r\nX-Trailer: t\r\n\r\n")
        except OSError as e:
            send_err.append(repr(e))

    t = threading.Thread(target=sender)
    t.start()
    out = {}
    try:
        r = c.response()
        out = {"status": r["status"], "got": r["body_len"], "upstream": r["upstream"],
               "match": r["sha256"] == hashlib.sha256(body).hexdigest()}
    except Exception as e:  # noqa: BLE001
        out = {"error": repr(e)[:200]}
    t.join()
    out["sent"] = len(body)
    if send_err:
        out["send_error"] = send_err[0]
    c.close()
    print(json.dumps(out, sort_keys=True))


def cmd_get(args):
    c = Conn(args.addr, args.port, args.timeout)
    c.send(request_bytes("GET", args.path, header_list(args)))
    r = c.response()
    r.pop("body")
    c.close()
    print(json.dumps(r, sort_keys=True))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--addr", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=15001)
    ap.add_argument("--timeout", type=float, default=10)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("many")
    p.add_argument("--path", default="/")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--method", default="GET")
    p.add_argument("--header", action="append")
    p = sub.add_parser("hash")
    p.add_argument("--users", type=int, default=10)
    p.add_argument("--count", type=int, default=50)
    p.add_argument("--user-header", default="x-user")
    p.add_argument("--header", action="append")
    p = sub.add_parser("concurrent")
    p.add_argument("--path", default="/")
    p.add_argument("--count", type=int, default=5)
    p.add_argument("--header", action="append")
    p = sub.add_parser("raw")
    p.add_argument("--data", required=True, action="append")
    p.add_argument("--wait", type=float, default=3)
    p.add_argument("--half-close", action="store_true")
    p = sub.add_parser("echo")
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--chunked", action="store_true")
    p.add_argument("--path", default="/echo")
    p.add_argument("--header", action="append")
    p = sub.add_parser("get")
    p.add_argument("--path", default="/")
    p.add_argument("--header", action="append")
    args = ap.parse_args()
    {"many": cmd_many, "hash": cmd_hash, "concurrent": cmd_concurrent, "raw": cmd_raw,
     "echo": cmd_echo, "get": cmd_get}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
