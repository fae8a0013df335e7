"""The etcd store: mappings in an etcd v3 cluster, through etcd's gRPC-gateway JSON API.

Keys live under a prefix (default ``/vmferry/locator/``)::

    <prefix>m/<instance id>/<eid>   one mapping (JSON, with the kind of its last write)
    <prefix>boot                    written by each service start, marks the revision it loaded at
    <prefix>nonce/<key id>/<nonce>  request nonces, written in the same transaction as the change
                                    they authorised (so a replay to another service fails), leased

Versions are etcd revisions: a mapping's version is its ``mod_revision``. The service loads the
table at the revision of its boot mark and follows ``<prefix>m/`` with one etcd watch from the
next revision, so it never polls, and after a connection loss it re-watches from the last revision
it saw on another member. History for resuming watchers comes from an etcd watch that starts at
the requested revision (until etcd compacts it).

:class:`EtcdClient` is a small synchronous client with endpoint failover (keys and values are
base64 in the JSON API, 64-bit integers are strings).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from vmferry.errors import LocatorError
from vmferry.locator.auth import RequestRefused
from vmferry.locator.model import Change, Eid, Mapping
from vmferry.locator.store import HistoryCompacted, OnChange

log = logging.getLogger("vmferry.locator.etcd")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str | None) -> bytes:
    return base64.b64decode(text or "")


def prefix_end(prefix: bytes) -> bytes:
    """The range end covering every key that starts with ``prefix``."""
    raw = bytearray(prefix)
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return bytes(raw)
        raw.pop()
    return b"\0"


class EtcdClient:
    """Talks to an etcd v3 cluster over HTTP/JSON, failing over between the given endpoints."""

    def __init__(self, endpoints: Sequence[str], *, timeout: float = 5.0) -> None:
        if not endpoints:
            raise LocatorError("no etcd endpoint given")
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self._current = 0
        self._http = httpx.Client(timeout=timeout)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        last: Exception | None = None
        for _ in range(2 * len(self.endpoints)):
            with self._lock:
                endpoint = self.endpoints[self._current]
            try:
                resp = self._http.post(endpoint + path, json=body)
            except httpx.TransportError as exc:
                last = exc
                self._rotate(endpoint)
                continue
            if resp.status_code >= 500 or resp.status_code == 429:
                last = LocatorError(f"etcd {endpoint} answered {resp.status_code}: {resp.text[:200]}")
                self._rotate(endpoint)
                time.sleep(0.05)
                continue
            if resp.status_code != 200:
                raise LocatorError(f"etcd {endpoint}{path} answered {resp.status_code}: {resp.text[:200]}")
            return resp.json()
        raise LocatorError(f"no etcd endpoint answered ({', '.join(self.endpoints)}): {last}")

    def _rotate(self, failed: str) -> None:
        with self._lock:
            if self.endpoints[self._current] == failed:
                self._current = (self._current + 1) % len(self.endpoints)

    def put(self, key: bytes, value: bytes) -> int:
        out = self._post("/v3/kv/put", {"key": _b64(key), "value": _b64(value)})
        return int(out["header"]["revision"])

    def range(self, key: bytes, end: bytes | None = None, *, revision: int | None = None,
              serializable: bool = False) -> tuple[list[dict[str, Any]], int]:
        """All key-values in [key, end) (paged), and the revision they were read at."""
        kvs: list[dict[str, Any]] = []
        start, header_rev = key, revision
        while True:
            body: dict[str, Any] = {"key": _b64(start), "limit": "5000"}
            if end is not None:
                body["range_end"] = _b64(end)
            if header_rev:
                body["revision"] = str(header_rev)
            if serializable:
                body["serializable"] = True
            out = self._post("/v3/kv/range", body)
            header_rev = header_rev or int(out["header"]["revision"])
            page = out.get("kvs", [])
            kvs.extend(page)
            if not out.get("more") or not page or end is None:
                return kvs, header_rev
            start = _unb64(page[-1]["key"]) + b"\0"

    def grant_lease(self, ttl: int) -> int:
        return int(self._post("/v3/lease/grant", {"TTL": str(ttl)})["ID"])

    def txn(self, compare: list[dict[str, Any]], success: list[dict[str, Any]]) -> dict[str, Any]:
        return self._post("/v3/kv/txn", {"compare": compare, "success": success})

    def delete(self, key: bytes, *, if_mod_revision: int | None = None) -> int | None:
        """Delete ``key``; return the revision of the deletion, or None if nothing was deleted."""
        request = {"request_delete_range": {"key": _b64(key)}}
        compare = []
        if if_mod_revision is not None:
            compare = [{"key": _b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": str(if_mod_revision)}]
        out = self._post("/v3/kv/txn", {"compare": compare, "success": [request]})
        if not out.get("succeeded"):
            return None
        deleted = out.get("responses", [{}])[0].get("response_delete_range", {}).get("deleted", "0")
        return int(out["header"]["revision"]) if int(deleted) else None

    def watch(self, key: bytes, end: bytes, start_revision: int,
              stop: threading.Event) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """Stream (revision, events) from ``start_revision`` on; one connection, ends on its loss."""
        with self._lock:
            endpoint = self.endpoints[self._current]
        body = {"create_request": {"key": _b64(key), "range_end": _b64(end),
                                   "start_revision": str(start_revision), "prev_kv": True}}
        timeout = httpx.Timeout(5.0, read=None)
        try:
            with httpx.Client(timeout=timeout) as client, \
                    client.stream("POST", endpoint + "/v3/watch", json=body) as resp:
                if resp.status_code != 200:
                    raise httpx.TransportError(f"watch answered {resp.status_code}")
                for line in resp.iter_lines():
                    if stop.is_set():
                        return
                    if not line.strip():
                        continue
                    result = json.loads(line).get("result", {})
                    if int(result.get("compact_revision", "0") or 0):
                        raise HistoryCompacted(f"etcd compacted history up to revision "
                                               f"{result['compact_revision']}")
                    events = result.get("events")
                    if events:
                        yield int(events[-1]["kv"]["mod_revision"]), events
        except (httpx.TransportError, httpx.StreamError) as exc:
            self._rotate(endpoint)
            raise ConnectionError(f"etcd watch on {endpoint} lost: {exc}") from exc


class EtcdStore:
    """Mappings in etcd; see the module docstring for the key layout."""

    name = "etcd"

    def __init__(self, endpoints: Sequence[str], *, prefix: str = "/vmferry/locator/",
                 nonce_ttl: int = 600) -> None:
        self.client = EtcdClient(endpoints)
        self.nonce_ttl = nonce_ttl
        self.prefix = prefix.encode()
        self._mkey = self.prefix + b"m/"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lease: tuple[int, float] | None = None  # (lease id, monotonic time to renew it)
        self._lease_lock = threading.Lock()

    def _nonce_ops(self, nonce: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The compare (nonce unused) and the put (record it, leased) for a write carrying ``nonce``."""
        now = time.monotonic()
        with self._lease_lock:
            if self._lease is None or now >= self._lease[1]:
                # one lease per minute: every nonce under it lives at least ``nonce_ttl`` seconds
                self._lease = (self.client.grant_lease(self.nonce_ttl + 60), now + 60)
            lease = self._lease[0]
        key = _b64(self.prefix + b"nonce/" + nonce.encode())
        return ({"key": key, "target": "CREATE", "result": "EQUAL", "create_revision": "0"},
                {"request_put": {"key": key, "value": _b64(b"1"), "lease": str(lease)}})

    def _replayed(self, nonce: str) -> RequestRefused:
        return RequestRefused("replayed", f"nonce {nonce!r} already used (recorded in etcd)")

    def _key(self, eid: Eid) -> bytes:
        return self._mkey + f"{eid.instance_id}/{eid.text}".encode()

    def _eid_of(self, key: bytes) -> Eid:
        iid, _, text = key[len(self._mkey):].decode().partition("/")
        return Eid(int(iid), text)

    def _change(self, event: dict[str, Any]) -> Change | None:
        kv = event["kv"]
        key = _unb64(kv["key"])
        if not key.startswith(self._mkey):
            return None
        version = int(kv["mod_revision"])
        eid = self._eid_of(key)
        if event.get("type") == "DELETE":
            prev = event.get("prev_kv")
            site = json.loads(_unb64(prev["value"])).get("site", "") if prev else ""
            return Change(version, "deregister", eid, None, site)
        data = json.loads(_unb64(kv["value"]))
        mapping = Mapping.from_dict(data).with_version(version)
        return Change(version, data.get("kind", "register"), eid, mapping, mapping.site)

    def open(self, on_change: OnChange) -> tuple[list[Mapping], int]:
        boot = self.client.put(self.prefix + b"boot", uuid.uuid4().hex.encode())
        kvs, _ = self.client.range(self._mkey, prefix_end(self._mkey), revision=boot)
        mappings = [Mapping.from_dict(json.loads(_unb64(kv["value"]))).with_version(int(kv["mod_revision"]))
                    for kv in kvs]
        self._thread = threading.Thread(target=self._follow, args=(boot + 1, on_change),
                                        name="locator-etcd-watch", daemon=True)
        self._thread.start()
        return mappings, boot

    def _follow(self, start: int, on_change: OnChange) -> None:
        next_rev = start
        while not self._stop.is_set():
            try:
                for revision, events in self.client.watch(self._mkey, prefix_end(self._mkey), next_rev, self._stop):
                    for event in events:
                        change = self._change(event)
                        if change is not None:
                            on_change(change)
                    next_rev = revision + 1
            except (ConnectionError, LocatorError, ValueError, KeyError) as exc:
                if self._stop.is_set():
                    return
                log.warning("etcd watch interrupted, resuming at revision %d: %s", next_rev, exc)
                self._stop.wait(0.2)

    def put(self, kind: str, mapping: Mapping, *, nonce: str | None = None) -> int:
        data = mapping.with_version(0).to_dict()
        data["kind"] = kind
        key, value = self._key(mapping.eid), json.dumps(data, separators=(",", ":")).encode()
        if nonce is None:
            return self.client.put(key, value)
        compare, record = self._nonce_ops(nonce)
        out = self.client.txn([compare], [record, {"request_put": {"key": _b64(key), "value": _b64(value)}}])
        if not out.get("succeeded"):
            raise self._replayed(nonce)
        return int(out["header"]["revision"])

    def delete(self, eid: Eid, site: str, *, if_version: int | None = None,
               nonce: str | None = None) -> int | None:
        if nonce is None:
            return self.client.delete(self._key(eid), if_mod_revision=if_version)
        compare, record = self._nonce_ops(nonce)
        out = self.client.txn([compare], [record, {"request_delete_range": {"key": _b64(self._key(eid))}}])
        if not out.get("succeeded"):
            raise self._replayed(nonce)
        deleted = out.get("responses", [{}, {}])[1].get("response_delete_range", {}).get("deleted", "0")
        return int(out["header"]["revision"]) if int(deleted) else None

    def history(self, after: int, until: int) -> Iterator[Change]:
        if after >= until:
            return
        stop = threading.Event()
        try:
            for _revision, events in self.client.watch(self.prefix, prefix_end(self.prefix), after + 1, stop):
                for event in events:
                    rev = int(event["kv"]["mod_revision"])
                    if rev > until:
                        return
                    change = self._change(event)
                    if change is not None:
                        yield change
                    if rev == until:
                        return
        except ConnectionError as exc:
            raise LocatorError(f"cannot read etcd history: {exc}") from exc
        finally:
            stop.set()

    def close(self) -> None:
        self._stop.set()
        self.client.close()
