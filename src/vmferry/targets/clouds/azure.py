"""Azure: fixed VHDs Azure makes managed disks and images from, and the settings to make them with.

Per system the output holds its disks as fixed VHDs written by vmferry (:mod:`vmferry.disks.vhd_write`:
the specification's footer and CHS geometry, the virtual size rounded up to a whole MiB, holes kept),
and:

* ``<stem>.azure.json``: the generation (``hyperVGeneration`` ``V1`` for BIOS, ``V2`` for UEFI: from the
  source firmware and the inspected guest), ``osType``, the OS disk and the data disks (VHD, virtual
  size, LUN), ``securityType`` ``TrustedLaunch`` when the source boots securely, the NIC model the guest
  gets (Hyper-V synthetic) and where the Hyper-V drivers stand;
* ``<stem>.azure-cli.sh``: the ``az`` commands that upload each VHD as a page blob and create the managed
  disks (and an image) from them.

A Linux guest without ``hv_vmbus``/``hv_storvsc`` in its initramfs or without ``hv_netvsc`` is VMF-AZURE-001
(fix: ``vmferry guest repair --for hyperv``). ``--upload`` sends every VHD as a page blob
(:mod:`vmferry.sites.azure`; options ``container``, ``blob_prefix``, credentials from the environment).
"""

from __future__ import annotations

import os
import shlex

from vmferry.targets.azure_rules import generation_finding, hyperv_driver_findings
from vmferry.targets.clouds.base import CloudJob


def _os_type(job: CloudJob) -> str | None:
    family = getattr(getattr(job.guest, "os", None), "type", None)
    if family not in ("linux", "windows"):
        family = job.vm.os.family
    return {"linux": "Linux", "windows": "Windows"}.get(family or "")


def write(job: CloudJob) -> None:
    gen = 2 if job.choice.firmware == "efi" else 1
    drivers = hyperv_driver_findings(job.guest) if job.guest is not None else []
    disks = [{"vhd": d.href, "virtualSizeBytes": d.virtual_size, "sizeGiB": -(-d.virtual_size // (1 << 30))}
             for d in job.disks]
    doc = {"name": job.vm.name or job.vm.id, "hyperVGeneration": f"V{gen}", "osType": _os_type(job),
           "osDisk": disks[0] if disks else None,
           "dataDisks": [{"lun": i, **d} for i, d in enumerate(disks[1:])],
           "securityType": "TrustedLaunch" if job.choice.secure_boot else "Standard",
           "nic": job.choice.nic_value, "diskController": job.choice.bus_value,
           "hypervDrivers": "missing" if drivers else ("present" if job.guest is not None else "not checked"),
           "vcpus": job.cpu[0], "memoryMiB": job.memory_mib}
    job.write_json(f"{job.stem}.azure.json", doc, "Azure disk/image settings (generation, OS type, disks)")
    job.write_text(f"{job.stem}.azure-cli.sh", _script(job, doc), "az CLI commands: page blobs, managed disks",
                   mode=0o755)
    job.change("mapped", "firmware", f"{job.choice.firmware} -> generation {gen}")
    report = job.report
    report.findings.append(generation_finding(job.vm, job.guest))   # the same rule as the firmware choice
    report.findings += drivers


def _script(job: CloudJob, doc: dict) -> str:
    q = shlex.quote
    lines = ["#!/bin/sh", "# written by vmferry: upload the VHDs as page blobs and make managed disks of them",
             "# set RESOURCE_GROUP, STORAGE_ACCOUNT and CONTAINER; az login first", "set -eu",
             'cd "$(dirname "$0")"', ': "${CONTAINER:=vhds}"']
    names = []
    for i, d in enumerate([doc["osDisk"], *doc["dataDisks"]]):
        if d is None:
            continue
        disk = f"{job.stem}-{'os' if i == 0 else 'data' + str(i)}"
        names.append(disk)
        lines.append(f"az storage blob upload --account-name \"$STORAGE_ACCOUNT\" --container-name \"$CONTAINER\" "
                     f"--type page --file {q(d['vhd'])} --name {q(d['vhd'])}")
        extra = f" --os-type {doc['osType']} --hyper-v-generation {doc['hyperVGeneration']}" \
            if i == 0 and doc["osType"] else ""
        lines.append(f"az disk create --resource-group \"$RESOURCE_GROUP\" --name {q(disk)} --source "
                     f"\"https://$STORAGE_ACCOUNT.blob.core.windows.net/$CONTAINER/{d['vhd']}\"{extra}")
    if names and doc["osType"]:
        lines.append(f"az image create --resource-group \"$RESOURCE_GROUP\" --name {q(job.stem)} --source {q(names[0])} "
                     f"--os-type {doc['osType']} --hyper-v-generation {doc['hyperVGeneration']}")
    return "\n".join(lines) + "\n"


def guest_rules(vm, report) -> list:
    return hyperv_driver_findings(report)


def check_upload(options: dict) -> None:
    from vmferry.sites.azure import AzureSettings

    AzureSettings.from_options(options)


def upload(report, options: dict) -> list[dict]:
    """Upload every VHD of the output as a page blob (:mod:`vmferry.sites.azure`)."""
    from vmferry.sites.azure import AzureSettings, upload_vhd

    settings = AzureSettings.from_options(options)
    out = []
    for f in report.files:
        if f.get("format") != "vhd-fixed":
            continue
        result = upload_vhd(os.path.join(report.output, f["href"]), settings)
        out.append({"href": f["href"], "where": result["url"], **result})
    return out
