#!/usr/bin/python3
"""Traffic generator for the Sluice e2e tests (talks to tests/e2e/lbserver.py).

  lbclient.py spread --vip ADDR --port P --count N [--udp] [--timeout S]
      N sequential TCP connections (or N UDP sockets, each with a source
      port not used before in this run); each sends one line and reads the
      reply.  Prints
      {"ok", "failed", "by_backend": {name: n}, "bad_peer", ...}
      bad_peer counts replies whose peer (getpeername() for TCP, recvfrom()
      source for UDP) is not VIP:PORT (such UDP replies still count as ok).

  lbclient.py hold --vip ADDR --port P --count N --duration S [--interval-ms 100]
      N long-lived TCP connections; every interval each sends a line and
      checks that the replying backend name stays the same.  Runs for
      --duration seconds (0 = until SIGTERM/SIGINT/SIGUSR1; a signal also ends
      a timed run early, results are still printed).  --ready-file F is
      created once all connections are established.  Prints
      {"conns", "ok", "failed", "switched", "by_backend", ...} where ok/failed
      count connections (failed = connect error or any later error) and
      switched counts connections whose backend name changed.

  lbclient.py churn --vip ADDR --port P --interval-ms 5 --duration S [--udp]
      a new connection (or UDP socket) every interval; each sends one line,
      reads the reply and closes.  Prints {"attempts", "ok", "failed",
      "by_backend", "bad_peer", "latency_ms", ...}.

IPv4 or IPv6 is chosen from the address format.  Every network operation
has a timeout (--timeout, default 2 s), so nothing hangs.  Output is one
JSON line on stdout; diagnostics go to stderr.  The exit status is 0 unless
the arguments are bad, or --strict is given and something failed.

Extra JSON fields: "errors" {kind: n}, "src_changed" (replies in which the
backend saw a different client address/port than our socket's own, i.e.
SNAT happened), "elapsed_s".
"""

import argparse
import asyncio
import errno
import json
import os
import signal
import socket
import sys
import time


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def norm_ip(addr):
    fam = family_of(addr)
    try:
        return socket.inet_ntop(fam, socket.inet_pton(fam, addr.split("%")[0]))
    except OSError:
        return addr


def same_endpoint(peer, vip, port):
    return norm_ip(peer[0]) == norm_ip(vip) and int(peer[1]) == int(port)


