"""AWS (EC2 VM Import/Export): disk images in a format VM Import takes and the ``ImportImage`` request.

Per system the output holds its disks — streamOptimized VMDK as VMware exports it by default
(``--disk-format`` vhd, vhd-fixed, vhdx or raw), or with ``--ova`` one OVA as VMware exports it (VMware's
OVF dialect, streamOptimized VMDKs, SHA256 manifest; one system per package) — and:

* ``<stem>.import-image.json``: the request of ``aws ec2 import-image --cli-input-json file://...``
  (:mod:`vmferry.targets.aws_import`, checked against the EC2 API's field list): one ``DiskContainers``
  entry per disk, boot disk first, each ``Format`` and ``UserBucket`` (``S3Bucket``, ``S3Key`` = prefix +
  file name); ``BootMode`` ``legacy-bios`` or ``uefi`` (the firmware chosen from the source and the guest),
  ``Platform`` (``Linux``/``Windows``, from the guest or the descriptor), ``Architecture``, ``Description``,
  and ``LicenseType``/``RoleName`` when given;
* ``<stem>.aws-import.sh``: the AWS CLI commands that upload the images and start the import.

Options (``convert --to aws``): ``bucket`` (``--bucket``, or ``VMFERRY_AWS_BUCKET``; without one the
request names the placeholder bucket :data:`PLACEHOLDER_BUCKET` and VMF-AWS-008 says so), ``prefix``
(``--s3-prefix``), ``license_type``, ``role_name``, and for ``--upload`` ``region`` and ``endpoint_url``
(:mod:`vmferry.sites.aws`; credentials from boto3's own chain).
"""

from __future__ import annotations

import json
import os
import shlex

from vmferry.targets.aws_import import ImportDisk, build_request, dumps
from vmferry.targets.aws_rules import boot_mode_finding, descriptor_findings, guest_findings
from vmferry.targets.clouds.base import CloudJob

PLACEHOLDER_BUCKET = "your-vm-import-bucket"
REQUEST_SUFFIX = ".import-image.json"


def _bucket(options: dict) -> str | None:
    return options.get("bucket") or os.environ.get("VMFERRY_AWS_BUCKET") or None


def _prefix(options: dict) -> str:
    prefix = (options.get("prefix") or "").strip("/")
    return prefix + "/" if prefix else ""


def _platform(job: CloudJob) -> str | None:
    family = getattr(getattr(job.guest, "os", None), "type", None)
    if family not in ("linux", "windows"):
        family = job.vm.os.family
    return {"linux": "Linux", "windows": "Windows"}.get(family or "")


def write(job: CloudJob) -> None:
    bucket = _bucket(job.options)
    prefix = _prefix(job.options)
    name = job.vm.name or job.vm.id
    if job.options.get("ova"):
        disks = [_write_ova(job, prefix, name)]
    else:
        disks = [ImportDisk(prefix + d.href, d.format, f"{name} disk {i + 1}" + (" (boot)" if d.boot else ""))
                 for i, d in enumerate(job.disks)]
    mode = "uefi" if job.choice.firmware == "efi" else "legacy-bios"
    request = build_request(disks, bucket=bucket or PLACEHOLDER_BUCKET, boot_mode=mode, platform=_platform(job),
                            license_type=job.options.get("license_type"), role_name=job.options.get("role_name"),
                            description=f"{name}, converted by vmferry from {os.path.basename(job.source)}")
    href = job.stem + REQUEST_SUFFIX
    job.write_text(href, dumps(request), "EC2 ImportImage request (aws ec2 import-image --cli-input-json)")
    job.write_text(f"{job.stem}.aws-import.sh", _script(job, request, href), "AWS CLI commands: upload, import",
                   mode=0o755)
    job.change("mapped", "firmware", f"{job.choice.firmware} -> BootMode {mode}")
    for nic in job.vm.nics_for(job.profile)[1:]:
        job.change("dropped", f"NIC {nic.index}", "the imported instance gets one network interface")
    if bucket is None:
        job.finding("VMF-AWS-008", "info", f"no S3 bucket given: the request names '{PLACEHOLDER_BUCKET}'",
                    "convert with --bucket (or set VMFERRY_AWS_BUCKET), or edit S3Bucket in " + href)
    report = job.report
    report.findings.append(boot_mode_finding(job.vm, job.guest))
    if job.guest is not None:
        found = guest_findings(job.vm, job.guest, job.profile)
        if job.guest.partition_table in ("gpt", "msdos"):   # the guest's answer replaces the descriptor's guess
            report.findings[:] = [f for f in report.findings if f.rule != "VMF-AWS-003"]
        report.findings += found


