#!/usr/bin/python3
"""Fake Kubernetes API server for the sluiced --k8s tests.

Serves LIST and WATCH of services, endpointslices, pods and namespaces with
kube-apiserver's semantics: one etcd-like resourceVersion counter, paginated
lists bound to a snapshot, chunked watch streams replayed from a history,
bookmarks, 410 Expired after compaction.  /_control/ endpoints (no auth) let
a test change objects, compact, drop streams and inject failures.

    apiserver.py [--listen HOST:PORT] [--token T] [--tls-cert F --tls-key F]
                 [--fixtures FILE...] [--bookmark-interval S]
                 [--too-large-wait S] [--port-file F] [-v]
    apiserver.py make-cert DIR      write ca.crt, server.crt, server.key

The first stdout line is "listening on http[s]://HOST:PORT".
Python 3 stdlib only.
"""

import argparse
import base64
import collections
import hmac
import json
import os
import re
import select
import socket
import signal
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HANGUP_CHECK_S = 0.2    # how often an idle watch looks for a vanished client
HANDSHAKE_TIMEOUT_S = 10.0
INITIAL_EVENTS_END = "k8s.io/initial-events-end"
CONTINUE_API = "meta.k8s.io/v1"

# --------------------------------------------------------------------------
# Resources

Resource = collections.namedtuple(
    "Resource", "plural kind group_version namespaced bookmark_body fields")

# Field selectors each resource accepts; anything else is a 400, as in
# kube-apiserver (the pod list is the real one, trimmed of rare fields).
META_FIELDS = ("metadata.name", "metadata.namespace")
POD_FIELDS = META_FIELDS + (
    "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
    "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
    "status.podIP", "status.nominatedNodeName")

# bookmark_body: the zero-valued rest of the object, which Go's encoder
# still writes ("spec":{"containers":null} and so on) in BOOKMARK events.
RESOURCES = {r.plural: r for r in (
    Resource("services", "Service", "v1", True,
             {"spec": {}, "status": {"loadBalancer": {}}}, META_FIELDS),
    Resource("endpointslices", "EndpointSlice", "discovery.k8s.io/v1", True,
             {"addressType": "", "endpoints": None}, META_FIELDS),
    Resource("pods", "Pod", "v1", True,
             {"spec": {"containers": None}, "status": {}}, POD_FIELDS),
    Resource("namespaces", "Namespace", "v1", False,
             {"spec": {}, "status": {}}, ("metadata.name", "status.phase")),
)}
BY_KIND = {r.kind: r for r in RESOURCES.values()}

# Go's field order for ObjectMeta, so stored metadata reads like the real one.
META_ORDER = ("name", "generateName", "namespace", "selfLink", "uid",
              "resourceVersion", "generation", "creationTimestamp",
              "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
              "annotations", "ownerReferences", "finalizers", "managedFields")


def api_prefix(res):
    if res.group_version == "v1":
        return "/api/v1"
    return "/apis/" + res.group_version


def group_of(res):
    return res.group_version.rpartition("/")[0]


def typed(res, obj):
    """obj as a watch event or GET carries it: kind and apiVersion first."""
    out = {"kind": res.kind, "apiVersion": res.group_version}
    out.update(obj)
    return out


def now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --------------------------------------------------------------------------
# Errors as Status objects

REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden",
           404: "NotFound", 405: "MethodNotAllowed", 409: "Conflict",
           410: "Expired", 422: "Invalid", 429: "TooManyRequests",
           500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


def status_object(code, message, reason=None, details=None, meta=None):
    st = {"kind": "Status", "apiVersion": "v1", "metadata": meta or {},
          "status": "Failure", "message": message,
          "reason": reason or REASONS.get(code, "")}
    if details is not None:
        st["details"] = details
    st["code"] = code
    return st


class ApiError(Exception):
    """An error answered as an HTTP status with a Status body."""

    def __init__(self, code, message, reason=None, details=None, meta=None,
                 headers=None):
        super().__init__(message)
        self.code = code
        self.status = status_object(code, message, reason, details, meta)
        self.headers = headers or {}


def not_found(res, name):
    details = {"name": name, "kind": res.plural}
    if group_of(res):
        details["group"] = group_of(res)
    return ApiError(404, '%s "%s" not found' % (res.plural, name),
                    details=details)


def too_large(want, current):
    # Same text and cause as storage.NewTooLargeResourceVersionError.
    return ApiError(
        504, "Timeout: Too large resource version: %d, current: %d"
        % (want, current), details={
            "causes": [{"reason": "ResourceVersionTooLarge",
                        "message": "Too large resource version"}],
            "retryAfterSeconds": 1})


def expired_status(want, compacted):
    return status_object(410, "too old resource version: %d (%d)"
                         % (want, compacted))


