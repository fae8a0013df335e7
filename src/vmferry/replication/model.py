"""The shared vocabulary of protection and replication (issue 12).

Every value here is a frozen dataclass made of strings, integers, booleans, ``None`` and tuples of
those, so it travels unchanged as a Temporal payload and as JSON in the state directory
(:func:`to_json` / :func:`from_json`).

One sync of one application::

    draft = begin_point(app)                      # one moment for every VM of the application
    for ref in draft.disks:
        sync_disk(draft, ref, resume_at=0, heartbeat=cb) -> DiskSyncResult
    seal_point(draft) -> RecoveryPoint            # digests recorded; read-only from then on
    # or abandon_point(draft)                     # removes all the draft wrote; never a point

Changed blocks come from a :class:`ChangeSource`: the package one (``replication/hashsync.py``)
or the running libvirt domain one (``replication/tracking.py``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol, TypeVar, runtime_checkable

from vmferry.errors import ReplicationError

PointId = str
"""``YYYYmmddTHHMMSSZ-<n>``: the UTC moment of the point and its sequence number in the group."""

Consistency = Literal["application", "crash"]
"""``application``: every file system of the VM was frozen by its guest agent at the moment of the
point; ``crash``: the disks were captured at one moment without the guest's help."""

SourceKind = Literal["domain", "package"]
"""Where a component's disks come from: a running libvirt domain, or an OVF/OVA package."""

Heartbeat = Callable[[int], None]
"""Called with the number of bytes of the disk's change set done so far (monotonic)."""

_POINT_ID = re.compile(r"^(\d{8}T\d{6}Z)-(\d{1,9})$")


def make_point_id(moment: datetime, seq: int) -> PointId:
    """The point id of the ``seq``-th point of a group, taken at ``moment`` (converted to UTC)."""
    if seq < 1:
        raise ReplicationError(f"a point sequence number starts at 1, not {seq}")
    return f"{moment.astimezone(UTC):%Y%m%dT%H%M%SZ}-{seq}"


def parse_point_id(point_id: str) -> tuple[datetime, int]:
    """The moment and sequence number of a point id; a malformed id is refused."""
    match = _POINT_ID.match(point_id)
    if not match:
        raise ReplicationError(f"{point_id!r} is not a recovery point id (YYYYmmddTHHMMSSZ-N)")
    moment = datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return moment, int(match.group(2))


@dataclass(frozen=True)
class Extent:
    """A byte range of a virtual disk."""

    offset: int
    length: int

    @property
    def end(self) -> int:
        return self.offset + self.length


@dataclass(frozen=True)
class DiskRef:
    """One disk of one VM of one component of a protected application. ``disk`` is the disk's name
    inside the VM (the libvirt target such as ``vda``, or the package's disk id); ``size`` is its
    virtual size in bytes."""

    app: str
    component: str
    vm: str
    disk: str
    size: int

    @property
    def key(self) -> str:
        """A name unique within the application, safe as a file name stem."""
        return f"{self.vm}.{self.disk}"


@dataclass(frozen=True)
class VmSession:
    """How one VM's disks are captured for one point. ``state`` is a JSON object owned by the VM's
    change source (for a running domain: checkpoint names, the NBD export of the backup job, ...);
    the rest of vmferry passes it along without reading it."""

    vm: str
    source_kind: SourceKind
    consistency: Consistency
    state: str = "{}"


@dataclass(frozen=True)
class PointDraft:
    """A recovery point being written. It lives under a temporary name in the replica directory
    (``draft_dir``) and is never visible as a point until sealed."""

    app: str
    point_id: PointId
    taken_at: str  # ISO 8601 UTC: the one moment of the point for every VM
    parent: PointId | None  # the newest sealed point when the draft began (None: first full copy)
    draft_dir: str
    disks: tuple[DiskRef, ...]
    sessions: tuple[VmSession, ...]

    @property
    def consistency(self) -> Consistency:
        """``application`` only when every VM of the point was frozen by its guest agent."""
        if self.sessions and all(s.consistency == "application" for s in self.sessions):
            return "application"
        return "crash"

    def session(self, vm: str) -> VmSession:
        for item in self.sessions:
            if item.vm == vm:
                return item
        raise ReplicationError(f"point draft {self.point_id} of {self.app!r} has no VM {vm!r}")


@dataclass(frozen=True)
class DiskSyncResult:
    """What one ``sync_disk`` call moved. ``extents`` counts the changed extents of the change set;
    ``full`` says the whole disk was copied (first copy, or a resync when change tracking was lost —
    ``resync_reason`` then says why)."""

    bytes_read: int
    bytes_written: int
    extents: int
    full: bool = False
    resumed_at: int = 0
    resync_reason: str = ""


