"""Define (and optionally start) a VM on libvirt from a domain XML file (or a directory holding one).

The domain is first made to fit the host (:mod:`vmferry.sites.libvirt_host`): domain type (kvm where
the host has it, else TCG with a warning), machine, CPU, emulator and networks. Warnings go to stderr.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from vmferry.errors import UsageError, VmferryError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="XML_OR_DIR", help="a libvirt domain XML, or a directory holding exactly one")
    parser.add_argument("--connect", "-c", metavar="URI", required=True,
                        help="libvirt URI, e.g. qemu:///system or test:///default")
    parser.add_argument("--start", action="store_true", help="start the domain once it is defined")
    parser.add_argument("--domain-type", choices=("kvm", "qemu"), default=None,
                        help="force the domain type (default: kvm where the host offers it, else qemu/TCG; "
                             "a kvm domain that does not start falls back to TCG)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def domain_xml_path(path: str) -> Path:
    p = Path(path)
    if p.is_dir():
        found = sorted(x for x in p.glob("*.xml") if x.is_file())
        if len(found) != 1:
            raise UsageError(f"expected exactly one domain .xml in the directory, found {len(found)}", path=p)
        return found[0]
    if not p.is_file():
        raise UsageError("no such file or directory", path=p)
    return p


def run(args: argparse.Namespace) -> int:
    from vmferry.cli.common import emit_json
    from vmferry.sites.libvirt_host import define_and_start
    from vmferry.tools.libvirt import connect, domain_name

    path = domain_xml_path(args.path)
    try:
        xml = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read domain XML: {exc}", path=path) from exc
    domain_name(xml, str(path))  # a clear error for a file that is not a domain XML
    with connect(args.connect) as conn:
        try:
            done = define_and_start(conn, xml, start=args.start, domain_type=args.domain_type)
        except VmferryError as exc:
            exc.path = str(path)
            raise
    for warning in done.warnings:
        sys.stderr.write(f"warning: {warning}\n")
    info = done.info
    if args.json:
        emit_json({"uri": args.connect, "xml": str(path), **asdict(info), "domain_type": done.domain_type,
                   "machine": done.machine, "changes": done.changes, "warnings": done.warnings})
    else:
        print(f"{info.name}: defined on {args.connect} ({info.uuid}), {info.state}"
              + (f", type {done.domain_type}" if done.domain_type else ""))
    return 0