def parse_rv(text, what="resourceVersion"):
    try:
        rv = int(text)
    except ValueError:
        raise ApiError(400, "invalid %s: %s" % (what, text)) from None
    if rv < 0:
        raise ApiError(400, "invalid %s: %s" % (what, text))
    return rv


# --------------------------------------------------------------------------
# Selectors

LABEL_TERM = re.compile(
    r"^\s*(?P<key>[A-Za-z0-9][-A-Za-z0-9_./]*)\s*"
    r"(?:(?P<op>==|=|!=)\s*(?P<val>[-A-Za-z0-9_.]*)"
    r"|\s(?P<setop>in|notin)\s*\((?P<set>[^)]*)\))?\s*$")


def split_terms(text):
    """Split a selector on commas that are not inside "in (a,b)" sets."""
    terms, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    terms.append(cur)
    return [t for t in terms if t.strip()]


def parse_label_term(term):
    neg = term.strip().startswith("!")
    m = LABEL_TERM.match(term.strip()[1:] if neg else term)
    if not m or (neg and (m["op"] or m["setop"])):
        raise ApiError(400, "unable to parse requirement: %r" % term)
    if neg:
        return (m["key"], "!", ())
    if m["setop"]:
        vals = tuple(v.strip() for v in m["set"].split(",") if v.strip())
        return (m["key"], m["setop"], vals)
    if m["op"]:
        return (m["key"], "!=" if m["op"] == "!=" else "=", (m["val"],))
    return (m["key"], "exists", ())


def label_matches(req, labels):
    key, op, vals = req
    if op == "=":
        return labels.get(key) == vals[0]
    if op == "!=":
        return labels.get(key) != vals[0]
    if op == "in":
        return labels.get(key) in vals
    if op == "notin":
        return labels.get(key) not in vals
    if op == "exists":
        return key in labels
    return key not in labels


def field_value(obj, path):
    cur = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return "" if cur is None else str(cur)


def parse_field_term(res, term):
    m = re.match(r"^\s*([A-Za-z.]+)\s*(==|=|!=)\s*(.*?)\s*$", term)
    if not m:
        raise ApiError(400, "invalid field selector: %r" % term)
    if m[1] not in res.fields:
        raise ApiError(400, 'field label not supported: %s' % m[1])
    return (m[1], m[2] == "!=", m[3])


class Filter:
    """What one list or watch selects: namespace, name, labels, fields."""

    def __init__(self, res, namespace="", name="", labels="", fields=""):
        self.res = res
        self.namespace = namespace
        self.name = name
        self.labels = [parse_label_term(t) for t in split_terms(labels)]
        self.fields = [parse_field_term(res, t) for t in split_terms(fields)]

    def has_selectors(self):
        return bool(self.labels or self.fields)

    def match(self, obj):
        meta = obj.get("metadata", {})
        if self.namespace and meta.get("namespace") != self.namespace:
            return False
        if self.name and meta.get("name") != self.name:
            return False
        labels = meta.get("labels") or {}
        if not all(label_matches(r, labels) for r in self.labels):
            return False
        return all((field_value(obj, path) == want) != neg
                   for path, neg, want in self.fields)


# --------------------------------------------------------------------------
# Store: objects, history, watches

Change = collections.namedtuple("Change", "rv plural type key obj prev")


def with_rv(obj, rv):
    """A copy of obj whose metadata.resourceVersion is rv (objects are
    shared between threads and never mutated once stored)."""
    out = dict(obj)
    out["metadata"] = dict(obj["metadata"], resourceVersion=str(rv))
    return out


def watch_event(change, filt):
    """The event one watcher sees for a change, or None.  Like the cacher:
    an object moving into the selector is ADDED, one moving out is DELETED
    (its previous state at the change's rv)."""
    cur = change.type != "DELETED" and filt.match(change.obj)
    old = change.prev is not None and filt.match(change.prev)
    if cur:
        return ("MODIFIED" if old else "ADDED", change.obj)
    if old:
        return ("DELETED", with_rv(change.prev, change.rv))
    return None


class Watcher:
    """One open watch stream: a queue of (type, object) filled under the
    store lock and drained by the handler thread that owns the socket."""

    def __init__(self, store, res, filt, bookmarks):
        self.res = res
        self.filt = filt
        self.bookmarks = bookmarks
        self.cond = threading.Condition(store.lock)
        self.queue = collections.deque()
        self.dropped = None     # None, "fin" or "rst"

    def push(self, event):
        self.queue.append(event)
        self.cond.notify()

    def next_batch(self, deadline, peer_open):
        """Block until events are queued, the stream is dropped, the
        deadline (monotonic, 0 = none) passes or the client hangs up.
        Returns (events, end) where end is None, "drop", "timeout", "gone"."""
        with self.cond:
            while True:
                if self.dropped:
                    return [], "drop"
                if self.queue:
                    events = list(self.queue)
                    self.queue.clear()
                    return events, None
                left = deadline - time.monotonic() if deadline else None
                if left is not None and left <= 0:
                    return [], "timeout"
                if not peer_open():
                    return [], "gone"
                self.cond.wait(min(left, HANGUP_CHECK_S) if left
                               else HANGUP_CHECK_S)


