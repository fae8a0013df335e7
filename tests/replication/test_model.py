"""The shared replication vocabulary: ids, round trips through JSON, refusal of malformed records."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from vmferry.errors import ReplicationError, VmferryError
from vmferry.replication.model import (
    ChangeSource,
    DiskRef,
    DiskSyncResult,
    Extent,
    PointDisk,
    PointDraft,
    RecoveryPoint,
    VmSession,
    dumps,
    from_json,
    loads,
    make_point_id,
    parse_point_id,
    to_json,
)


def _point() -> RecoveryPoint:
    ref = DiskRef("shop", "web", "web1", "vda", 1 << 20)
    return RecoveryPoint(
        app="shop", point_id="20261201T021500Z-2", taken_at="2026-12-01T02:15:00+00:00",
        sealed_at="2026-12-01T02:15:09+00:00", parent="20261201T020000Z-1", consistency="crash",
        sessions=(VmSession("web1", "domain", "crash", '{"checkpoint": "c2"}'),),
        disks=(PointDisk(ref, "web1.vda.2.qcow2", "sha256:" + "a" * 64, "sha256:" + "b" * 64, 65536, 4096),),
        bytes_read=4096, bytes_written=4096, seconds=9.0)


def test_point_id_round_trip_in_utc():
    moment = datetime(2026, 12, 1, 4, 15, 0, tzinfo=timezone(timedelta(hours=2)))
    pid = make_point_id(moment, 7)
    assert pid == "20261201T021500Z-7"
    assert parse_point_id(pid) == (datetime(2026, 12, 1, 2, 15, tzinfo=UTC), 7)


@pytest.mark.parametrize("bad", ["", "20261201T021500Z", "20261201T021500-1", "x20261201T021500Z-1", "20261201T021500Z-1/.."])
def test_malformed_point_id_refused(bad):
    with pytest.raises(ReplicationError):
        parse_point_id(bad)


def test_recovery_point_json_round_trip():
    point = _point()
    data = json.loads(json.dumps(to_json(point)))
    assert from_json(RecoveryPoint, data) == point
    assert loads(RecoveryPoint, dumps(point)) == point
    assert point.disk("web1.vda").bytes_written == 4096


def test_draft_consistency_is_application_only_when_every_vm_froze():
    ref = DiskRef("shop", "db", "db1", "vda", 1 << 20)
    both = PointDraft("shop", "20261201T021500Z-1", "t", None, "/x", (ref,),
                      (VmSession("db1", "domain", "application"), VmSession("web1", "domain", "application")))
    one = PointDraft("shop", "20261201T021500Z-1", "t", None, "/x", (ref,),
                     (VmSession("db1", "domain", "application"), VmSession("web1", "package", "crash")))
    assert both.consistency == "application"
    assert one.consistency == "crash"
    assert loads(PointDraft, dumps(one)) == one
    with pytest.raises(ReplicationError):
        one.session("nope")


@pytest.mark.parametrize("mutate", [
    lambda d: d.update(consistency="maybe"),
    lambda d: d.update(bytes_read="12"),
    lambda d: d.update(extra=1),
    lambda d: d.pop("app"),
    lambda d: d.update(disks={"not": "a list"}),
    lambda d: d.update(bytes_written=True),
])
def test_malformed_records_refused(mutate):
    data = to_json(_point())
    mutate(data)
    with pytest.raises(ReplicationError) as info:
        from_json(RecoveryPoint, data)
    assert isinstance(info.value, VmferryError)


def test_frozen_and_protocol():
    with pytest.raises(AttributeError):
        Extent(0, 1).offset = 2  # type: ignore[misc]
    assert Extent(4096, 100).end == 4196
    assert DiskSyncResult(1, 2, 3).full is False

    class Source:
        def extents(self):
            return [Extent(0, 1)]

        def read(self, offset, length):
            return b"x" * length

        def close(self):
            pass

    assert isinstance(Source(), ChangeSource)
    assert not isinstance(object(), ChangeSource)
