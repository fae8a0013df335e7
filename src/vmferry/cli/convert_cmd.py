"""Convert a package for a target: the descriptor in the target's dialect and OVF version, disks in
the target's format, a fresh SHA256 manifest, and a report of every change and every element dropped.

Targets: dmtf (the generic portable profile: DMTF elements only), vmware, virtualbox, xen; kvm
(qcow2 disks and a libvirt domain XML); and the cloud targets of the targets table (disk images in the
target's format and its own documents: docs/targets.md).
"""

from __future__ import annotations

import sys

from vmferry.cli.common import emit_json, print_findings
from vmferry.tables.targets import converters, names, target


def add_arguments(p) -> None:
    p.add_argument("path", metavar="PATH", help=".ovf descriptor, OVF directory or .ova")
    p.add_argument("--to", required=True, choices=converters(), help="the target")
    p.add_argument("-o", "--output", required=True, help="output directory (or .ova with --ova, or .ovf with "
                   "--descriptor-only)")
    p.add_argument("--ova", action="store_true", help="write an OVA archive (aws: the VM as one OVA for VM Import)")
    p.add_argument("--descriptor-only", action="store_true", help="translate the descriptor alone (no disks, "
                   "no manifest)")
    p.add_argument("--disk-format", help="disk format to write (default: the target's)")
    p.add_argument("--force", action="store_true", help="overwrite the output")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    kvm = p.add_argument_group("kvm target")
    kvm.add_argument("--network-map", action="append", default=[], metavar="SRC=DST",
                     help="map a source network: DST is a libvirt network, bridge:BR, or user (repeatable)")
    kvm.add_argument("--new-macs", action="store_true", help="generate new MAC addresses")
    kvm.add_argument("--profile", help="deployment profile to use (default: the package's default)")
    from vmferry.targets.kvm import LIBVIRT_BUS

    kvm.add_argument("--disk-bus", default="auto", choices=("auto", *LIBVIRT_BUS.values()),
                     help="boot disk bus (default: what the inspected guest can boot from)")
    kvm.add_argument("--nic-model", default="auto", choices=("auto", *(m.value for m in target("kvm").nics)),
                     help="NIC model (default: what the inspected guest has a driver for)")
    kvm.add_argument("--no-guest", action="store_true", help="kvm and cloud targets: do not inspect (nor "
                     "repair) the guest disks")
    kvm.add_argument("--no-repair", action="store_true", help="kvm and cloud targets: do not repair the guest "
                     "(drivers, network identity, device names, tools); the converted copy is repaired by default "
                     "when it can be inspected")
    kvm.add_argument("--set", action="append", default=[], metavar="vmferry.net.N.KEY=VALUE",
                     help="new address/gateway/dns (or mac) of NIC N, written into the repaired guest's "
                     "own network configuration (repeatable)")
    kvm.add_argument("--domain-type", choices=("kvm", "qemu"),
                     help="libvirt domain type (default: kvm, or the best the --connect host offers; never "
                     "read from the converting machine)")
    kvm.add_argument("--connect", metavar="URI",
                     help="the target libvirt host: fit the domain to its capabilities now (type, machine, CPU, "
                     "emulator, networks), as deploy would")
    kvm.add_argument("--machine", choices=("q35", "pc"), help="machine type (default: q35; pc for old guests)")
    cloud = p.add_argument_group("cloud targets (" + ", ".join(names(output="cloud")) + ")")
    cloud.add_argument("--upload", action="store_true", help="send the written output to the cloud (aws: S3 and "
                       "EC2 ImportImage; azure: page blobs; openstack: "
                       "Glance through openstacksdk)")
    cloud.add_argument("--cloud", help="openstack: the clouds.yaml cloud to upload to")
    cloud.add_argument("--image-name", help="the image name (default: the VM's name)")
    cloud.add_argument("--bucket", help="gce: the Cloud Storage bucket the image description names as source; aws: "
                       "the S3 bucket the images go to (default: $VMFERRY_AWS_BUCKET)")
    cloud.add_argument("--switch", help="hyperv: the virtual switch the NICs join (default: 'Default Switch')")
    cloud.add_argument("--vmid", type=int, help="proxmox: the VM id in the qm command lines (default: 100)")
    cloud.add_argument("--storage", help="proxmox: the storage qm importovf writes to (default: local-lvm)")
    cloud.add_argument("--bridge", help="proxmox: the bridge the NICs join (default: vmbr0)")
    cloud.add_argument("--s3-prefix", dest="prefix", help="aws: key prefix of the images in the bucket")
    cloud.add_argument("--license-type", choices=("AWS", "BYOL"), help="aws: LicenseType of the import")
    cloud.add_argument("--role-name", help="aws: the IAM role VM Import uses (default: vmimport)")
    cloud.add_argument("--region", help="aws --upload: the region (default: $AWS_REGION)")
    cloud.add_argument("--endpoint-url", help="aws --upload: an S3/EC2-compatible endpoint (default: AWS's)")
    cloud.add_argument("--container", help="azure --upload: the blob container (default: $VMFERRY_AZURE_CONTAINER; "
                       "credentials from $AZURE_STORAGE_CONNECTION_STRING)")
    cloud.add_argument("--blob-prefix", help="azure --upload: a prefix of the blob names")


