"""The locator service: stable endpoint identities (EIDs) mapped to their current locators.

Public API (see docs/locator.md)::

    Eid, Locator, Mapping, Site, Change, Resolution      the model (vmferry.locator.model)
    LocatorService                                        register / refresh / deregister / resolve / watch
    SqliteStore, EtcdStore                                where mappings live
    LocatorClient                                         the HTTP client (signed updates)
    load_sites, sign, Verifier                            sites file and request signing
    create_app, DnsFront, DnsPusher, PushConfig           the HTTP API, the DNS front, RFC 2136 push

Heavy optional dependencies (FastAPI, dnspython, httpx) are imported only when their names are used.
"""

from __future__ import annotations

import importlib

from vmferry.locator.auth import Verifier, load_sites, sign
from vmferry.locator.feed import Heartbeat
from vmferry.locator.model import Change, Eid, InvalidRequest, Locator, Mapping, Resolution, Site
from vmferry.locator.service import LocatorService, NotFound
from vmferry.locator.store import HistoryCompacted, SqliteStore, Store

_LAZY = {
    "EtcdStore": "vmferry.locator.etcd",
    "EtcdClient": "vmferry.locator.etcd",
    "LocatorClient": "vmferry.locator.client",
    "create_app": "vmferry.locator.http_api",
    "DnsFront": "vmferry.locator.dns_front",
    "DnsPusher": "vmferry.locator.dns_push",
    "PushConfig": "vmferry.locator.dns_push",
}

__all__ = ["Change", "Eid", "HistoryCompacted", "Heartbeat", "InvalidRequest", "Locator", "LocatorService",
           "Mapping", "NotFound", "Resolution", "Site", "SqliteStore", "Store", "Verifier", "load_sites",
           "sign", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vmferry.locator' has no attribute {name!r}")
