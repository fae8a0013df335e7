"""Validate packages: will VMware, VirtualBox, oVirt, virt-v2v and COT accept them? References, sizes,
manifest digests, certificate, OVF rules and the DMTF XSD (``--strict``: every XSD deviation an error).

Exit 0 when valid, 1 when a finding of severity error remains in a package that can be read, 2 when the
input cannot be read or is damaged, incomplete or hostile (digest mismatch, lying size, missing file or
chunk, a reference leaving the package, an unsafe or damaged disk image, unsafe archive): one line on
standard error naming the file, nothing on standard output.
"""

from __future__ import annotations

import sys

from vmferry.cli.common import emit_json, print_findings


def add_arguments(p) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help=".ovf descriptor, OVF directory or .ova")
    p.add_argument("--descriptor-only", action="store_true",
                   help="check the descriptor alone; referenced files need not be present")
    p.add_argument("--no-schema", action="store_true", help="skip XSD validation")
    p.add_argument("--strict", action="store_true",
                   help="DMTF schema conformance: every XSD deviation is an error (default: deviations that "
                        "VMware, VirtualBox, oVirt, virt-v2v and COT read are warnings)")
    p.add_argument("--json", action="store_true", help="print JSON (one document per path per line)")


def run(args) -> int:
    from vmferry.progress import make_reporter
    from vmferry.validate import validate_package

    status = 0
    reporter = make_reporter(json_mode=args.json)
    for path in args.paths:
        report = validate_package(path, descriptor_only=args.descriptor_only, schema=not args.no_schema,
                                  strict=args.strict, reporter=reporter)
        if not report.ok:
            status = 1
        if args.json:
            emit_json(report.to_dict())
            continue
        verdict = "valid" if report.ok else "INVALID"
        detail = f", {report.files_checked} digests verified" if report.files_checked else ""
        sys.stdout.write(f"{path}: {verdict} (OVF {report.ovf_version}, {report.container}{detail})\n")
        print_findings(report.findings)
    return status
