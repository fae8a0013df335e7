"""Write the OVF environment of a package's virtual system: ``ovf-env.xml`` on an ISO image (the ``iso``
transport), so that the guest configures its network and host name at first boot.

Values come from the package's properties (for the chosen deployment profile), overridden by
``--set KEY=VALUE``. The network settings are recognised in any vendor convention (VMware vApp, Cisco,
cloud-init, vmferry; see docs/ovfenv.md) and also written as cloud-init's ``network-config``.
Exit status: 0 written, 1 error findings (nothing written), 2 bad input.
"""

from __future__ import annotations

import sys
from dataclasses import asdict

from vmferry.cli.common import emit_json, print_findings


def add_arguments(p) -> None:
    p.add_argument("path", metavar="PATH", help=".ovf descriptor, OVF directory or .ova")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="property value (key as declared or as full key class.key.instance); repeatable")
    p.add_argument("--profile", help="deployment profile whose property values to use (default: the package's)")
    p.add_argument("--system", help="virtual system id, when the package has several")
    p.add_argument("-o", "--output", required=True, help="the ISO image to write (or ovf-env.xml with --xml-only)")
    p.add_argument("--xml-only", action="store_true", help="write ovf-env.xml itself instead of an ISO")
    p.add_argument("--allow-new", action="store_true", help="let --set add properties the package does not declare")
    p.add_argument("--no-cloud-init", dest="cloud_init", action="store_false",
                   help="do not add instance-id, local-hostname and network-config for cloud-init")
    p.add_argument("--adapters", action="store_true",
                   help="add VMware's EthernetAdapterSection (MAC and network of each NIC)")
    p.add_argument("--force", action="store_true", help="overwrite the output file")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")


def _masked(props, secret: set[str]) -> dict[str, str]:
    return {k: ("********" if k in secret and v else v) for k, v in props.items()}


def run(args) -> int:
    from vmferry.findings import has_errors
    from vmferry.ovfenv import apply_sets, build_environment, package_properties, parse_sets
    from vmferry.ovfenv.build import transport_findings
    from vmferry.ovfenv.iso import write_atomic, write_iso

    sets = parse_sets(args.sets)
    sp = package_properties(args.path, profile=args.profile, system=args.system)
    changed = apply_sets(sp, sets, allow_new=args.allow_new)
    result = build_environment(sp.system_id, sp.properties, nics=sp.nics, cloud_init=args.cloud_init,
                               adapters=args.adapters, changed=changed,
                               siblings=sp.siblings)
    result.findings[:0] = transport_findings(sp.transports)
    failed = has_errors(result.findings)
    if not failed:
        xml = result.environment.to_xml()
        private = any(p.password and p.value for p in sp.properties)   # secrets in clear: mode 0600
        if args.xml_only:
            write_atomic(xml, args.output, force=args.force, private=private)
        else:
            write_iso(xml, args.output, force=args.force, private=private)
    secret = {p.full_key for p in sp.properties if p.password}
    if args.json:
        emit_json({
            "path": sp.path, "system": sp.system_id, "profile": sp.profile,
            "output": None if failed else args.output, "format": "xml" if args.xml_only else "iso",
            "set": changed, "added": result.added,
            "properties": _masked(result.environment.properties, secret),
            "network": {str(n): asdict(c) for n, c in result.network.items()},
            "findings": [f.to_dict() for f in result.findings],
        })
    else:
        out = sys.stdout
        if failed:
            out.write(f"{sp.path}: not written, the network settings have errors:\n")
        else:
            kind = "ovf-env.xml" if args.xml_only else "ISO image (label 'OVF ENV')"
            out.write(f"{args.output}: {kind} for system {sp.system_id}"
                      + (f", profile {sp.profile}" if sp.profile else "") + "\n")
            for n, c in result.network.items():
                what = "dhcp" if c.dhcp else f"{c.address}/{c.prefix}" if c.address else "-"
                out.write(f"  NIC {n}: {what}" + (f" gw {c.gateway}" if c.gateway else "")
                          + (f" dns {','.join(c.dns_servers)}" if c.dns_servers else "")
                          + (f" host {c.hostname}" if c.hostname else "") + f"  ({c.origin})\n")
            if result.added:
                out.write(f"  added for cloud-init: {', '.join(result.added)}\n")
        print_findings(result.findings, stream=out)
    return 1 if failed else 0
