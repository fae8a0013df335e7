"""Record a test recovery's outcome on the protection group (each VM's ``last_test``, with the run's RTO),
so ``vmferry status`` and the console show when the application was last tested and how it went. The
same record whether the test ran from the command line or as a durable run."""

from __future__ import annotations

from vmferry.errors import VmferryError
from vmferry.recovery.report import RecoveryReport


def record_report(report: RecoveryReport, *, store=None) -> list[str]:
    """Record ``report`` as the last test of each VM it launched; the VMs whose record could not be
    written (the record is a convenience: the report stays the result)."""
    from vmferry.replication.launch import record_test

    failed = []
    for vm in report.vms:
        detail = f"test recovery {report.run_id}: " + (f"proved in {vm.time_to_proof:.1f} s" if vm.proved
                                                       else vm.failure)
        try:
            record_test(report.app, vm.vm, report.point_id, vm.proved, detail, store=store,
                        rto_seconds=report.rto_seconds, run=report.run_id)
        except VmferryError:
            failed.append(vm.vm)
    return failed