class Store:
    """All objects, the history of changes since the last compaction and
    the open watches, under one lock.  Stored objects (without kind and
    apiVersion, as list items are) are replaced, never mutated."""

    def __init__(self):
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.rv = 1
        self.compacted = 1
        self.objects = {p: {} for p in RESOURCES}
        self.history = []
        self.watchers = set()

    # -- writes ------------------------------------------------------------

    def _bump(self):
        self.rv += 1
        self.changed.notify_all()
        return self.rv

    def _record(self, change):
        self.history.append(change)
        for w in self.watchers:
            if w.res.plural == change.plural:
                ev = watch_event(change, w.filt)
                if ev:
                    w.push(ev)

    def apply(self, body):
        """Create or replace one object.  Returns (stored, event type or
        None when the object is unchanged: a no-op update writes nothing)."""
        res, obj = normalize(body)
        meta = obj["metadata"]
        key = object_key(res, meta)
        with self.lock:
            old = self.objects[res.plural].get(key)
            if old is not None:
                for f in ("uid", "creationTimestamp", "resourceVersion"):
                    meta[f] = old["metadata"].get(f)
            else:
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault("creationTimestamp", now_rfc3339())
                meta["resourceVersion"] = ""    # set below, keeps its place
            obj["metadata"] = order_metadata(meta)
            if obj == old:
                return old, None
            obj = with_rv(obj, self._bump())
            self.objects[res.plural][key] = obj
            kind = "ADDED" if old is None else "MODIFIED"
            self._record(Change(self.rv, res.plural, kind, key, obj, old))
            return obj, kind

    def delete(self, kind, namespace, name):
        res = resource_of_kind(kind)
        key = name if not res.namespaced else "%s/%s" % (namespace, name)
        with self.lock:
            old = self.objects[res.plural].pop(key, None)
            if old is None:
                raise not_found(res, name)
            obj = with_rv(old, self._bump())
            self._record(Change(self.rv, res.plural, "DELETED", key, obj, old))
            return res, obj

    def compact(self):
        """Forget all history.  Like kube-apiserver's compactor, which
        writes a key to etcd before compacting, this takes a revision of its
        own, so every rv handed out before is now too old."""
        with self.lock:
            self.compacted = self._bump()
            self.history.clear()
            return self.compacted

    # -- reads -------------------------------------------------------------

    def _wait_for_rv(self, want, wait_s):
        """Wait (lock held) until the store reaches rv want, like the watch
        cache's waitUntilFreshAndBlock; 504 Too large after wait_s."""
        deadline = time.monotonic() + wait_s
        while self.rv < want:
            left = deadline - time.monotonic()
            if left <= 0:
                raise too_large(want, self.rv)
            self.changed.wait(left)

    def _snapshot(self, plural, rv):
        """One resource's objects as they were at rv (not below compacted):
        the current ones with the later history undone."""
        objs = dict(self.objects[plural])
        for ch in reversed(self.history):
            if ch.rv <= rv:
                break
            if ch.plural != plural:
                continue
            if ch.prev is None:
                objs.pop(ch.key, None)
            else:
                objs[ch.key] = ch.prev
        return objs

    def get(self, res, key):
        with self.lock:
            obj = self.objects[res.plural].get(key)
        return obj

    def list(self, filt, limit, cont, rv_text, rv_match, wait_s):
        """One page of a list.  Returns (items, rv, continue, remaining)."""
        with self.lock:
            if cont:
                if rv_text not in ("", "0"):
                    raise ApiError(400, "specifying resource version is not "
                                   "allowed when using continue")
                rv, start = self._continue_point(cont)
            else:
                rv, start = self._list_rv(rv_text, rv_match, wait_s), ""
            snap = (self.objects[filt.res.plural] if rv == self.rv
                    else self._snapshot(filt.res.plural, rv))
            items, last, remaining = page(snap, filt, start, limit)
        token = encode_continue(rv, last) if remaining else ""
        return items, rv, token, remaining

    def _list_rv(self, rv_text, rv_match, wait_s):
        if rv_match == "Exact":
            want = parse_rv(rv_text)
            if want < self.compacted:
                raise ApiError(410, "The resourceVersion for the provided "
                               "list is too old.")
            self._wait_for_rv(want, wait_s)
            return want
        if rv_text not in ("", "0"):
            self._wait_for_rv(parse_rv(rv_text), wait_s)
        return self.rv

    def _continue_point(self, token):
        rv, start = decode_continue(token)
        if rv == -1:        # the "inconsistent" token a 410 hands out
            return self.rv, start
        if rv < self.compacted:
            # As the etcd3 store does: 410, plus a token that continues
            # from the same key at the current rv.
            raise ApiError(410, INCONSISTENT_CONTINUE, meta={
                "continue": encode_continue(-1, start[:-1])})
        return rv, start

    def open_watch(self, res, filt, rv_text, bookmarks, send_initial, wait_s):
        """Register a watcher with its first events queued: synthetic ADDED
        for every object (rv "" or "0", or sendInitialEvents), or the
        history after rv.  Returns the Watcher, or the Status of a 410 that
        the stream must carry as its only event."""
        with self.lock:
            w = Watcher(self, res, filt, bookmarks)
            if rv_text in ("", "0") or send_initial:
                self._queue_current(w, send_initial)
            else:
                want = parse_rv(rv_text)
                if want < self.compacted:
                    return expired_status(want, self.compacted)
                self._wait_for_rv(want, wait_s)
                for ch in self.history:
                    if ch.rv > want and ch.plural == res.plural:
                        ev = watch_event(ch, filt)
                        if ev:
                            w.push(ev)
            self.watchers.add(w)
            return w

    def _queue_current(self, w, send_initial):
        objs = self.objects[w.res.plural]
        for key in sorted(objs):
            if w.filt.match(objs[key]):
                w.push(("ADDED", objs[key]))
        if send_initial and w.bookmarks:
            # The watch-list protocol: a bookmark marks the initial state end.
            w.push(("BOOKMARK", bookmark_object(w.res, self.rv, True)))

    def close_watch(self, w):
        with self.lock:
            self.watchers.discard(w)

    def bookmark_all(self, plural=None):
        with self.lock:
            sent = 0
            for w in self.watchers:
                if w.bookmarks and plural in (None, w.res.plural):
                    w.push(("BOOKMARK", bookmark_object(w.res, self.rv)))
                    sent += 1
            return sent

    def drop_all(self, how, plural=None):
        with self.lock:
            dropped = 0
            for w in self.watchers:
                if plural in (None, w.res.plural):
                    w.dropped = how
                    w.cond.notify()
                    dropped += 1
            return dropped

    def watcher_counts(self):
        with self.lock:
            counts = {p: 0 for p in RESOURCES}
            for w in self.watchers:
                counts[w.res.plural] += 1
            return counts

    def state(self):
        with self.lock:
            return {"resourceVersion": str(self.rv),
                    "compactedResourceVersion": str(self.compacted),
                    "objects": {p: len(o) for p, o in self.objects.items()}}