def _write_ova(job: CloudJob, prefix: str, name: str) -> ImportDisk:
    """The system as one OVA the way VMware exports it (VMware's OVF dialect, streamOptimized VMDKs, SHA256
    manifest: :func:`vmferry.conversion.convert_package` to ``vmware``), in place of the separate images."""
    from vmferry.conversion import convert_package
    from vmferry.errors import UsageError

    if len(job.portable.systems) != 1:
        raise UsageError("an OVA for VM Import holds one VM; this package has "
                         f"{len(job.portable.systems)} (convert without --ova: one import per system)")
    href = f"{job.stem}.ova"
    convert_package(job.source, "vmware", job.path(href), ova=True, reporter=job.reporter)
    for d in list(job.disks):   # the OVA carries them
        os.unlink(d.path)
        job.report.files[:] = [f for f in job.report.files if f["href"] != d.href]
    job.report.files.append({"href": href, "format": "ova", "size": os.path.getsize(job.path(href)),
                             "system": job.vm.id})
    job.change("converted", f"system {job.vm.id}", f"-> {href} (VMware's OVF dialect, streamOptimized VMDK)")
    return ImportDisk(prefix + href, "ova", f"{name} (OVA)")


def _script(job: CloudJob, request: dict, href: str) -> str:
    lines = ["#!/bin/sh", "# written by vmferry: upload the images to S3, then start VM Import/Export's import",
             "# (AWS CLI v2; credentials and region from your AWS profile or environment)", "set -eu",
             'cd "$(dirname "$0")"']
    for d in request["DiskContainers"]:
        b = d["UserBucket"]
        local = os.path.basename(b["S3Key"])
        lines.append(f"aws s3 cp {shlex.quote(local)} {shlex.quote('s3://' + b['S3Bucket'] + '/' + b['S3Key'])}")
    lines.append(f"aws ec2 import-image --cli-input-json {shlex.quote('file://' + href)}")
    lines.append("# then follow it: aws ec2 describe-import-image-tasks --import-task-ids <ImportTaskId>")
    return "\n".join(lines) + "\n"


def rules(portable, vm, row) -> list:
    return descriptor_findings(vm, portable.default_profile)


def guest_rules(vm, report) -> list:
    return guest_findings(vm, report)


def check_upload(options: dict) -> None:
    from vmferry.sites.aws import AwsSettings

    AwsSettings.from_options(options)


def upload(report, options: dict) -> list[dict]:
    """Upload every system's images and send its import-image request (:mod:`vmferry.sites.aws`)."""
    from vmferry.sites.aws import AwsSettings, upload_and_import

    settings = AwsSettings.from_options(options)
    out = []
    for doc in report.documents:
        if not doc["href"].endswith(REQUEST_SUFFIX):
            continue
        with open(os.path.join(report.output, doc["href"]), encoding="utf-8") as fh:
            request = json.load(fh)
        files = [(os.path.join(report.output, os.path.basename(c["UserBucket"]["S3Key"])), c["UserBucket"]["S3Key"])
                 for c in request["DiskContainers"]]
        result = upload_and_import(files, request, settings)
        for up in result["uploads"]:
            out.append({"href": os.path.basename(up["key"]), "where": f"s3://{up['bucket']}/{up['key']}",
                        "size": up["size"], "etag": up["etag"]})
        task = result["import"]
        out.append({"href": doc["href"], "where": f"EC2 import task {task['import_task_id']}", **task})
    return out
