#!/usr/bin/python3
"""Raw client of sluiced's control API, for the Sluice e2e tests.

The API (user/lib/api.h) is one JSON object plus a newline per request on a
Unix stream socket, one request per connection; the agent answers with one
JSON object and a newline, then closes.  This client sends exactly the bytes
it is given, so a test can send what `sluice` never would:

  apiclient.py SOCKET send DATA     send DATA (a string, as is: add the
                                    newline yourself), read the reply
  apiclient.py SOCKET big NBYTES    send NBYTES of 'x' with no newline (an
                                    oversized request), read the reply
  apiclient.py SOCKET close         connect and close without a byte

Prints one JSON line:
  {"reply": <the reply parsed, or null>, "raw": <its first 300 bytes>,
   "sent": <bytes sent>, "send_error": <str or null>,
   "recv_error": <str or null>, "elapsed_ms": <float>}
"reply" is null when the agent sent nothing or not one JSON object.  The
exit status is 0 unless the arguments are bad or the socket cannot be
reached (exit 1, the reason on stderr).
"""

import json
import socket
import sys
import time

TIMEOUT_S = 20.0  # the agent waits 5 s for a request; reading 64 MiB is fast
CHUNK = 1 << 20


def send_bytes(s, data):
    """Send @data, stopping at the first error (the agent may close early).
    Returns (bytes sent, error text or None)."""
    sent = 0
    view = memoryview(data)
    try:
        while sent < len(data):
            sent += s.send(view[sent:sent + CHUNK])
    except OSError as e:
        return sent, "%s: %s" % (type(e).__name__, e)
    return sent, None


def recv_all(s):
    """Everything the agent sends until it closes. Returns (bytes, error)."""
    buf = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return buf, None
            buf += d
    except OSError as e:
        return buf, "%s: %s" % (type(e).__name__, e)


def parse(raw):
    try:
        obj = json.loads(raw.decode().split("\n", 1)[0])
    except (UnicodeDecodeError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def main():
    if len(sys.argv) < 3 or sys.argv[2] not in ("send", "big", "close"):
        sys.exit(__doc__)
    path, mode = sys.argv[1], sys.argv[2]
    if mode == "send" and len(sys.argv) == 4:
        data = sys.argv[3].encode()
    elif mode == "big" and len(sys.argv) == 4 and sys.argv[3].isdigit():
        data = b"x" * int(sys.argv[3])
    elif mode == "close" and len(sys.argv) == 3:
        data = None
    else:
        sys.exit(__doc__)

    t0 = time.monotonic()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT_S)
    try:
        s.connect(path)
    except OSError as e:
        sys.exit("apiclient: cannot connect to %s: %s" % (path, e))
    out = {"reply": None, "raw": "", "sent": 0, "send_error": None, "recv_error": None}
    if data is not None:
        out["sent"], out["send_error"] = send_bytes(s, data)
        raw, out["recv_error"] = recv_all(s)
        out["raw"] = raw[:300].decode(errors="replace")
        out["reply"] = parse(raw)
    s.close()
    out["elapsed_ms"] = round((time.monotonic() - t0) * 1000, 1)
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
