"""The locator service (``serve``) and its clients (register, refresh, deregister, resolve, list, watch).

Clients talk to the HTTP API at --url (or $VMFERRY_LOCATOR_URL, default http://127.0.0.1:8053);
updates are signed with --key-id and the secret from --secret-file (or $VMFERRY_LOCATOR_SECRET).
A locator is ADDRESS[,priority=N][,weight=N][,port=N][,unreachable], e.g. 192.0.2.7,priority=1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from vmferry.errors import UsageError

DEFAULT_URL = "http://127.0.0.1:8053"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    serve = sub.add_parser("serve", help="run the HTTP API (and DNS front, DNS push) on a store")
    store = serve.add_mutually_exclusive_group()
    store.add_argument("--db", metavar="PATH", help="SQLite database (default: ./locator.db)")
    store.add_argument("--etcd", metavar="URL[,URL...]", help="etcd v3 client URLs")
    serve.add_argument("--etcd-prefix", default="/vmferry/locator/", help="key prefix in etcd")
    serve.add_argument("--http", default="127.0.0.1:8053", metavar="HOST:PORT", help="HTTP API address")
    serve.add_argument("--dns", metavar="HOST:PORT", help="also answer DNS (UDP) on this address")
    serve.add_argument("--dns-instance-id", type=int, default=0, help="instance id the DNS front serves")
    serve.add_argument("--sites", required=True, metavar="FILE", help="sites file (TOML, see docs/locator.md)")
    serve.add_argument("--dns-push", metavar="FILE", help="push names to a DNS server (TOML, RFC 2136 + TSIG)")
    serve.add_argument("--max-body", type=int, default=64 * 1024, help="largest request body in bytes")
    serve.add_argument("--window", type=float, default=300.0, help="accepted clock skew of signed requests (s)")
    serve.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])

    def client(name: str, help_text: str, signed: bool) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--url", default=os.environ.get("VMFERRY_LOCATOR_URL", DEFAULT_URL))
        p.add_argument("--instance-id", type=int, default=0)
        p.add_argument("--json", action="store_true", help="print JSON")
        if signed:
            p.add_argument("--key-id", required=True)
            p.add_argument("--secret-file", metavar="FILE", help="file holding the site secret")
        return p

    reg = client("register", "register or move an EID to new locators", True)
    reg.add_argument("eid")
    reg.add_argument("--locator", "-l", action="append", required=True, metavar="SPEC")
    reg.add_argument("--ttl", type=int, default=60, help="record TTL (s)")
    reg.add_argument("--expires-in", type=int, default=300, help="seconds until it must be refreshed")

    ref = client("refresh", "extend a registration", True)
    ref.add_argument("eid")
    ref.add_argument("--expires-in", type=int, default=300)

    dereg = client("deregister", "remove a registration", True)
    dereg.add_argument("eid")

    res = client("resolve", "resolve an address, prefix or name", False)
    res.add_argument("query")
    res.add_argument("--pick", action="store_true", help="also choose one locator by weight")

    client("list", "list every registration", False)

    watch = client("watch", "print changes as they happen", False)
    watch.add_argument("--eid", action="append", default=[], help="follow this EID (repeatable; all if none)")
    watch.add_argument("--from-version", type=int, default=0)
    watch.add_argument("--count", type=int, default=0, help="stop after this many changes")


def parse_locator(spec: str):
    from vmferry.locator.model import Locator

    address, *options = [part.strip() for part in spec.split(",")]
    values: dict = {"address": address}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep and key == "unreachable":
            values["reachable"] = False
        elif sep and key in ("priority", "weight", "port") and value.isdigit():
            values[key] = int(value)
        else:
            raise UsageError(f"bad locator option {option!r} in {spec!r} (priority=N, weight=N, port=N, unreachable)")
    return Locator(**values)


def _host_port(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise UsageError(f"{what} must be HOST:PORT, not {text!r}")
    return host.strip("[]"), int(port)


def _listen(host: str, port: int):
    import socket

    from vmferry.errors import LocatorError

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise LocatorError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return sock


def _secret(args) -> bytes:
    if args.secret_file:
        try:
            return Path(args.secret_file).read_bytes().strip()
        except OSError as exc:
            raise UsageError(f"{args.secret_file}: cannot read secret file: {exc.strerror}") from exc
    env = os.environ.get("VMFERRY_LOCATOR_SECRET")
    if not env:
        raise UsageError("give --secret-file or set VMFERRY_LOCATOR_SECRET")
    return env.encode()


def run(args) -> int:
    if args.action == "serve":
        return _serve(args)
    from vmferry.locator.client import LocatorClient

    signed = args.action in ("register", "refresh", "deregister")
    with LocatorClient(args.url, key_id=getattr(args, "key_id", None),
                       secret=_secret(args) if signed else None) as client:
        if args.action == "register":
            locators = [parse_locator(s) for s in args.locator]
            out = client.register(args.eid, locators, ttl=args.ttl, expires_in=args.expires_in,
                                  instance_id=args.instance_id).to_dict()
        elif args.action == "refresh":
            out = client.refresh(args.eid, expires_in=args.expires_in, instance_id=args.instance_id).to_dict()
        elif args.action == "deregister":
            out = {"eid": args.eid, "version": client.deregister(args.eid, instance_id=args.instance_id)}
        elif args.action == "resolve":
            out = client.resolve_raw(args.query, instance_id=args.instance_id, pick=args.pick)
        elif args.action == "list":
            return _list(client, args)
        else:
            return _watch(client, args)
    if args.json:
        print(json.dumps(out, indent=2))
    elif args.action == "resolve":
        _print_resolution(out)
    else:
        print(f"{args.action} {out.get('eid')} ok, version {out.get('version')}")
    return 0


def _print_resolution(out: dict) -> None:
    if not out["found"]:
        where = f" (nothing registered in {out['negative_prefix']})" if out.get("negative_prefix") else ""
        print(f"{out['query']}: not found{where}, cache {out['ttl']} s")
        return
    mapping = out["mapping"]
    print(f"{out['query']}: {mapping['eid']} version {mapping['version']} ttl {mapping['ttl']} site {mapping['site']}")
    for loc in out["locators"]:
        port = f" port {loc['port']}" if loc.get("port") else ""
        print(f"  {loc['address']} priority {loc['priority']} weight {loc['weight']}{port}")
    if out.get("selected"):
        print(f"  selected: {out['selected']['address']}")


def _list(client, args) -> int:
    mappings = client.mappings(instance_id=args.instance_id)
    if args.json:
        print(json.dumps([m.to_dict() for m in mappings], indent=2))
        return 0
    for m in mappings:
        where = ", ".join(f"{loc.address}/{loc.priority}" for loc in m.ordered()) or "-"
        print(f"{m.eid} v{m.version} ttl {m.ttl} site {m.site}: {where}")
    return 0


def _watch(client, args) -> int:
    from vmferry.locator.feed import Heartbeat

    seen = 0
    for item in client.watch(from_version=args.from_version, eids=args.eid, instance_id=args.instance_id):
        if isinstance(item, Heartbeat):
            continue
        if args.json:
            print(json.dumps(item.to_dict()), flush=True)
        else:
            where = ", ".join(loc.address for loc in item.mapping.ordered()) if item.mapping else "-"
            print(f"{item.version} {item.kind} {item.eid} -> {where}", flush=True)
        seen += 1
        if args.count and seen >= args.count:
            break
    return 0


def _serve(args) -> int:
    import logging

    import uvicorn

    from vmferry.locator.auth import Verifier, load_sites
    from vmferry.locator.http_api import create_app
    from vmferry.locator.service import LocatorService

    logging.basicConfig(level=getattr(logging, args.log_level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    sites = load_sites(args.sites)
    http_host, http_port = _host_port(args.http, "--http")
    dns_addr = _host_port(args.dns, "--dns") if args.dns else None
    push_config = None
    if args.dns_push:
        from vmferry.locator.dns_push import PushConfig

        push_config = PushConfig.load(args.dns_push)
    if args.etcd:
        from vmferry.locator.etcd import EtcdStore

        store = EtcdStore([u.strip() for u in args.etcd.split(",") if u.strip()], prefix=args.etcd_prefix)
    else:
        from vmferry.locator.store import SqliteStore

        store = SqliteStore(args.db or "locator.db")
    service = LocatorService(store).start()
    extras = []
    try:
        if dns_addr:
            from vmferry.locator.dns_front import DnsFront

            extras.append(DnsFront(service, *dns_addr, instance_id=args.dns_instance_id).start())
        if push_config:
            from vmferry.locator.dns_push import DnsPusher

            extras.append(DnsPusher(service, push_config).start())
        app = create_app(service, Verifier(sites, window=args.window), max_body=args.max_body)
        config = uvicorn.Config(app, host=http_host, port=http_port, log_level=args.log_level,
                                access_log=False, timeout_graceful_shutdown=2)
        print(f"vmferry locator: store {store.name} at version {service.version}, "
              f"http://{http_host}:{http_port}" + (f", dns {dns_addr[0]}:{dns_addr[1]}" if dns_addr else ""),
              file=sys.stderr, flush=True)
        _listen(http_host, http_port).close()  # fail in one line now rather than inside uvicorn
        uvicorn.Server(config).run()
    finally:
        for extra in reversed(extras):
            extra.close()
        service.close()
    return 0
