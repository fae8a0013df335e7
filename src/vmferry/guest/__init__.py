"""Guest inspection and per-target readiness.

    report = inspect_image("disk.qcow2")          # libguestfs, read-only
    matrix = readiness_matrix(report)             # target -> Readiness(status, findings)
"""

from __future__ import annotations

from vmferry.guest.model import GuestReport


def inspect_image(path) -> GuestReport:
    """Inspect the guest OS on a disk image (raw, qcow2, vmdk, vhdx...) with libguestfs."""
    from vmferry.guest.collect import collect

    return collect(path)


from vmferry.guest.readiness import TARGETS, Readiness, readiness, readiness_matrix  # noqa: E402


def guest_findings(report: GuestReport, target: str, *, bus: str | None = None, nic: str | None = None) -> list:
    """The guest's findings for ``target`` (:class:`vmferry.findings.Finding`), for ``vmferry check``."""
    return readiness(report, target, bus=bus, nic=nic).findings


__all__ = ["GuestReport", "inspect_image", "readiness", "readiness_matrix", "guest_findings", "Readiness",
           "TARGETS"]