@dataclass(frozen=True)
class PointDisk:
    """One disk of a sealed point. ``file`` is the qcow2 layer's name in the replica directory;
    ``content_digest`` is the digest of the disk as the guest sees it (over the block hash map);
    ``file_digest`` the digest of the layer file as sealed (re-recorded when retention merges an
    older point into it, see docs/replication.md)."""

    ref: DiskRef
    file: str
    content_digest: str
    file_digest: str
    block_size: int
    bytes_written: int


@dataclass(frozen=True)
class RecoveryPoint:
    """A sealed, read-only recovery point of a whole application."""

    app: str
    point_id: PointId
    taken_at: str
    sealed_at: str
    parent: PointId | None
    consistency: Consistency
    sessions: tuple[VmSession, ...]
    disks: tuple[PointDisk, ...]
    bytes_read: int = 0
    bytes_written: int = 0
    seconds: float = 0.0  # from the point's moment to its sealing
    merged_from: tuple[PointId, ...] = ()  # older points retention merged into this one

    def disk(self, key: str) -> PointDisk:
        for item in self.disks:
            if item.ref.key == key:
                return item
        raise ReplicationError(f"recovery point {self.point_id} of {self.app!r} has no disk {key!r}")


@runtime_checkable
class ChangeSource(Protocol):
    """The changed blocks of one disk since the replica's newest point."""

    def extents(self) -> list[Extent]:
        """The changed extents, sorted by offset, not overlapping."""

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes of the disk at ``offset`` as of the point's moment."""

    def close(self) -> None:
        """Release what the source holds (connections, temporary files)."""


T = TypeVar("T")


def to_json(value: object) -> object:
    """A model value as plain JSON data (dicts, lists, strings, numbers, booleans, None)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [to_json(item) for item in value]
    return value


def from_json(cls: type[T], data: object) -> T:
    """The model value of type ``cls`` from :func:`to_json`'s output; malformed data is refused."""
    try:
        return typing.cast(T, _build(cls, data))
    except (TypeError, ValueError, KeyError) as exc:
        raise ReplicationError(f"malformed {getattr(cls, '__name__', cls)} record: {exc}") from exc


def _build(tp: object, data: object) -> object:
    return _converter(tp)(data)


@functools.cache
def _converter(tp: object) -> Callable[[object], object]:
    """The function that builds a value of type ``tp`` from JSON data, refusing malformed data. Made
    once per type: resolving a dataclass's field types is most of a record's load time otherwise."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = typing.get_type_hints(tp)
        fields = {f.name: _converter(hints[f.name]) for f in dataclasses.fields(tp)}

        def build_dataclass(data: object) -> object:
            if not isinstance(data, dict):
                raise TypeError(f"{tp.__name__} expects an object, not {type(data).__name__}")
            try:
                return tp(**{k: fields[k](v) for k, v in data.items()})
            except KeyError:
                unknown = set(data) - set(fields)
                if unknown:
                    raise KeyError(f"unknown field(s) {sorted(unknown)} in {tp.__name__}") from None
                raise
        return build_dataclass
    if origin is tuple:
        item = _converter(typing.get_args(tp)[0])

        def build_tuple(data: object) -> object:
            if not isinstance(data, list):
                raise TypeError(f"expected a list, not {type(data).__name__}")
            return tuple(item(x) for x in data)
        return build_tuple
    if origin is Literal:
        allowed = typing.get_args(tp)

        def build_literal(data: object) -> object:
            if data not in allowed:
                raise ValueError(f"{data!r} is not one of {allowed}")
            return data
        return build_literal
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        optional = type(None) in typing.get_args(tp)
        inner = _converter([a for a in typing.get_args(tp) if a is not type(None)][0])

        def build_union(data: object) -> object:
            return None if data is None and optional else inner(data)
        return build_union
    if tp in (int, float, str, bool):
        def build_scalar(data: object) -> object:
            if tp is float and isinstance(data, int) and not isinstance(data, bool):
                return float(data)
            if not isinstance(data, tp) or (tp is int and isinstance(data, bool)):
                raise TypeError(f"expected {tp.__name__}, not {type(data).__name__}")
            return data
        return build_scalar
    return lambda data: data


def dumps(value: object) -> str:
    """A model value as canonical JSON text (sorted keys)."""
    return json.dumps(to_json(value), sort_keys=True, indent=1)


def loads(cls: type[T], text: str) -> T:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ReplicationError(f"malformed {cls.__name__} record: {exc}") from exc
    return from_json(cls, data)