# the options of the cloud group handed to the target's writer (vmferry.targets.clouds)
CLOUD_OPTIONS = ("cloud", "image_name", "switch", "vmid", "storage", "bridge", "bucket", "prefix", "license_type",
                 "role_name", "region", "endpoint_url", "container", "blob_prefix", "ova")


def run(args) -> int:
    from vmferry.progress import make_reporter

    reporter = make_reporter(json_mode=args.json)
    if target(args.to).output == "cloud":
        from vmferry.targets.clouds import convert_to_cloud

        options = {k: getattr(args, k) for k in CLOUD_OPTIONS if getattr(args, k) is not None}
        report = convert_to_cloud(args.path, args.to, args.output, disk_format=args.disk_format,
                                  profile=args.profile, force=args.force, inspect_guest=not args.no_guest,
                                  reporter=reporter, options=options, upload=args.upload,
                                  repair=not args.no_repair, settings=args.set)
    elif args.upload:
        from vmferry.errors import UsageError

        raise UsageError(f"--upload is for the cloud targets ({', '.join(names(output='cloud'))})")
    elif args.to == "kvm":
        from vmferry.targets.kvm import convert_to_kvm

        report = convert_to_kvm(args.path, args.output, descriptor_only=args.descriptor_only,
                                network_map=args.network_map, new_macs=args.new_macs, profile=args.profile,
                                disk_format=args.disk_format, force=args.force, reporter=reporter,
                                disk_bus=args.disk_bus, nic_model=args.nic_model, inspect_guest=not args.no_guest,
                                domain_type=args.domain_type, machine=args.machine,
                                repair=not args.no_repair, settings=args.set, connect=args.connect)
    else:
        from vmferry.conversion import convert_package

        report = convert_package(args.path, args.to, args.output, ova=args.ova,
                                 descriptor_only=args.descriptor_only, disk_format=args.disk_format,
                                 force=args.force, reporter=reporter)
    if args.json:
        emit_json(report.to_dict())
        return 0
    out = sys.stdout
    out.write(f"{report.source} -> {report.output} ({report.target}, OVF {report.ovf_version}, "
              f"source dialect {report.dialect})\n")
    for f in report.files:
        out.write(f"  wrote {f['href']}" + (f" ({f['size']} bytes)" if f.get("size") is not None else "") + "\n")
    for d in getattr(report, "documents", []):
        out.write(f"  wrote {d['href']} ({d['what']})\n")
    for c in getattr(report, "choices", []):
        if "machine" in c:
            out.write(f"  {c['system']}: disk bus {c['disk_bus']}, NIC {c['nic_model']}, machine {c['machine']}, "
                      f"domain type {c['domain_type']} ({c['why']})\n")
        else:
            out.write(f"  {c['system']}: disk bus {c['disk_bus']} ({c['disk_bus_value']}), NIC {c['nic_model']} "
                      f"({c['nic_value']}), firmware {c['firmware']} ({c['why']})\n")
    for u in getattr(report, "uploads", []):
        out.write(f"  uploaded {u.get('href', '')} -> {u.get('where', '')}\n")
    if report.changes:
        out.write("Changes:\n")
        for c in report.changes:
            out.write(f"  {c.kind:9} {c.what}" + (f": {c.detail}" if c.detail else "") + "\n")
    if report.findings:
        out.write("Findings:\n")
        print_findings(report.findings)
    return 0