def err_kind(e):
    if isinstance(e, (socket.timeout, asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(e, ConnectionRefusedError):
        return "refused"
    if isinstance(e, ConnectionResetError):
        return "reset"
    if isinstance(e, (BrokenPipeError, ConnectionAbortedError)):
        return "broken"
    if isinstance(e, asyncio.IncompleteReadError) or isinstance(e, EOFError):
        return "eof"
    if isinstance(e, BadReply):
        return "bad_reply"
    if isinstance(e, OSError) and e.errno:
        if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return "unreachable"
        return errno.errorcode.get(e.errno, str(e.errno))
    return type(e).__name__


class BadReply(Exception):
    pass


def parse_reply(line):
    """'NAME ip port\\n' -> (name, ip, port)"""
    try:
        txt = line.decode().strip()
        name, ip, port = txt.split()
        return name, ip, int(port)
    except Exception:
        raise BadReply("bad reply %r" % (line[:80],))


class Stats:
    def __init__(self):
        self.ok = 0
        self.failed = 0
        self.by_backend = {}
        self.bad_peer = 0
        self.src_changed = 0
        self.errors = {}
        self.lat = []
        self.first_errors = []

    def err(self, e, what=""):
        self.failed += 1
        k = err_kind(e)
        self.errors[k] = self.errors.get(k, 0) + 1
        if len(self.first_errors) < 5:
            self.first_errors.append("%s%s: %s" % (what, k, e))

    def backend(self, name):
        self.by_backend[name] = self.by_backend.get(name, 0) + 1

    def src_check(self, reply_ip, reply_port, local):
        """the backend's view of us vs our socket name (ip may be unset for UDP)"""
        if int(reply_port) != int(local[1]):
            self.src_changed += 1
        elif local[0] not in ("0.0.0.0", "::") and norm_ip(reply_ip) != norm_ip(local[0]):
            self.src_changed += 1


def latency_summary(lat):
    if not lat:
        return {}
    s = sorted(lat)

    def pct(p):
        return round(s[min(len(s) - 1, int(p / 100.0 * len(s)))] * 1000, 3)
    return {"p50": pct(50), "p90": pct(90), "p99": pct(99),
            "max": round(s[-1] * 1000, 3)}


def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def mksock(args, typ):
    s = socket.socket(family_of(args.vip), typ)
    if args.src:
        s.bind((args.src, 0))
    elif typ == socket.SOCK_DGRAM:
        s.bind(("::" if family_of(args.vip) == socket.AF_INET6 else "0.0.0.0", 0))
    return s


# ---------------------------------------------------------------------------
# spread


def recv_line(s, deadline):
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out waiting for reply")
        s.settimeout(left)
        d = s.recv(4096)
        if not d:
            raise EOFError("connection closed before reply")
        buf += d
    return buf.split(b"\n", 1)[0] + b"\n"


def udp_sock_new_port(args, used):
    """a bound UDP socket whose source port this run has not used yet (the
    kernel picks ports at random, so closed sockets' ports come back)"""
    for _ in range(100):
        s = mksock(args, socket.SOCK_DGRAM)
        port = s.getsockname()[1]
        if port not in used:
            used.add(port)
            return s
        s.close()
    raise OSError(errno.EADDRINUSE, "no unused source port found")


def spread(args):
    st = Stats()
    dst = (args.vip, args.port)
    used_ports = set()
    for i in range(args.count):
        t0 = time.monotonic()
        deadline = t0 + args.timeout
        s = None
        try:
            if args.udp:
                s = udp_sock_new_port(args, used_ports)
                s.settimeout(args.timeout)
                s.sendto(b"spread %d\n" % i, dst)
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise socket.timeout("timed out waiting for reply")
                    s.settimeout(left)
                    data, src = s.recvfrom(65535)
                    break
                name, rip, rport = parse_reply(data)
                peer = src
                local = s.getsockname()
            else:
                s = mksock(args, socket.SOCK_STREAM)
                s.settimeout(args.timeout)
                s.connect(dst)
                s.sendall(b"spread %d\n" % i)
                name, rip, rport = parse_reply(recv_line(s, deadline))
                peer = s.getpeername()
                local = s.getsockname()
            st.ok += 1
            st.backend(name)
            st.lat.append(time.monotonic() - t0)
            if not same_endpoint(peer, args.vip, args.port):
                st.bad_peer += 1
            st.src_check(rip, rport, local)
        except Exception as e:  # noqa: BLE001 - classify everything
            st.err(e, "#%d " % i)
        finally:
            if s is not None:
                s.close()
    return {"ok": st.ok, "failed": st.failed, "by_backend": st.by_backend,
            "bad_peer": st.bad_peer, "src_changed": st.src_changed,
            "errors": st.errors, "first_errors": st.first_errors,
            "latency_ms": latency_summary(st.lat)}


# ---------------------------------------------------------------------------
# hold


class HoldConn:
    def __init__(self, idx):
        self.idx = idx
        self.reader = None
        self.writer = None
        self.first = None
        self.last = None
        self.alive = False
        self.switched = False
        self.error = None
        self.exchanges = 0


async def tcp_exchange(reader, writer, line, timeout):
    writer.write(line)
    await asyncio.wait_for(writer.drain(), timeout)
    data = await asyncio.wait_for(reader.readuntil(b"\n"), timeout)
    return parse_reply(data)


def install_stop(loop, ev):
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        try:
            loop.add_signal_handler(sig, ev.set)
        except (ValueError, RuntimeError, NotImplementedError):
            pass


async def hold(args):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    install_stop(loop, stop)
    st = Stats()
    conns = [HoldConn(i) for i in range(args.count)]
    t_start = time.monotonic()
    local_addr = (args.src, 0) if args.src else None

    async def close(c):
        c.alive = False
        if c.writer is not None:
            c.writer.close()
            try:
                await asyncio.wait_for(c.writer.wait_closed(), 0.5)
            except Exception:  # noqa: BLE001
                pass

    async def fail(c, e, what):
        c.error = "%s: %s" % (what, err_kind(e))
        k = err_kind(e)
        st.errors[k] = st.errors.get(k, 0) + 1
        if len(st.first_errors) < 5:
            st.first_errors.append("conn %d %s %s: %s" % (c.idx, what, k, e))
        await close(c)

    # establish (sequentially: deterministic, one SYN at a time)
    for c in conns:
        if stop.is_set():
            break
        try:
            c.reader, c.writer = await asyncio.wait_for(
                asyncio.open_connection(args.vip, args.port, local_addr=local_addr),
                args.timeout)
            c.alive = True
            name, rip, rport = await tcp_exchange(c.reader, c.writer,
                                                  b"hold %d 0\n" % c.idx, args.timeout)
            c.first = c.last = name
            c.exchanges += 1
            st.src_check(rip, rport, c.writer.get_extra_info("sockname"))
        except Exception as e:  # noqa: BLE001
            await fail(c, e, "connect")
    n_est = sum(1 for c in conns if c.alive)
    print("lbclient hold: established %d/%d" % (n_est, args.count),
          file=sys.stderr, flush=True)
    if args.ready_file:
        with open(args.ready_file + ".tmp", "w") as f:
            f.write("%d\n" % n_est)
        os.rename(args.ready_file + ".tmp", args.ready_file)

    async def one(c, rnd):
        try:
            name, _rip, _rport = await tcp_exchange(
                c.reader, c.writer, b"hold %d %d\n" % (c.idx, rnd), args.timeout)
            c.exchanges += 1
            if name != c.first:
                c.switched = True
            c.last = name
        except Exception as e:  # noqa: BLE001
            await fail(c, e, "round %d" % rnd)

    t0 = time.monotonic()
    end = t0 + args.duration if args.duration > 0 else None
    interval = args.interval_ms / 1000.0
    rnd = 0
    while not stop.is_set():
        rnd += 1
        live = [c for c in conns if c.alive]
        if live:
            await asyncio.gather(*(one(c, rnd) for c in live))
        nxt = t0 + rnd * interval
        now = time.monotonic()
        if end is not None and now >= end:
            break
        wake = nxt if end is None else min(nxt, end)
        if wake > now:
            try:
                await asyncio.wait_for(stop.wait(), wake - now)
            except asyncio.TimeoutError:
                pass
        if end is not None and time.monotonic() >= end:
            break

    for c in conns:
        if c.alive:
            await close(c)
    by_backend = {}
    final_by_backend = {}
    for c in conns:
        if c.first is not None:
            by_backend[c.first] = by_backend.get(c.first, 0) + 1
        if c.last is not None and c.error is None:
            final_by_backend[c.last] = final_by_backend.get(c.last, 0) + 1
    failed = sum(1 for c in conns if c.error is not None)
    return {"conns": args.count, "established": n_est,
            "ok": args.count - failed, "failed": failed,
            "switched": sum(1 for c in conns if c.switched),
            "by_backend": by_backend, "final_by_backend": final_by_backend,
            "rounds": rnd, "exchanges": sum(c.exchanges for c in conns),
            "src_changed": st.src_changed, "errors": st.errors,
            "first_errors": st.first_errors,
            "elapsed_s": round(time.monotonic() - t_start, 3)}


# ---------------------------------------------------------------------------
# churn


async def churn(args):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    install_stop(loop, stop)
    st = Stats()
    local_addr = (args.src, 0) if args.src else None
    dst = (args.vip, args.port)

    async def attempt_tcp(i):
        t0 = time.monotonic()
        writer = None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(args.vip, args.port, local_addr=local_addr),
                args.timeout)
            name, rip, rport = await tcp_exchange(reader, writer, b"churn %d\n" % i,
                                                  args.timeout)
            st.ok += 1
            st.backend(name)
            st.lat.append(time.monotonic() - t0)
            if not same_endpoint(writer.get_extra_info("peername"), args.vip, args.port):
                st.bad_peer += 1
            st.src_check(rip, rport, writer.get_extra_info("sockname"))
        except Exception as e:  # noqa: BLE001
            st.err(e, "#%d " % i)
        finally:
            if writer is not None:
                writer.close()
                try:
                    await asyncio.wait_for(writer.wait_closed(), 0.5)
                except Exception:  # noqa: BLE001
                    pass

    async def attempt_udp(i):
        t0 = time.monotonic()
        s = None
        try:
            s = mksock(args, socket.SOCK_DGRAM)
            s.setblocking(False)
            await asyncio.wait_for(loop.sock_sendto(s, b"churn %d\n" % i, dst), args.timeout)
            data, src = await asyncio.wait_for(loop.sock_recvfrom(s, 65535), args.timeout)
            name, rip, rport = parse_reply(data)
            st.ok += 1
            st.backend(name)
            st.lat.append(time.monotonic() - t0)
            if not same_endpoint(src, args.vip, args.port):
                st.bad_peer += 1
            st.src_check(rip, rport, s.getsockname())
        except Exception as e:  # noqa: BLE001
            st.err(e, "#%d " % i)
        finally:
            if s is not None:
                s.close()

    attempt = attempt_udp if args.udp else attempt_tcp
    interval = args.interval_ms / 1000.0
    t0 = time.monotonic()
    end = t0 + args.duration
    tasks = set()
    i = 0
    while not stop.is_set():
        now = time.monotonic()
        if now >= end:
            break
        t = asyncio.ensure_future(attempt(i))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
        i += 1
        nxt = t0 + i * interval
        if nxt >= end:
            break
        delay = nxt - time.monotonic()
        if delay > 0:
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except asyncio.TimeoutError:
                pass
        else:
            await asyncio.sleep(0)
    if tasks:
        await asyncio.gather(*list(tasks))
    return {"attempts": i, "ok": st.ok, "failed": st.failed,
            "by_backend": st.by_backend, "bad_peer": st.bad_peer,
            "src_changed": st.src_changed, "errors": st.errors,
            "first_errors": st.first_errors,
            "latency_ms": latency_summary(st.lat),
            "elapsed_s": round(time.monotonic() - t0, 3)}


# ---------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)

    def common(p):
        p.add_argument("--vip", required=True, help="destination address (v4 or v6)")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--timeout", type=float, default=2.0,
                       help="per-operation timeout in seconds (default 2)")
        p.add_argument("--src", help="bind this local address")
        p.add_argument("--strict", action="store_true",
                       help="exit 1 if anything failed / bad_peer / switched")

    p = sub.add_parser("spread")
    common(p)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--udp", action="store_true")

    p = sub.add_parser("hold")
    common(p)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--duration", type=float, required=True,
                   help="seconds; 0 = until SIGTERM/SIGINT/SIGUSR1")
    p.add_argument("--interval-ms", type=float, default=100.0)
    p.add_argument("--ready-file", help="create this file once connected")

    p = sub.add_parser("churn")
    common(p)
    p.add_argument("--interval-ms", type=float, default=5.0)
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--udp", action="store_true")

    args = ap.parse_args()
    if getattr(args, "count", 1) < 0 or args.timeout <= 0:
        ap.error("bad --count/--timeout")
    if getattr(args, "interval_ms", 1) <= 0:
        ap.error("--interval-ms must be > 0")

    if args.mode == "spread":
        # let TERM/INT end a spread run quietly
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        res = spread(args)
    elif args.mode == "hold":
        res = asyncio.run(hold(args))
    else:
        res = asyncio.run(churn(args))
    emit(res)
    if args.strict and (res.get("failed") or res.get("bad_peer") or res.get("switched")):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
