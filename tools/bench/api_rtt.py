#!/usr/bin/env python3
"""Time backend.add requests on sluiced's socket, from connect to reply.

The agent replies once the new Maglev table is published, so this is the
agent's share of `sluice backend add` without the CLI's process start.
Each add is undone with an untimed backend.del. Prints one wall time in
microseconds per line.

Usage: api_rtt.py SOCKET SERVICE BACKEND RUNS
"""
import json
import socket
import sys
import time


def call(path, request):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        s.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    reply = json.loads(data)
    if not reply.get("ok"):
        sys.exit(f"api_rtt: {request['op']} failed: {reply}")
    return reply


def main():
    path, service, backend, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    add = {"op": "backend.add", "service": service, "backend": backend}
    delete = {"op": "backend.del", "service": service, "backend": backend}
    for _ in range(runs):
        t0 = time.perf_counter()
        call(path, add)
        t1 = time.perf_counter()
        call(path, delete)
        print(round((t1 - t0) * 1e6))


if __name__ == "__main__":
    main()
