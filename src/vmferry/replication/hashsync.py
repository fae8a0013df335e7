"""The change source of a package (an OVF/OVA refreshed from time to time): block hashes, not tracking.

A package carries no record of what changed, so the new package's disk is read once and hashed per
64 KiB block (:func:`vmferry.replication.imageio.block_hashes`), and a block is copied only when its
hash differs both from the source block hashes recorded with the replica's newest point (what the
replica was made from, ``<vm>.<disk>.srcmap``) and from the replica's own block hashes (``.map``): the
first test keeps blocks the target's guest repair changed on the replica but the source did not touch;
the second skips blocks the replica already holds. Only the differing blocks are written.

The disk is read in place through qemu (a byte range of the OVA, or the file of an OVF directory), after
the package's manifest digests were checked; a compressed member is first expanded into a temporary
qcow2 file inside the draft (removed with it).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from vmferry.errors import ReplicationError, VmferryError
from vmferry.replication import imageio
from vmferry.replication.model import DiskRef, Extent, PointDraft
from vmferry.replication.store import ProtectionGroup, ReplicaVm


def package_disk(vm: ReplicaVm, ref: DiskRef, workdir: str, stack: contextlib.ExitStack):
    """The ``ImageSpec`` of the package disk behind ``ref`` (its manifest checked first)."""
    from vmferry.dialects import read_package
    from vmferry.disks.convert import open_disk
    from vmferry.package import open_package

    try:
        pkg = open_package(vm.source)
        problems = [f for f in pkg.verify_integrity() if f.severity == "error"]
        if problems:
            raise ReplicationError(f"the package does not verify: {problems[0].message}", path=vm.source)
        portable = read_package(pkg.envelope)
        system = next((s for s in portable.systems if vm.system in (None, s.id)), None)
        if system is None:
            raise ReplicationError(f"the package has no system {vm.system!r}", path=vm.source)
        disk = next((d for d in system.disks_for(portable.default_profile) if d.id == ref.disk), None)
        fspec = portable.file(disk.file_id) if disk is not None else None
        if fspec is None:
            raise ReplicationError(f"the package's system {system.id!r} has no disk {ref.disk!r} with a file "
                                   "any more", path=vm.source)
        member = pkg.file(fspec.href)
        place = member.in_place
        if place is not None:
            return open_disk(*place, name=member.where).spec
        from vmferry.disks.ova_read import convert_file

        temp = os.path.join(workdir, f".{ref.key}.source.qcow2")
        stack.callback(lambda: os.path.exists(temp) and os.unlink(temp))
        convert_file(member, temp, "qcow2", force=True)
        from vmferry.tools.qemu_img import ImageSpec

        return ImageSpec(temp, "qcow2")
    except ReplicationError:
        raise
    except VmferryError as exc:
        raise ReplicationError(f"cannot read the package disk {ref.disk!r}: {exc}", path=vm.source) from exc


def changed_blocks(new: list[bytes], previous_source: list[bytes], replica: list[bytes]) -> list[int]:
    """Blocks whose new hash differs from what the replica was made from and from what it holds."""
    if not len(new) == len(previous_source) == len(replica):
        raise ReplicationError(f"block maps differ in length ({len(new)}, {len(previous_source)}, {len(replica)})")
    return [i for i, h in enumerate(new) if h != previous_source[i] and h != replica[i]]


def as_extents(blocks: list[int], block_size: int, size: int) -> list[Extent]:
    """Runs of consecutive blocks as extents (the last one clipped to the disk's size)."""
    out: list[Extent] = []
    for b in blocks:
        start = b * block_size
        length = min(block_size, size - start)
        if out and out[-1].end == start:
            out[-1] = Extent(out[-1].offset, out[-1].length + length)
        else:
            out.append(Extent(start, length))
    return out


class PackageChanges:
    """:class:`~vmferry.replication.model.ChangeSource` of one package disk against the replica."""

    full = False
    resync_reason = ""

    def __init__(self, image: imageio.Image, extents: list[Extent], stack: contextlib.ExitStack,
                 hashes: list[bytes]) -> None:
        self._image = image
        self._extents = extents
        self._stack = stack
        self.hashes = hashes      # the new source block hashes (recorded with the point)

    @classmethod
    def open(cls, vm: ReplicaVm, ref: DiskRef, previous_source: list[bytes] | None, replica: list[bytes] | None,
             workdir: str, block_size: int = imageio.BLOCK_SIZE, *,
             progress: Callable[[int], None] | None = None) -> PackageChanges:
        """Hash the package disk; with no previous maps every block is a change (a full copy). ``progress``
        is called with the bytes hashed so far (a long hash keeps a caller's heartbeat alive)."""
        stack = contextlib.ExitStack()
        try:
            spec = package_disk(vm, ref, workdir, stack)
            image = stack.enter_context(imageio.open_image(spec))
            if image.size != ref.size:
                raise ReplicationError(f"disk {ref.disk!r} is now {image.size} bytes, the replica's is {ref.size}: "
                                       "a resized disk needs the application protected again", path=vm.source)
            hashes = imageio.block_hashes(image, block_size, progress=progress)
            if previous_source is None or replica is None:
                blocks = list(range(len(hashes)))
            else:
                blocks = changed_blocks(hashes, previous_source, replica)
            source = cls(image, as_extents(blocks, block_size, ref.size), stack, hashes)
            source.full = previous_source is None
            return source
        except BaseException:
            stack.close()
            raise

    @classmethod
    def for_draft(cls, group: ProtectionGroup, draft: PointDraft, ref: DiskRef, *,
                  progress: Callable[[int], None] | None = None) -> PackageChanges:
        from vmferry.replication.points import point_dir, read_map

        vm = group.vm(ref.vm)
        bs = imageio.BLOCK_SIZE
        previous = replica = None
        if draft.parent is not None:
            pdir = point_dir(group, draft.parent)
            replica = read_map(os.path.join(pdir, f"{ref.key}.map"), ref.size, bs)
            srcmap = os.path.join(pdir, f"{ref.key}.srcmap")
            previous = read_map(srcmap, ref.size, bs) if os.path.exists(srcmap) else list(replica)
        source = cls.open(vm, ref, previous, replica, draft.draft_dir, bs, progress=progress)
        write_source_map(os.path.join(draft.draft_dir, f"{ref.key}.srcmap"), source.hashes)
        return source

    def extents(self) -> list[Extent]:
        return list(self._extents)

    def read(self, offset: int, length: int) -> bytes:
        return self._image.pread(length, offset)

    def close(self) -> None:
        self._stack.close()


def write_source_map(path: str, hashes: list[bytes]) -> None:
    temp = path + ".tmp"
    with open(temp, "wb") as fh:
        fh.write(b"".join(hashes))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temp, path)
