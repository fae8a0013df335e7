"""Sites and authenticated updates: HMAC-SHA256 over a canonical request, with replay protection.

A signed request carries four headers::

    X-Locator-Key-Id     the site's key id
    X-Locator-Timestamp  seconds since the epoch (integer or decimal), when the request was signed
    X-Locator-Nonce      16..128 characters [A-Za-z0-9_-], never reused
    X-Locator-Signature  hex HMAC-SHA256, keyed with the site's secret, over the canonical form

The canonical form is these lines joined with ``\\n`` (no trailing newline)::

    VMFERRY-LOCATOR-HMAC-SHA256
    <METHOD upper-case>
    <path, e.g. /v1/register>
    <key id>
    <timestamp exactly as sent>
    <nonce>
    <lower-case hex SHA-256 of the exact body bytes>

The verifier refuses an unknown key id, a timestamp outside ``window`` seconds of its clock or older
than its own start (so nothing signed before a restart can be replayed after it), a signature that
does not match (compared in constant time), and a nonce it has seen within the window. The HTTP
layer also hands the nonce to the store's write: the etcd store records it in the same transaction,
so services sharing a cluster refuse each other's replays.

The sites file (TOML) lists who may register what::

    [[site]]
    name = "dc-east"                 # shown in mappings and logs
    key_id = "east-1"
    secret = "a long random string"  # or: secret_file = "east.key" (relative to the sites file)
    prefixes = ["10.1.0.0/16", "2001:db8:1::/48", "app.example.com"]
    instance_ids = [0]               # optional, default [0]
    more_specifics = true            # optional: may register inside the prefixes/names, default true
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import threading
import time
import tomllib
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path

from vmferry.errors import AuthError, LocatorError
from vmferry.locator.model import Eid, Site

SCHEME = "VMFERRY-LOCATOR-HMAC-SHA256"
H_KEY, H_TS, H_NONCE, H_SIG = ("X-Locator-Key-Id", "X-Locator-Timestamp", "X-Locator-Nonce",
                               "X-Locator-Signature")
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
audit = logging.getLogger("vmferry.locator.audit")


class RequestRefused(AuthError):
    """An authentication failure with a machine-readable ``reason``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def canonical(method: str, path: str, key_id: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return "\n".join([SCHEME, method.upper(), path, key_id, timestamp, nonce,
                      hashlib.sha256(body).hexdigest()]).encode()


def sign(secret: bytes, method: str, path: str, key_id: str, body: bytes, *,
         timestamp: float | None = None, nonce: str | None = None) -> dict[str, str]:
    """Return the four headers that authenticate ``body`` sent as ``METHOD path``."""
    ts = f"{time.time() if timestamp is None else timestamp:.3f}"
    nonce = nonce or secrets.token_urlsafe(18)
    mac = hmac.new(secret, canonical(method, path, key_id, ts, nonce, body), hashlib.sha256).hexdigest()
    return {H_KEY: key_id, H_TS: ts, H_NONCE: nonce, H_SIG: mac}


class Verifier:
    """Checks signed requests against the known sites. Thread-safe."""

    def __init__(self, sites: Iterable[Site], *, window: float = 300.0, not_before: float | None = None,
                 clock=time.time) -> None:
        self.sites = {s.key_id: s for s in sites}
        self.window = window
        self.clock = clock
        self.not_before = clock() if not_before is None else not_before
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Site:
        def header(name: str) -> str:
            value = headers.get(name) or headers.get(name.lower())
            if not value:
                raise RequestRefused("missing", f"missing header {name}")
            return value

        key_id, ts_text, nonce, sig = header(H_KEY), header(H_TS), header(H_NONCE), header(H_SIG)
        site = self.sites.get(key_id)
        if site is None:
            raise RequestRefused("unknown_key", f"unknown key id {key_id[:64]!r}")
        try:
            ts = float(ts_text)
        except ValueError:
            raise RequestRefused("stale", "timestamp is not a number") from None
        now = self.clock()
        if not (abs(now - ts) <= self.window) or ts < self.not_before:
            raise RequestRefused("stale", f"timestamp {ts_text[:32]} is outside the accepted window")
        if not _NONCE.match(nonce):
            raise RequestRefused("forged", "nonce must be 16..128 characters [A-Za-z0-9_-]")
        expected = hmac.new(site.secret, canonical(method, path, key_id, ts_text, nonce, body),
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, sig.strip().lower()):
            raise RequestRefused("forged", f"signature does not match for key id {key_id!r}")
        with self._lock:
            while self._seen:
                oldest_key, expiry = next(iter(self._seen.items()))
                if expiry > now:
                    break
                del self._seen[oldest_key]
            if (key_id, nonce) in self._seen:
                raise RequestRefused("replayed", f"nonce already used for key id {key_id!r}")
            self._seen[(key_id, nonce)] = now + 2 * self.window
        return site


def load_sites(path: str | os.PathLike) -> list[Site]:
    """Read a sites file (format in the module docstring); errors name the file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise LocatorError(f"cannot read sites file: {exc.strerror}", path=path) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LocatorError(f"sites file is not valid TOML: {exc}", path=path) from exc
    entries = data.get("site")
    if not isinstance(entries, list) or not entries:
        raise LocatorError("sites file has no [[site]] entries", path=path)
    sites: list[Site] = []
    for i, entry in enumerate(entries, 1):
        where = f"site #{i}"
        try:
            name, key_id = str(entry["name"]), str(entry["key_id"])
            if "secret_file" in entry:
                secret = (path.parent / entry["secret_file"]).read_bytes().strip()
            else:
                secret = str(entry["secret"]).encode()
            if len(secret) < 16:
                raise LocatorError(f"{where}: secret must be at least 16 bytes", path=path)
            iids = entry.get("instance_ids", [0])
            prefixes = entry.get("prefixes", [])
            if not isinstance(prefixes, list) or not isinstance(iids, list):
                raise LocatorError(f"{where}: prefixes and instance_ids must be lists", path=path)
            allowed = tuple(Eid.parse(p, int(iid)) for iid in iids for p in prefixes)
            more = entry.get("more_specifics", True)
            if not isinstance(more, bool):
                raise LocatorError(f"{where}: more_specifics must be true or false", path=path)
        except KeyError as exc:
            raise LocatorError(f"{where}: missing {exc.args[0]!r}", path=path) from exc
        except OSError as exc:
            raise LocatorError(f"{where}: cannot read secret_file: {exc.strerror}", path=path) from exc
        except LocatorError as exc:
            if exc.path:
                raise
            raise LocatorError(f"{where}: {exc.message}", path=path) from exc
        sites.append(Site(name=name, key_id=key_id, secret=secret, allowed=allowed, more_specifics=more))
    if len({s.key_id for s in sites}) != len(sites):
        raise LocatorError("two sites share a key_id", path=path)
    return sites


def audit_refusal(reason: str, detail: str, *, key_id: str | None = None, peer: str | None = None) -> None:
    audit.warning("refused update: reason=%s key_id=%s peer=%s: %s", reason, key_id or "-", peer or "-", detail)
