"""Retention's merged-layer digest reads only what a merge may change, and is always the digest of the
whole file: checked against a full read after real ``qemu-img commit`` of top layers written by ``qemu-io``
in every way a guest writes (overwrites, new clusters, zeros, discards, unaligned writes)."""

from __future__ import annotations

import os
import random
import subprocess

import pytest

from tests.replication.test_copy import qemu_io
from vmferry.disks.qcow2_map import data_clusters, held_clusters
from vmferry.replication import imageio, retention

C = 64 * 1024
SIZE = 16 * 1024 * 1024          # 256 clusters


def as_raw(image: str, out) -> bytes:
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", image, str(out)], check=True)
    return out.read_bytes()


def make_base(path: str, rnd: random.Random) -> None:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=65536", path, str(SIZE)], check=True)
    cmds = [f"write -P {rnd.randrange(1, 255)} {c * C} {C}" for c in sorted(rnd.sample(range(256), 150))]
    for i in range(0, len(cmds), 40):
        qemu_io(path, *cmds[i:i + 40])


def make_top(path: str, base: str, rnd: random.Random) -> None:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=65536", "-F", "qcow2", "-b",
                    os.path.basename(base), path], check=True, cwd=os.path.dirname(path))
    cmds = []
    for c in rnd.sample(range(256), 60):
        kind = rnd.choice(["data", "data", "zero", "discard", "partial"])
        if kind == "data":
            cmds.append(f"write -P {rnd.randrange(1, 255)} {c * C} {C}")
        elif kind == "zero":
            cmds.append(f"write -z {c * C} {C}")
        elif kind == "discard":
            cmds.append(f"write -z -u {c * C} {C}")
        else:
            cmds.append(f"write -P {rnd.randrange(1, 255)} {c * C + 4096 * rnd.randrange(1, 15)} 4096")
    qemu_io(path, *cmds)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_merged_pieces_equal_a_full_read_and_reuse_untouched_clusters(tmp_path, seed):
    rnd = random.Random(seed)
    base, top = str(tmp_path / "base.qcow2"), str(tmp_path / "top.qcow2")
    make_base(base, rnd)
    make_top(top, base, rnd)
    expected_content = as_raw(top, tmp_path / "before.raw")
    before = imageio.layer_pieces(base)
    held = held_clusters(top)
    whole = os.path.getsize(base) // C
    subprocess.run(["qemu-img", "commit", "-q", "-d", "-f", "qcow2", top], check=True)
    merged = retention.merged_pieces(base, before, held, whole)
    assert merged == imageio.layer_pieces(base)                      # the digest of the file as it is
    # the merge changed the file: the check above compares against new bytes, not the old ones
    assert imageio.pieces_digest(merged) != imageio.pieces_digest(before)
    # and most of the base was not read: its data clusters the top did not touch kept their hashes
    reused = [i for i, g in data_clusters(base)[1].items() if g not in held[1] and i < whole]
    assert len(reused) > 80
    # the merge is what the guest saw through the chain
    assert as_raw(base, tmp_path / "after.raw") == expected_content


def test_pieces_that_do_not_give_the_recorded_digest_are_not_trusted(tmp_path):
    rnd = random.Random(9)
    base = str(tmp_path / "base.qcow2")
    make_base(base, rnd)
    pieces = imageio.layer_pieces(base)
    side = tmp_path / "base.pieces"
    side.write_bytes(b"".join(pieces))
    recorded = imageio.layer_digest(base)
    assert retention.trusted_pieces(str(side), recorded) == pieces
    torn = bytearray(side.read_bytes())
    torn[100] ^= 1
    side.write_bytes(bytes(torn))
    assert retention.trusted_pieces(str(side), recorded) is None     # a flipped hash
    side.write_bytes(b"".join(pieces)[:-5])
    assert retention.trusted_pieces(str(side), recorded) is None     # torn
    assert retention.trusted_pieces(str(tmp_path / "missing"), recorded) is None
    # without trusted pieces the merged digest is a full read
    assert retention.merged_pieces(base, None, held_clusters(base), 0) == pieces
