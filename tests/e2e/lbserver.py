#!/usr/bin/python3
"""Backend server for the Sluice e2e tests.

    lbserver.py --name NAME --port P [--udp] [--v6 | --dual]

TCP: for every line received on a connection, reply
     "NAME <peer-ip> <peer-port>\\n" and keep the connection open until the
     client closes it.
UDP: reply to every datagram with "NAME <peer-ip> <peer-port>\\n".

<peer-ip>/<peer-port> are the client address as seen by this backend.
Listens on all addresses: 0.0.0.0 (default), :: (--v6, IPv6 only) or both
(--dual, two sockets, so peers always appear in their native family).
Prints "ready" on stdout once listening.  Single-threaded (selectors), so it
starts quickly and handles many concurrent connections.  Exits on SIGTERM /
SIGINT.
"""

import argparse
import errno
import os
import selectors
import signal
import socket
import sys


def make_sockets(args):
    fams = []
    if args.dual:
        fams = [socket.AF_INET, socket.AF_INET6]
    elif args.v6:
        fams = [socket.AF_INET6]
    else:
        fams = [socket.AF_INET]
    socks = []
    for fam in fams:
        typ = socket.SOCK_DGRAM if args.udp else socket.SOCK_STREAM
        s = socket.socket(fam, typ)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind(("::", args.port))
        else:
            s.bind(("0.0.0.0", args.port))
        if not args.udp:
            s.listen(1024)
        s.setblocking(False)
        socks.append(s)
    return socks


def reply_for(name, peer):
    return ("%s %s %d\n" % (name, peer[0], peer[1])).encode()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--udp", action="store_true")
    fam = ap.add_mutually_exclusive_group()
    fam.add_argument("--v6", action="store_true", help="listen on :: only")
    fam.add_argument("--dual", action="store_true",
                     help="listen on 0.0.0.0 and :: (separate sockets)")
    ap.add_argument("--verbose", action="store_true",
                    help="log the first 20 accepted connections on stderr")
    args = ap.parse_args()

    # exit cleanly on TERM/INT (SIGINT may be ignored when started with &)
    def stop(_sig, _frm):
        sys.stdout.flush()
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    try:
        socks = make_sockets(args)
    except OSError as e:
        print("lbserver %s: cannot listen on port %d: %s" % (args.name, args.port, e),
              file=sys.stderr, flush=True)
        return 1

    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ, ("listen",))

    print("ready", flush=True)

    conns = {}  # sock -> [peer, inbuf, outbuf]
    nconn = 0

    def close(c):
        try:
            sel.unregister(c)
        except (KeyError, ValueError):
            pass
        conns.pop(c, None)
        c.close()

    def update(c):
        st = conns[c]
        ev = selectors.EVENT_READ | (selectors.EVENT_WRITE if st[2] else 0)
        sel.modify(c, ev, ("conn",))

    while True:
        for key, mask in sel.select():
            s = key.fileobj
            kind = key.data[0]
            if kind == "listen" and args.udp:
                while True:
                    try:
                        data, peer = s.recvfrom(65535)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    try:
                        s.sendto(reply_for(args.name, peer), peer)
                    except OSError as e:
                        if args.verbose:
                            print("sendto %s: %s" % (peer, e), file=sys.stderr, flush=True)
            elif kind == "listen":
                while True:
                    try:
                        c, peer = s.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError as e:
                        if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                            break
                        continue
                    c.setblocking(False)
                    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    conns[c] = [peer, b"", b""]
                    sel.register(c, selectors.EVENT_READ, ("conn",))
                    nconn += 1
                    if args.verbose and nconn <= 20:
                        print("accept %s %s" % (peer[0], peer[1]), file=sys.stderr, flush=True)
            else:
                st = conns.get(s)
                if st is None:
                    continue
                if mask & selectors.EVENT_READ:
                    try:
                        data = s.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        data = None
                    except OSError:
                        close(s)
                        continue
                    if data == b"":
                        close(s)
                        continue
                    if data:
                        st[1] += data
                        while b"\n" in st[1]:
                            _line, st[1] = st[1].split(b"\n", 1)
                            st[2] += reply_for(args.name, st[0])
                if st[2]:
                    try:
                        n = s.send(st[2])
                        st[2] = st[2][n:]
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError:
                        close(s)
                        continue
                update(s)


if __name__ == "__main__":
    sys.exit(main())
