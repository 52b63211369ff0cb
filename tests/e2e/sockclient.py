#!/usr/bin/python3
"""Socket-layer checks for the Sluice e2e tests.

  sockclient.py refused --vip ADDR --port P [--udp]
  sockclient.py connect --vip ADDR --port P [--udp] [--src ADDR]
      connect() (or sendto() for --udp), from --src when given, and report
      how it ended: {"errno": "OK" or its name (ECONNREFUSED for a service
      without backends, EPERM for a policy denial), "elapsed_ms"}.

  sockclient.py origdst-proxy --listen ADDR --port P
      a stand-in for sluice-proxy: accept connections and answer each with
      "ORIG <ip> <port>\\n", the original destination that
      getsockopt(SOL_IP or SOL_IPV6, SO_ORIGINAL_DST) returns (or
      "ORIG error <errno>").  Prints "ready" once listening.

  sockclient.py ask --vip ADDR --port P [--count N]
      N connections; each reads one line (after sending one).  Prints
      {"replies": {line: n}, "peers": {getpeername: n}, "errors": {...}}.

IPv4 or IPv6 is chosen from the address format.  Every operation has a
2 s timeout.  Output is one JSON line on stdout.
"""

import argparse
import errno
import json
import socket
import struct
import sys
import time

SO_ORIGINAL_DST = 80


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def refused(args):
    fam = family_of(args.vip)
    typ = socket.SOCK_DGRAM if args.udp else socket.SOCK_STREAM
    s = socket.socket(fam, typ)
    s.settimeout(2)
    if getattr(args, "src", None):
        s.bind((args.src, 0))
    start = time.monotonic()
    err = 0
    try:
        if args.udp:
            s.sendto(b"x\n", (args.vip, args.port))
        else:
            s.connect((args.vip, args.port))
    except OSError as e:
        err = e.errno or -1
    print(json.dumps({"errno": errno.errorcode.get(err, err) if err else "OK",
                      "elapsed_ms": round((time.monotonic() - start) * 1000, 1)}))


def original_dst(conn):
    """The (ip, port) SO_ORIGINAL_DST gives, trying the socket's family."""
    if conn.family == socket.AF_INET:
        raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
        port, addr = struct.unpack_from("!H4s", raw, 2)
        return socket.inet_ntop(socket.AF_INET, addr), port
    raw = conn.getsockopt(socket.IPPROTO_IPV6, SO_ORIGINAL_DST, 28)
    port, = struct.unpack_from("!H", raw, 2)
    ip = socket.inet_ntop(socket.AF_INET6, raw[8:24])
    return ip.removeprefix("::ffff:"), port


def origdst_proxy(args):
    srv = socket.socket(family_of(args.listen), socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((args.listen, args.port))
    srv.listen(128)
    print("ready", flush=True)
    while True:
        conn, _ = srv.accept()
        try:
            ip, port = original_dst(conn)
            line = f"ORIG {ip} {port}\n"
        except OSError as e:
            line = f"ORIG error {errno.errorcode.get(e.errno, e.errno)}\n"
        try:
            conn.sendall(line.encode())
        except OSError:
            pass
        conn.close()


def ask(args):
    out = {"replies": {}, "peers": {}, "errors": {}}
    for _ in range(args.count):
        s = socket.socket(family_of(args.vip), socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect((args.vip, args.port))
            peer = s.getpeername()
            key = f"{peer[0]} {peer[1]}"
            out["peers"][key] = out["peers"].get(key, 0) + 1
            s.sendall(b"hello\n")
            line = s.makefile().readline().strip()
            out["replies"][line] = out["replies"].get(line, 0) + 1
        except OSError as e:
            kind = errno.errorcode.get(e.errno, str(e))
            out["errors"][kind] = out["errors"].get(kind, 0) + 1
        finally:
            s.close()
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("refused", "connect"):
        r = sub.add_parser(name)
        r.add_argument("--vip", required=True)
        r.add_argument("--port", type=int, required=True)
        r.add_argument("--udp", action="store_true")
        r.add_argument("--src")
    o = sub.add_parser("origdst-proxy")
    o.add_argument("--listen", required=True)
    o.add_argument("--port", type=int, required=True)
    a = sub.add_parser("ask")
    a.add_argument("--vip", required=True)
    a.add_argument("--port", type=int, required=True)
    a.add_argument("--count", type=int, default=1)
    args = p.parse_args()
    {"refused": refused, "connect": refused, "origdst-proxy": origdst_proxy,
     "ask": ask}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
