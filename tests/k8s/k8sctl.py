#!/usr/bin/env python3
"""Drive tests/k8s/apiserver.py from a test: change objects, break streams.

    k8sctl.py URL apply FILE [STATEMENT]   apply a fixture; STATEMENT is Python
                                           that may change the object `o` first,
                                           e.g. 'o["spec"]["ports"][0]["port"] = 81'
    k8sctl.py URL delete KIND NAMESPACE NAME
    k8sctl.py URL post PATH [JSON]         a /_control/ call, prints the answer
    k8sctl.py URL get PATH

URL is the fake server's base (https: its certificate is not checked: the
client under test is what verifies it). Exit 1 on an HTTP error.
"""
import json
import ssl
import sys
import urllib.error
import urllib.request


def call(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    ctx = ssl._create_unverified_context() if base.startswith("https") else None
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        sys.exit("%s %s: HTTP %d %s" % (method, path, e.code, e.read()[:300]))


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    base, verb, args = argv[1], argv[2], argv[3:]
    if verb == "apply":
        with open(args[0]) as f:
            o = json.load(f)
        if len(args) > 1:
            exec(args[1], {"o": o})
        out = call(base, "POST", "/_control/apply", o)
    elif verb == "delete":
        out = call(base, "POST", "/_control/delete",
                   {"kind": args[0], "namespace": args[1], "name": args[2]})
    elif verb == "post":
        out = call(base, "POST", args[0], json.loads(args[1]) if len(args) > 1 else {})
    elif verb == "get":
        out = call(base, "GET", args[0])
    else:
        sys.exit(__doc__)
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv)
