"""Retention: the newest ``keep`` points of an application stay; each older one is merged into the next.

The merge is ``qemu-img commit`` of the next point's layer into the old one, which then takes the next
layer's name (so the newer layers' backing names stay right), so every kept point reads exactly the bytes
it was sealed with. Resumable: an interrupted merge is finished by the next call (the group record names
the point being retired).

The merged layer's file digest (:func:`vmferry.replication.imageio.layer_digest`, SHA-256 over the
SHA-256 of each 64 KiB piece of the file) is re-recorded. The old layer is the application's base, as large
as its disks, and a merge happens at every sync once ``keep`` points exist: reading all of it each time
would cost more than the sync. So only the pieces the merge may have changed are read; the others keep the
hashes of the old layer's ``.pieces`` file (written at sealing, :func:`points.pieces_path`), trusted only
when they give the old layer's recorded digest. A piece keeps its hash when, after the commit, it is a
data cluster (:func:`vmferry.disks.qcow2_map.data_clusters`) of a guest cluster the next layer holds
nothing for (data, zeros or compressed: :func:`vmferry.disks.qcow2_map.held_clusters`), and it was a whole
piece of the old file before: a commit writes only the guest clusters the top layer holds (into their
cluster, or a newly allocated one) and the metadata (header, tables, refcounts), which is never a data
cluster and is always read. ``verify_point`` still reads every byte.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace

from vmferry.disks.qcow2_map import data_clusters, held_clusters
from vmferry.errors import ReplicationError
from vmferry.replication import imageio
from vmferry.replication.model import to_json
from vmferry.replication.points import (
    make_read_only,
    pieces_path,
    point_dir,
    qemu_img_step,
    write_json,
)
from vmferry.replication.store import ProtectionGroup, Store
from vmferry.tools.files import fsync_dir, replace_file
from vmferry.tools.qemu_img import ImageSpec


def apply_retention(app: str, keep: int | None = None, *, store: Store | None = None) -> list[str]:
    """Keep the newest ``keep`` points (the group's own setting by default); returns the ids of the points
    merged away."""
    store = store or Store()
    merged = []
    with store.locked(app):
        group = store.load(app)
        keep = group.keep if keep is None else keep
        if keep < 1:
            raise ReplicationError(f"retention must keep at least one point, not {keep}")
        group = finish_retiring(store, group)
        while len(group.points) > keep:
            oldest = group.points[0]
            group = replace(group, points=group.points[1:], retiring=(oldest,))
            store.save(group)
            group = finish_retiring(store, group)
            merged.append(oldest.point_id)
    return merged


def finish_retiring(store: Store, group: ProtectionGroup) -> ProtectionGroup:
    """Merge the point the record names as retiring into the next one (under the group's lock)."""
    if not group.retiring:
        return group
    (old,) = group.retiring
    nxt = group.points[0]
    old_dir, nxt_dir = point_dir(group, old.point_id), point_dir(group, nxt.point_id)
    disks = []
    for disk in nxt.disks:
        key = disk.ref.key
        nxt_layer = os.path.join(nxt_dir, disk.file)
        old_layer = os.path.join(old_dir, old.disk(key).file)
        pieces = None
        if os.path.exists(old_layer) and _has_backing(nxt_layer):
            before = trusted_pieces(pieces_path(old_dir, key), old.disk(key).file_digest)
            top = held_clusters(nxt_layer)
            whole = os.path.getsize(old_layer) // imageio.LAYER_PIECE
            os.chmod(old_layer, 0o600)
            spec = ImageSpec(nxt_layer, "qcow2", backing=ImageSpec(old_layer, "qcow2"))
            qemu_img_step(["commit", "-q", "-d", *spec.argv()], "merging a recovery point", nxt_layer)
            pieces = merged_pieces(old_layer, before, top, whole)
            os.chmod(nxt_layer, 0o600)
            os.replace(old_layer, nxt_layer)
            fsync_dir(nxt_dir)
        elif os.path.exists(old_layer):      # the next layer stands alone already: it is as it was sealed
            pieces = trusted_pieces(pieces_path(nxt_dir, key), disk.file_digest)
        if pieces is None:                    # a merge resumed after its rename: read the whole layer
            pieces = imageio.layer_pieces(nxt_layer)
        _replace_pieces(pieces_path(nxt_dir, key), pieces)
        make_read_only(nxt_layer)
        disks.append(replace(disk, file_digest=imageio.pieces_digest(pieces)))
    merged = replace(nxt, parent=None, disks=tuple(disks), merged_from=(*old.merged_from, old.point_id,
                                                                         *nxt.merged_from))
    record = os.path.join(nxt_dir, "point.json")
    os.chmod(record, 0o600)
    write_json(record, to_json(merged))
    make_read_only(record)
    shutil.rmtree(old_dir, ignore_errors=True)
    group = replace(group, points=(merged, *group.points[1:]), retiring=())
    store.save(group)
    return group


def trusted_pieces(path: str, recorded: str) -> list[bytes] | None:
    """The piece hashes in ``path`` when they give the digest ``recorded`` (the layer's as sealed or last
    merged); None when the file is missing, torn, or of another state of the layer."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    if len(data) % 32:
        return None
    pieces = [data[i:i + 32] for i in range(0, len(data), 32)]
    return pieces if imageio.pieces_digest(pieces) == recorded else None


def merged_pieces(layer: str, before: list[bytes] | None, top: tuple[int, set[int]] | None,
                  whole: int) -> list[bytes]:
    """The piece hashes of ``layer`` after the commit of a top layer holding the guest clusters ``top``
    into it; ``before``: its piece hashes before, of which the first ``whole`` were whole pieces."""
    bs = imageio.LAYER_PIECE
    after = data_clusters(layer)
    if before is None or top is None or after is None or after[0] != bs or top[0] != bs:
        return imageio.layer_pieces(layer)
    written, hosts = top[1], after[1]
    limit = min(whole, len(before))

    def known(index: int) -> bytes | None:
        guest = hosts.get(index)
        if guest is None or guest in written or index >= limit:
            return None
        return before[index]

    return imageio.layer_pieces(layer, known)


def _replace_pieces(path: str, pieces: list[bytes]) -> None:
    replace_file(path, b"".join(pieces))
    make_read_only(path)


def _has_backing(layer: str) -> bool:
    result = qemu_img_step(["info", "--output=json", *ImageSpec(layer, "qcow2").argv(chain=False)],
                           "reading a point layer", layer, timeout=60)
    return bool(json.loads(result.stdout).get("backing-filename"))