INCONSISTENT_CONTINUE = (
    "The provided continue parameter is too old to display a consistent "
    "list result. You can start a new list without the continue parameter, "
    "or use the continue token in this response to retrieve the remainder "
    "of the results. Continuing with the provided token results in an "
    "inconsistent list - objects that were created, modified, or deleted "
    "between the time the first chunk was returned and now may show up in "
    "the list.")


def page(snap, filt, start, limit):
    """Objects of snap matching filt with key >= start, in etcd key order,
    at most limit (0 = all).  Returns (items, last key, matches left)."""
    items, last, remaining = [], "", 0
    for key in sorted(k for k in snap if k >= start):
        if not filt.match(snap[key]):
            continue
        if limit and len(items) == limit:
            remaining += 1
        else:
            items.append(snap[key])
            last = key
    return items, last, remaining


def encode_continue(rv, last_key):
    # The etcd3 store's token: base64url (no padding) of this JSON; start
    # is the next key to read, the last one returned plus a NUL.
    raw = json.dumps({"v": CONTINUE_API, "rv": rv, "start": last_key + "\0"},
                     separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def decode_continue(token):
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        tok = json.loads(raw)
        if tok["v"] != CONTINUE_API or not isinstance(tok["rv"], int):
            raise ValueError("unknown version")
        return tok["rv"], str(tok["start"])
    except (ValueError, KeyError, TypeError) as e:
        raise ApiError(400, "continue key is not valid: %s" % e) from None


def bookmark_object(res, rv, initial_end=False):
    meta = {"resourceVersion": str(rv), "creationTimestamp": None}
    if initial_end:
        meta["annotations"] = {INITIAL_EVENTS_END: "true"}
    obj = {"kind": res.kind, "apiVersion": res.group_version, "metadata": meta}
    obj.update(json.loads(json.dumps(res.bookmark_body)))
    return obj


def resource_of_kind(kind):
    res = BY_KIND.get(kind)
    if res is None:
        raise ApiError(400, "unsupported kind %r (want one of %s)"
                       % (kind, ", ".join(sorted(BY_KIND))))
    return res


def order_metadata(meta):
    out = {k: meta[k] for k in META_ORDER if k in meta}
    out.update((k, v) for k, v in meta.items() if k not in out)
    return out


def object_key(res, meta):
    if res.namespaced:
        return "%s/%s" % (meta["namespace"], meta["name"])
    return meta["name"]


def normalize(body):
    """(resource, a private copy of body as stored): no kind/apiVersion,
    namespace defaulted, generateName expanded, a Namespace given what
    kube-apiserver adds to every one."""
    if not isinstance(body, dict):
        raise ApiError(400, "an object must be a JSON object")
    res = resource_of_kind(body.get("kind"))
    obj = json.loads(json.dumps(body))
    obj.pop("kind", None)
    obj.pop("apiVersion", None)
    meta = obj.setdefault("metadata", {})
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
    if not meta.get("name"):
        raise ApiError(422, "%s: metadata.name: Required value" % res.kind)
    if res.namespaced:
        meta.setdefault("namespace", "default")
    else:
        meta.pop("namespace", None)
    if res.kind == "Namespace":
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = \
            meta["name"]
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj.setdefault("status", {"phase": "Active"})
    return res, obj


def objects_in(doc):
    """The objects of a fixture or apply body: one object, a JSON list of
    them, or a *List whose items carry no kind (taken from the list's)."""
    if isinstance(doc, list):
        return [o for d in doc for o in objects_in(d)]
    kind = doc.get("kind", "") if isinstance(doc, dict) else ""
    if kind.endswith("List") and "items" in doc:
        return [dict(item, kind=item.get("kind", kind[:-4]))
                for item in doc["items"] or []]
    return [doc]


# --------------------------------------------------------------------------
# Fault injection and the request log

class Faults:
    """Rules from /_control/fail: the next `count` matching API requests
    (count < 0: all until cleared) get `status` with a Status body."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []

    def add(self, rule):
        if rule.get("clear"):
            with self.lock:
                self.rules.clear()
            return []
        status = int(rule.get("status", 500))
        if status not in REASONS:
            raise ApiError(400, "unsupported status %d" % status)
        r = {"resource": rule.get("resource", "*"), "status": status,
             "count": int(rule.get("count", 1)),
             "watch_only": bool(rule.get("watch_only", False)),
             "list_only": bool(rule.get("list_only", False)),
             "retry_after": int(rule.get("retry_after", 1)),
             "message": rule.get("message", "")}
        with self.lock:
            self.rules.append(r)
            return list(self.rules)

    def take(self, plural, watch):
        """The rule that fails this request, consuming one use, or None."""
        with self.lock:
            for r in self.rules:
                if r["resource"] not in ("*", plural) or r["count"] == 0:
                    continue
                if (r["watch_only"] and not watch) or \
                        (r["list_only"] and watch):
                    continue
                r["count"] -= r["count"] > 0
                if r["count"] == 0:
                    self.rules.remove(r)
                return dict(r)
        return None


def injected_error(rule, res, watch):
    code, verb = rule["status"], "watch" if watch else "list"
    headers = {}
    details = {"kind": res.plural}
    if group_of(res):
        details["group"] = group_of(res)
    if code in (429, 503):
        headers["Retry-After"] = str(rule["retry_after"])
        details = {"retryAfterSeconds": rule["retry_after"]}
    message = rule["message"] or {
        403: '%s is forbidden: User "system:serviceaccount:sluice:sluiced" '
             'cannot %s resource "%s" in API group "%s" at the cluster scope'
             % (res.plural, verb, res.plural, group_of(res)),
        429: "Too many requests, please try again later.",
        500: "Internal error occurred: injected failure",
        503: "the server is currently unable to handle the request",
        504: "Timeout: request did not complete within requested timeout "
             "- context deadline exceeded",
    }.get(code, "injected failure")
    return ApiError(code, message, details=details, headers=headers)


class RequestLog:
    def __init__(self):
        self.lock = threading.Lock()
        self.entries = []

    def add(self, method, path, query, authorized, watch):
        entry = {"method": method, "path": path, "query": query,
                 "authorized": authorized, "watch": watch, "status": None,
                 "t": time.time()}
        with self.lock:
            self.entries.append(entry)
        return entry

    def snapshot(self):
        with self.lock:
            return [dict(e) for e in self.entries]

    def reset(self):
        with self.lock:
            n = len(self.entries)
            self.entries.clear()
            return n


# --------------------------------------------------------------------------
# HTTP

Route = collections.namedtuple("Route", "res namespace name watch")

PARSE_BOOL = {"1": True, "t": True, "true": True,
              "0": False, "f": False, "false": False, "": False}


def parse_bool(text, what):
    val = PARSE_BOOL.get((text or "").lower())
    if val is None:
        raise ApiError(400, "invalid %s: %r" % (what, text))
    return val


def parse_int(text, what):
    if not text:
        return 0
    try:
        return int(text)
    except ValueError:
        raise ApiError(400, "invalid %s: %r" % (what, text)) from None


def route_for(path):
    """Map an API path to a Route; None when no resource lives there.
    Knows /api/v1/[watch/][namespaces/NS/]PLURAL[/NAME] and the same under
    /apis/discovery.k8s.io/v1, and /api/v1/namespaces[/NAME]."""
    for prefix in ("/api/v1/", "/apis/discovery.k8s.io/v1/"):
        if path.startswith(prefix):
            break
    else:
        return None
    gv = prefix.strip("/").partition("/")[2]
    segs = [s for s in path[len(prefix):].split("/") if s]
    watch = bool(segs) and segs[0] == "watch"
    segs = segs[watch:]
    ns = ""
    if len(segs) >= 3 and segs[0] == "namespaces":
        ns, segs = segs[1], segs[2:]
    res = RESOURCES.get(segs[0]) if segs else None
    if res is None or res.group_version != gv or len(segs) > 2:
        return None
    if ns and not res.namespaced:
        return None
    return Route(res, ns, segs[1] if len(segs) == 2 else "", watch)


def chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


def event_bytes(etype, obj):
    return json.dumps({"type": etype, "object": obj},
                      separators=(",", ":")).encode() + b"\n"


class App:
    """What the handlers share: store, faults, request log and options."""

    def __init__(self, token, wait_s, verbose):
        self.store = Store()
        self.faults = Faults()
        self.requests = RequestLog()
        self.token = token
        self.too_large_wait = wait_s
        self.verbose = verbose

    def authorized(self, header):
        if not self.token:
            return True
        want = "Bearer " + self.token
        return hmac.compare_digest((header or "").encode(), want.encode())


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"       # keep-alive for non-watch requests
    disable_nagle_algorithm = True      # an event must not wait for an ACK

    def setup(self):
        # The TLS handshake happens here, in the connection's own thread,
        # so a slow or failing client cannot stall accept().
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(HANDSHAKE_TIMEOUT_S)
            self.request.do_handshake()
            self.request.settimeout(None)
        super().setup()
        self.app = self.server.app
        self.entry = None
        self.poller = None

    def log_message(self, fmt, *args):
        if self.app.verbose:
            sys.stderr.write("apiserver: %s %s\n" % (
                self.address_string(), fmt % args))

    def send_response(self, code, message=None):
        # Like Go's net/http: a Date header and no Server header.
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())
        if self.entry is not None:
            self.entry["status"] = code

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    # -- plumbing ----------------------------------------------------------

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send_json(self, code, body, headers=None):
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_error_status(self, err):
        self.send_json(err.code, err.status, err.headers)

    def dispatch(self, method):
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in
                 parse_qs(url.query, keep_blank_values=True).items()}
        body = self.read_body()
        self.entry = None
        try:
            if url.path.startswith("/_control/"):
                self.serve_control(method, url.path, body)
            else:
                self.serve_api(method, url.path, query)
        except ApiError as e:
            self.send_error_status(e)

    # -- the API -----------------------------------------------------------

    def serve_api(self, method, path, query):
        authorized = self.app.authorized(self.headers.get("Authorization"))
        route = route_for(path)
        watch = bool(route and route.watch) or \
            PARSE_BOOL.get(query.get("watch", "").lower(), False)
        self.entry = self.app.requests.add(method, path, query, authorized,
                                           watch)
        if not authorized:
            raise ApiError(401, "Unauthorized")
        if path in ("/healthz", "/livez", "/readyz", "/version"):
            return self.serve_health(path)
        if route is None:
            raise ApiError(404, "the server could not find the requested "
                           "resource", details={})
        if method != "GET":
            raise ApiError(405, "the server does not allow this method on "
                           "the requested resource", details={})
        rule = self.app.faults.take(route.res.plural, watch)
        if rule:
            raise injected_error(rule, route.res, watch)
        if watch:
            return self.serve_watch(route, query)
        if route.name:
            return self.serve_get(route)
        return self.serve_list(route, query)

    def serve_health(self, path):
        if path == "/version":
            return self.send_json(200, {
                "major": "1", "minor": "29", "gitVersion": "v1.29.4",
                "gitCommit": "0" * 40, "gitTreeState": "clean",
                "buildDate": "2024-04-16T00:00:00Z", "goVersion": "go1.21.9",
                "compiler": "gc", "platform": "linux/amd64"})
        data = b"ok"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def filter_for(self, route, query):
        return Filter(route.res, route.namespace, route.name,
                      query.get("labelSelector", ""),
                      query.get("fieldSelector", ""))

    def serve_get(self, route):
        res = route.res
        key = route.name if not res.namespaced else \
            "%s/%s" % (route.namespace, route.name)
        obj = self.app.store.get(res, key) if \
            (route.namespace or not res.namespaced) else None
        if obj is None:
            raise not_found(res, route.name)
        self.send_json(200, typed(res, obj))

    def serve_list(self, route, query):
        filt = self.filter_for(route, query)
        limit = parse_int(query.get("limit"), "limit")
        items, rv, token, remaining = self.app.store.list(
            filt, max(limit, 0), query.get("continue", ""),
            query.get("resourceVersion", ""),
            query.get("resourceVersionMatch", ""), self.app.too_large_wait)
        meta = {"resourceVersion": str(rv)}
        if token:
            meta["continue"] = token
            if not filt.has_selectors():
                meta["remainingItemCount"] = remaining
        self.send_json(200, {"kind": route.res.kind + "List",
                             "apiVersion": route.res.group_version,
                             "metadata": meta, "items": items})

    # -- watch streams -----------------------------------------------------

    def serve_watch(self, route, query):
        filt = self.filter_for(route, query)
        timeout = parse_int(query.get("timeoutSeconds"), "timeoutSeconds")
        opened = self.app.store.open_watch(
            route.res, filt, query.get("resourceVersion", ""),
            parse_bool(query.get("allowWatchBookmarks"), "allowWatchBookmarks"),
            parse_bool(query.get("sendInitialEvents"), "sendInitialEvents"),
            self.app.too_large_wait)
        self.start_stream()
        if not isinstance(opened, Watcher):
            # 410: the real server answers 200 and says so in the stream.
            self.write_chunk(event_bytes("ERROR", opened))
            return self.end_stream()
        try:
            deadline = time.monotonic() + timeout if timeout > 0 else 0
            self.pump(opened, deadline)
        finally:
            self.app.store.close_watch(opened)

    def start_stream(self):
        self.send_response(200)
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def write_chunk(self, data):
        self.wfile.write(chunk(data))

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")

    def pump(self, w, deadline):
        """Copy w's events to the client, one chunk each, until the
        deadline (clean end), a drop (broken end) or the client leaves."""
        while True:
            events, end = w.next_batch(deadline, self.peer_open)
            try:
                for etype, obj in events:
                    if etype != "BOOKMARK":
                        obj = typed(w.res, obj)
                    self.write_chunk(event_bytes(etype, obj))
                if end == "timeout":
                    return self.end_stream()
            except OSError:
                end = "gone"
            if end == "drop":
                return self.abort(w.dropped)
            if end == "gone":
                self.close_connection = True
                return None

    def peer_open(self):
        """False once the client has closed its side (FIN, RST)."""
        if self.poller is None:
            self.poller = select.poll()
            self.poller.register(self.connection.fileno(), select.POLLRDHUP)
        return not self.poller.poll(0)

    def abort(self, how):
        """Break the stream: no terminating chunk, and for TLS no
        close_notify.  "rst" resets the connection instead of a FIN."""
        self.close_connection = True
        try:
            if how == "rst":
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                self.connection.close()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- control -----------------------------------------------------------

    def serve_control(self, method, path, body):
        handler = CONTROL.get((method, path))
        if handler is None:
            raise ApiError(404, "no control endpoint %s %s" % (method, path))
        try:
            doc = json.loads(body) if body.strip() else None
        except ValueError as e:
            raise ApiError(400, "body is not JSON: %s" % e) from None
        self.send_json(200, handler(self.app, doc))


def ctl_apply(app, doc):
    objs = objects_in(doc)
    out = []
    for body in objs:
        obj, _ = app.store.apply(body)
        out.append(typed(BY_KIND[body["kind"]], obj))
    single = isinstance(doc, dict) and "items" not in doc
    return out[0] if single else out


def ctl_delete(app, doc):
    doc = doc or {}
    res, obj = app.store.delete(doc.get("kind"),
                                doc.get("namespace") or "default",
                                doc.get("name", ""))
    return typed(res, obj)


def ctl_fail(app, doc):
    return {"rules": app.faults.add(doc or {})}


CONTROL = {
    ("POST", "/_control/apply"): ctl_apply,
    ("POST", "/_control/delete"): ctl_delete,
    ("POST", "/_control/compact"): lambda app, doc: {
        "resourceVersion": str(app.store.compact())},
    ("POST", "/_control/drop"): lambda app, doc: {
        "dropped": app.store.drop_all(
            "rst" if (doc or {}).get("rst") else "fin",
            (doc or {}).get("resource"))},
    ("POST", "/_control/bookmark"): lambda app, doc: {
        "bookmarks": app.store.bookmark_all((doc or {}).get("resource"))},
    ("POST", "/_control/fail"): ctl_fail,
    ("GET", "/_control/requests"): lambda app, doc: app.requests.snapshot(),
    ("POST", "/_control/reset-requests"): lambda app, doc: {
        "cleared": app.requests.reset()},
    ("GET", "/_control/watchers"): lambda app, doc: app.store.watcher_counts(),
    ("GET", "/_control/state"): lambda app, doc: app.store.state(),
}


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, app, ssl_ctx):
        self.address_family = socket.AF_INET6 if ":" in addr[0] \
            else socket.AF_INET
        self.app = app
        self.ssl_ctx = ssl_ctx
        super().__init__(addr, Handler)

    def server_bind(self):
        # HTTPServer.server_bind would resolve our name (getfqdn): skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def get_request(self):
        sock, addr = super().get_request()
        if self.ssl_ctx:
            sock = self.ssl_ctx.wrap_socket(sock, server_side=True,
                                            do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        # Clients that vanish or fail the handshake are part of the tests.
        if not isinstance(sys.exc_info()[1], (OSError, ssl.SSLError)):
            super().handle_error(request, client_address)


# --------------------------------------------------------------------------
# make-cert

CERT_EXT = """basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc
"""


def openssl(*args):
    subprocess.run(("openssl",) + args, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def make_cert(out_dir):
    """Write ca.crt (and ca.key) and server.crt/server.key signed by it,
    valid for 127.0.0.1, ::1 and localhost: P-256 keys, ten years."""
    os.makedirs(out_dir, exist_ok=True)
    p = lambda name: os.path.join(out_dir, name)  # noqa: E731
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes")
    openssl("req", "-x509", "-new", *ec, "-keyout", p("ca.key"),
            "-out", p("ca.crt"), "-days", "3650", "-subj", "/CN=sluice-test-ca",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    with tempfile.TemporaryDirectory() as tmp:
        csr, ext = os.path.join(tmp, "server.csr"), os.path.join(tmp, "ext")
        with open(ext, "w") as f:
            f.write(CERT_EXT)
        openssl("req", "-new", *ec, "-keyout", p("server.key"), "-out", csr,
                "-subj", "/CN=kube-apiserver")
        openssl("x509", "-req", "-in", csr, "-CA", p("ca.crt"),
                "-CAkey", p("ca.key"), "-set_serial",
                "0x" + uuid.uuid4().hex[:16], "-days", "3650",
                "-extfile", ext, "-out", p("server.crt"))
    print("wrote %s %s %s" % (p("ca.crt"), p("server.crt"), p("server.key")))


# --------------------------------------------------------------------------
# main

def is_watch_event(doc):
    return isinstance(doc, dict) and "type" in doc and "object" in doc


def load_fixtures(store, paths):
    """Apply every object in paths, in order.  Watch-event files (such as
    fixtures/watch-410.json) are skipped, so a glob of fixtures/ works."""
    for path in paths:
        try:
            with open(path) as f:
                doc = json.load(f)
            for obj in [] if is_watch_event(doc) else objects_in(doc):
                store.apply(obj)
        except (OSError, ValueError, ApiError) as e:
            sys.exit("apiserver: %s: %s" % (path, e))


def parse_listen(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def bookmark_loop(store, interval):
    while True:
        time.sleep(interval)
        store.bookmark_all()


def write_port_file(path, port):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)   # a reader never sees a half-written file


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT")
    ap.add_argument("--token", help="require Authorization: Bearer TOKEN")
    ap.add_argument("--tls-cert", help="serve HTTPS with this certificate")
    ap.add_argument("--tls-key", help="... and this key")
    ap.add_argument("--fixtures", nargs="+", default=[], metavar="FILE",
                    help="objects to start with (object, list or *List)")
    ap.add_argument("--bookmark-interval", type=float, default=0,
                    help="send BOOKMARKs every S seconds (0: only on "
                         "/_control/bookmark)")
    ap.add_argument("--too-large-wait", type=float, default=3.0,
                    help="seconds a too-new resourceVersion waits before "
                         "504 (the watch cache's 3)")
    ap.add_argument("--port-file", help="also write the port here")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="log requests on stderr")
    args = ap.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    return args


def main(argv):
    if argv[:1] == ["make-cert"]:
        if len(argv) != 2:
            sys.exit("usage: apiserver.py make-cert DIR")
        make_cert(argv[1])
        return 0
    args = parse_args(argv)
    app = App(args.token, args.too_large_wait, args.verbose)
    load_fixtures(app.store, args.fixtures)
    ctx = None
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
    server = Server(parse_listen(args.listen), app, ctx)
    host, port = server.server_address[:2]
    if ":" in host:
        host = "[%s]" % host
    print("listening on %s://%s:%d" % ("https" if ctx else "http", host, port),
          flush=True)
    if args.port_file:
        write_port_file(args.port_file, port)
    if args.bookmark_interval > 0:
        threading.Thread(target=bookmark_loop, daemon=True,
                         args=(app.store, args.bookmark_interval)).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def on_sigterm(signum, frame):
    raise KeyboardInterrupt     # ends serve_forever the way Ctrl-C does


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_sigterm)
    sys.exit(main(sys.argv[1:]))
