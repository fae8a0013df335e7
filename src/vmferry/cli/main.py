"""Entry point of the ``vmferry`` command.

Sub-commands live in their own modules, listed in :data:`COMMANDS`; only the module of the command
being run is imported, so that ``vmferry inspect`` starts fast. Each module provides
``add_arguments(parser)`` and ``run(args) -> int``.

Exit status: 0 ok, 1 findings of severity error, 2 bad input or failure (any :class:`VmferryError`,
printed as one line on standard error, never a traceback; ``VMFERRY_DEBUG=1`` shows it).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# command -> (module, one-line help). A plain table: add a row to add a command.
COMMANDS: dict[str, tuple[str, str]] = {
    "inspect": ("vmferry.cli.inspect_cmd", "summarise OVF/OVA packages"),
    "validate": ("vmferry.cli.validate_cmd", "validate packages against the DMTF schema and the OVF rules"),
    "check": ("vmferry.cli.check_cmd", "report what is not portable to a target"),
    "convert": ("vmferry.cli.convert_cmd", "convert a package to another dialect or target"),
    "env": ("vmferry.cli.env_cmd", "write an OVF environment (ovf-env.xml) seed ISO"),
    "pack": ("vmferry.cli.pack_cmd", "pack an OVF directory into an OVA in one pass"),
    "unpack": ("vmferry.cli.unpack_cmd", "unpack an OVA safely into a directory"),
    "disk": ("vmferry.cli.disk_cmd", "inspect and convert disk images"),
    "deploy": ("vmferry.cli.deploy_cmd", "define (and start) a converted VM on libvirt"),
    "guest": ("vmferry.cli.guest_cmd", "inspect guest disks and report readiness per target"),
    "guest repair": ("vmferry.cli.guest_repair_cmd", "repair a guest so it boots and keeps its network on "
                     "the hypervisors given"),
    "locator": ("vmferry.cli.locator_cmd", "the locator/ID mapping service and its clients"),
    "plan": ("vmferry.cli.plan_cmd", "plan (and apply) the move of an application"),
    "serve": ("vmferry.cli.serve_cmd", "run the Temporal service (local by default) and a worker"),
    "worker": ("vmferry.cli.worker_cmd", "run a worker for the sites whose disks this host holds"),
    "runs": ("vmferry.cli.runs_cmd", "list durable runs, or follow one"),
    "protect": ("vmferry.cli.protect_cmd", "keep an application ready at another site (a protection group)"),
    "unprotect": ("vmferry.cli.unprotect_cmd", "stop protecting an application: remove what protect created"),
    "sync": ("vmferry.cli.sync_cmd", "take a recovery point of a protected application (changed blocks only)"),
    "status": ("vmferry.cli.status_cmd", "protection status: newest points, their age against the RPO"),
    "verify": ("vmferry.cli.verify_cmd", "verify recovery points against their sealing digests"),
    "burst": ("vmferry.cli.burst_cmd", "add copies of a component at a burst site with traffic following, "
                                       "remove them, or run the burst policy"),
    "recover": ("vmferry.cli.recover_cmd", "recover a protected application at its other site (test in isolation)"),
}

EXIT_OK, EXIT_FINDINGS, EXIT_FAILURE = 0, 1, 2

# What ``vmferry --help`` opens with: what the tool does, for a user (not this module's docstring).
DESCRIPTION = ("vmferry moves virtual machines between hypervisors and clouds: it reads OVF/OVA packages of every "
               "vendor, says what will not carry over to a target, converts them for VMware, VirtualBox, Xen, "
               "KVM/libvirt or a portable DMTF profile, and checks that the guest will boot there.")
EPILOG = ("Run 'vmferry COMMAND --help' for a command's options. Exit status: 0 ok, 1 findings of severity "
          "error, 2 bad input or failure (one line on standard error).")


def _available() -> dict[str, tuple[str, str]]:
    """Commands whose module is present (some arrive with later issues)."""
    import importlib.util

    return {name: spec for name, spec in COMMANDS.items() if importlib.util.find_spec(spec[0]) is not None}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    from vmferry import __version__

    parser = argparse.ArgumentParser(prog="vmferry", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"vmferry {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    table = {only: COMMANDS[only]} if only else _available()
    for name, (module_name, help_text) in table.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip())
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    as_program = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    # a two-word command ("guest repair") is one entry of the table, parsed as one sub-command
    if len(argv) >= 2 and f"{argv[0]} {argv[1]}" in COMMANDS:
        argv = [f"{argv[0]} {argv[1]}", *argv[2:]]
    only = argv[0] if argv and argv[0] in COMMANDS else None
    debug = os.environ.get("VMFERRY_DEBUG") == "1"
    code = _main(argv, only, debug)
    quick = only is not None and getattr(sys.modules.get(COMMANDS[only][0]), "END_WITHOUT_FINALIZING", False)
    if as_program and ("temporalio" in sys.modules or quick):
        # The Temporal SDK's Rust threads can abort the interpreter while it finalizes
        # (temporalio/sdk-python#300): a command that used it ends without finalizing. So does a command
        # whose module says its work is on disk when it returns (END_WITHOUT_FINALIZING: tearing down
        # libvirt, libnbd and lxml takes longer than a short sync's copy).
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    return code


def _main(argv: list[str], only: str | None, debug: bool) -> int:
    from vmferry.errors import VmferryError

    try:
        parser = build_parser(only)
        args = parser.parse_args(argv)
        if not getattr(args, "_module", None):
            parser.print_help()
            return EXIT_FAILURE
        return int(args._module.run(args) or 0)
    except VmferryError as exc:
        if debug:
            raise
        print(f"vmferry: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("vmferry: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_FAILURE
    except Exception as exc:  # never a traceback for the user; VMFERRY_DEBUG=1 shows it
        if debug:
            raise
        detail = " ".join(str(exc).split())
        print(f"vmferry: internal error: {type(exc).__name__}: {detail} (set VMFERRY_DEBUG=1 for details)",
              file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
