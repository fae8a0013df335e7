"""Summarise OVF/OVA packages: systems, OS, CPUs, memory, disks, NICs, properties, profiles, files.

With ``--json``, one JSON document per path and line (schema in docs/json.md).
"""

from __future__ import annotations

import sys

from vmferry.cli.common import emit_json, human_bytes, print_findings


def add_arguments(p) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help=".ovf descriptor, OVF directory or .ova")
    p.add_argument("--json", action="store_true", help="print JSON (one document per path per line)")


def render(summary, out=sys.stdout) -> None:
    w = out.write
    kind = "OVA archive" if summary.container == "ova" else "OVF directory"
    w(f"{summary.path}  ({kind}, OVF {summary.ovf_version}"
      + (f", dialect {summary.dialect['name']}" if summary.dialect else "") + ")\n")
    if summary.files:
        w("Files:\n")
        for f in summary.files:
            extra = "".join([f", {f.compression}" if f.compression else "",
                             f", chunks of {human_bytes(f.chunk_size)}" if f.chunk_size else ""])
            w(f"  {f.id:<12} {f.href}  {human_bytes(f.size)}{extra}\n")
    if summary.disks:
        w("Disks:\n")
        for d in summary.disks:
            w(f"  {d.id:<12} {human_bytes(d.capacity_bytes):>10}  {d.format or '-':<22} file {d.file_id or '(blank)'}"
              + (f", populated {human_bytes(d.populated_bytes)}" if d.populated_bytes else "") + "\n")
    if summary.networks:
        w("Networks:\n")
        for n in summary.networks:
            w(f"  {n.name}" + (f"  ({n.description})" if n.description and n.description != n.name else "") + "\n")
    for s in summary.systems:
        where = "/".join([*s.path, s.id or "?"])
        w(f"System {where}" + (f" \"{s.name}\"" if s.name and s.name != s.id else "") + "\n")
        os_text = " ".join(x for x in [s.os.description or "", f"(CIM {s.os.cim_id})" if s.os.cim_id is not None
                                       else "", s.os.vendor_type or ""] if x)
        w(f"  OS:        {os_text or 'not stated'}\n")
        w(f"  Hardware:  {', '.join(s.hardware_family) or 'not stated'}\n")
        w(f"  CPUs:      {s.cpus if s.cpus is not None else '?'}    Memory: "
          f"{str(s.memory_mib) + ' MiB' if s.memory_mib is not None else '?'}\n")
        for d in s.disks:
            w(f"  Disk:      {d.disk_id or '?'} on {d.controller}"
              + (f" ({d.controller_model})" if d.controller_model else "") + "\n")
        for i, n in enumerate(s.nics):
            w(f"  NIC {i}:     {n.model or '?'} on {n.network or '(none)'}" + (f", MAC {n.mac}" if n.mac else "") + "\n")
        if s.cdroms or s.floppies or s.serial_ports:
            w(f"  Devices:   {s.cdroms} CD/DVD, {s.floppies} floppy, {s.serial_ports} serial\n")
        if s.profiles:
            w("  Profiles:\n")
            for p in s.profiles:
                mark = "*" if p.default else " "
                w(f"   {mark} {p.id:<24} {p.cpus or '?'} CPU, {p.memory_mib or '?'} MiB, {p.nics} NIC"
                  + (f"  {p.label}" if p.label else "") + "\n")
        if s.properties:
            w(f"  Properties ({len(s.properties)}):\n")
            for p in s.properties:
                value = "********" if p.password and p.value else (p.value or "")
                w(f"    {p.full_key or p.key} ({p.type or '?'}{', configurable' if p.user_configurable else ''})"
                  f" = {value!r}\n")
    if summary.findings:
        w("Findings:\n")
        print_findings(summary.findings, stream=out, indent="  ")


def run(args) -> int:
    from vmferry.summary import summarize

    for path in args.paths:
        summary = summarize(path)
        if args.json:
            emit_json(summary.to_dict())
        else:
            render(summary)
            if len(args.paths) > 1:
                sys.stdout.write("\n")
    return 0
