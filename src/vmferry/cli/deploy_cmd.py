"""Define (and optionally start) a VM on libvirt from a domain XML file (or a directory holding one)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from vmferry.errors import UsageError, VmferryError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="XML_OR_DIR", help="a libvirt domain XML, or a directory holding exactly one")
    parser.add_argument("--connect", "-c", metavar="URI", required=True,
                        help="libvirt URI, e.g. qemu:///system or test:///default")
    parser.add_argument("--start", action="store_true", help="start the domain once it is defined")
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
    from vmferry.tools.libvirt import connect, domain_name

    path = domain_xml_path(args.path)
    try:
        xml = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read domain XML: {exc}", path=path) from exc
    domain_name(xml, str(path))  # a clear error for a file that is not a domain XML
    with connect(args.connect) as conn:
        try:
            info = conn.define(xml)
        except VmferryError as exc:
            exc.path = str(path)
            raise
        if args.start:
            info = conn.start(info.name)
    if args.json:
        print(json.dumps({"uri": args.connect, "xml": str(path), **asdict(info)}, indent=2))
    else:
        print(f"{info.name}: defined on {args.connect} ({info.uuid}), {info.state}")
    return 0
