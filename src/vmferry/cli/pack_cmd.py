"""Pack an OVF directory into an OVA in one pass: descriptor first, disks streamed while hashed
(optionally written as streamOptimized VMDK on all cores), SHA256 manifest last."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

from vmferry.disks.packdir import pack_directory
from vmferry.disks.safety import sigterm_as_interrupt
from vmferry.disks.vmdk_stream import DEFAULT_LEVEL
from vmferry.progress import make_reporter


def add_arguments(parser) -> None:
    parser.add_argument("directory", help="directory holding one .ovf descriptor and its files")
    parser.add_argument("-o", "--output", required=True, help="the .ova to write")
    parser.add_argument("--disk-format", choices=["keep", "vmdk-stream"], default="keep",
                        help="keep disks as they are (default) or write them as streamOptimized VMDK")
    parser.add_argument("--level", type=int, default=DEFAULT_LEVEL, choices=range(1, 10), metavar="1-9",
                        help=f"deflate level of streamOptimized grains (default {DEFAULT_LEVEL})")
    parser.add_argument("--force", action="store_true", help="overwrite the output")
    parser.add_argument("--json", action="store_true", help="JSON result on stdout, JSON progress on stderr")


def run(args) -> int:
    reporter = make_reporter(args.json)
    with sigterm_as_interrupt():
        result = pack_directory(args.directory, args.output,
                                disk_format=None if args.disk_format == "keep" else args.disk_format,
                                force=args.force, reporter=reporter, level=args.level)
    if args.json:
        json.dump({"path": result.path, "size": result.size,
                   "files": [asdict(w) for w in result.files.values()],
                   "findings": [asdict(f) for f in result.findings]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"{result.path}: {result.size} bytes, {len(result.files)} files")
        for f in result.findings:
            print(f"  {f}" + (f" (fix: {f.fix})" if f.fix else ""))
    return 0
