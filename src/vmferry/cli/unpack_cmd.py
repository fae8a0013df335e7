"""Unpack an OVA safely into a directory, checking the manifest on the way (each byte is read
once); with --verify-only, check the OVA without writing anything."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

from vmferry.disks.ova_read import unpack_ova, verify_ova
from vmferry.disks.safety import sigterm_as_interrupt
from vmferry.errors import UsageError
from vmferry.progress import make_reporter


def add_arguments(parser) -> None:
    parser.add_argument("ova", help="the .ova to read")
    parser.add_argument("-o", "--output", help="directory to create (must not exist or be empty)")
    parser.add_argument("--verify-only", action="store_true", help="only check the manifest digests")
    parser.add_argument("--no-verify", action="store_true", help="do not check the manifest")
    parser.add_argument("--force", action="store_true", help="allow a non-empty output directory")
    parser.add_argument("--json", action="store_true", help="JSON result on stdout, JSON progress on stderr")


def run(args) -> int:
    reporter = make_reporter(args.json)
    with sigterm_as_interrupt():
        if args.verify_only:
            result = verify_ova(args.ova, reporter=reporter)
            doc = asdict(result)
            text = f"{args.ova}: {len(result.checked)} files match the manifest"
        else:
            if not args.output:
                raise UsageError("unpack needs -o DIR (or --verify-only)")
            names = unpack_ova(args.ova, args.output, force=args.force, reporter=reporter,
                               verify=not args.no_verify)
            doc = {"path": args.output, "files": names}
            text = f"{args.output}: {len(names)} files"
    if args.json:
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(text)
    return 0
