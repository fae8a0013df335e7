"""The qcow2 images vmferry writes in process (an empty overlay, as ``qemu-img create`` makes it) and the
allocation map it reads from a qcow2 file's own tables, checked against qemu-img itself."""

from __future__ import annotations

import json
import random
import subprocess

import pytest

from vmferry.disks.qcow2_layer import LayerWriter
from vmferry.disks.qcow2_map import held_ranges
from vmferry.disks.qcow2_write import create_image
from vmferry.errors import DiskError

MIB = 1 << 20


def qemu(*argv: str) -> str:
    return subprocess.run(list(argv), check=True, capture_output=True, text=True).stdout


def qemu_img_held(path) -> list[tuple[int, int]]:
    """What ``qemu-img map`` says the file holds itself (depth 0, present), adjacent runs joined."""
    out: list[tuple[int, int]] = []
    for e in json.loads(qemu("qemu-img", "map", "--output=json", "-f", "qcow2", str(path))):
        if e.get("present") and e.get("depth", 0) == 0:
            if out and sum(out[-1]) == e["start"]:
                out[-1] = (out[-1][0], out[-1][1] + e["length"])
            else:
                out.append((e["start"], e["length"]))
    return out


def test_an_overlay_written_here_is_what_qemu_img_create_makes(tmp_path):
    (tmp_path / "p1").mkdir()
    (tmp_path / "p2").mkdir()
    base = tmp_path / "p1" / "d.qcow2"
    qemu("qemu-img", "create", "-q", "-f", "qcow2", str(base), str(64 * MIB))
    qemu("qemu-io", "-f", "qcow2", "-c", "write -P 7 0 64M", str(base))
    layer = tmp_path / "p2" / "d.qcow2"
    create_image(layer, 64 * MIB, backing="../p1/d.qcow2")
    info = json.loads(qemu("qemu-img", "info", "--output=json", str(layer)))
    assert (info["virtual-size"], info["cluster-size"]) == (64 * MIB, 65536)
    assert (info["backing-filename"], info["backing-filename-format"]) == ("../p1/d.qcow2", "qcow2")
    assert info["format-specific"]["data"]["compat"] == "1.1"
    qemu("qemu-img", "check", "-f", "qcow2", str(layer))            # exit 0: no errors, no leaks
    qemu("qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", str(base), str(layer))   # reads its backing
    assert held_ranges(layer) == [] == qemu_img_held(layer)
    qemu("qemu-io", "-f", "qcow2", "-c", "write -P 9 1M 64k", "-c", "write -z 2M 128k", str(layer))
    qemu("qemu-img", "check", "-f", "qcow2", str(layer))
    assert held_ranges(layer) == [(MIB, 65536), (2 * MIB, 131072)] == qemu_img_held(layer)
    with pytest.raises(FileExistsError):
        create_image(layer, 64 * MIB)
    plain = tmp_path / "plain.qcow2"
    create_image(plain, 64 * MIB + 512)                    # a size not a whole number of clusters
    qemu("qemu-img", "check", "-f", "qcow2", str(plain))
    assert json.loads(qemu("qemu-img", "info", "--output=json", str(plain))).get("backing-filename") is None


@pytest.mark.parametrize("size, backing", [(0, None), (1000, None), (MIB, "a\0b"), (MIB, "x" * 1024)])
def test_impossible_images_are_refused_and_leave_no_file(tmp_path, size, backing):
    with pytest.raises(DiskError):
        create_image(tmp_path / "x.qcow2", size, backing=backing)
    assert not (tmp_path / "x.qcow2").exists()


def test_held_ranges_agree_with_qemu_img_map(tmp_path):
    size = 3 * 1024 * MIB + 3 * 65536 + 7 * 512          # 6 L2 tables' worth, last cluster partial
    layer = tmp_path / "l.qcow2"
    create_image(layer, size)
    rng = random.Random(12)
    cmds = []
    for _ in range(200):
        off = rng.randrange(size // 512) * 512
        length = min(rng.choice([512, 65536, 300000, MIB]), size - off)
        cmds += ["-c", f"write -z {off} {length}" if rng.random() < 0.3 else f"write -P 5 {off} {length}"]
    qemu("qemu-io", "-f", "qcow2", *cmds, str(layer))
    held = held_ranges(layer)
    assert held and held == qemu_img_held(layer)
    packed = tmp_path / "c.qcow2"                           # compressed clusters are held too
    qemu("qemu-img", "convert", "-c", "-f", "qcow2", "-O", "qcow2", str(layer), str(packed))
    assert held_ranges(packed) == qemu_img_held(packed)
    old = tmp_path / "v2.qcow2"                              # version 2 (compat 0.10)
    qemu("qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=0.10", str(old), str(64 * MIB))
    qemu("qemu-io", "-f", "qcow2", "-c", "write -P 1 100k 200k", str(old))
    assert held_ranges(old) == qemu_img_held(old) == [(65536, 4 * 65536)]


def test_layouts_it_does_not_read_are_left_to_qemu_img(tmp_path):
    external = tmp_path / "x.qcow2"
    qemu("qemu-img", "create", "-q", "-f", "qcow2", "-o", f"data_file={tmp_path / 'x.raw'}", str(external), "1M")
    extended = tmp_path / "e.qcow2"
    qemu("qemu-img", "create", "-q", "-f", "qcow2", "-o", "extended_l2=on", str(extended), "1M")
    raw = tmp_path / "r.img"
    raw.write_bytes(bytes(4096))
    assert held_ranges(external) is None
    assert held_ranges(extended) is None
    assert held_ranges(raw) is None


def _expected(tmp_path, name, size, backing, ops):
    """The same writes made by qemu-io into an overlay qemu-img made: the reference image."""
    ref = tmp_path / name
    qemu("qemu-img", "create", "-q", "-f", "qcow2", "-b", backing.name, "-F", "qcow2", str(ref), str(size))
    cmds = []
    for kind, offset, length, pattern in ops:
        cmds += ["-c", f"write -z {offset} {length}" if kind == "zero" else f"write -P {pattern} {offset} {length}"]
    qemu("qemu-io", "-f", "qcow2", *cmds, str(ref))
    return ref


def _apply(writer, ops):
    for kind, offset, length, pattern in ops:
        if kind == "zero":
            writer.zero(offset, length)
        else:
            writer.pwrite(offset, bytes([pattern]) * length)


def test_clusters_written_here_read_back_through_qemu_and_the_image_checks_clean(tmp_path):
    size = 1024 * MIB + 5 * 65536 + 512          # 3 L2 tables, last cluster partial
    base = tmp_path / "base.qcow2"
    qemu("qemu-img", "create", "-q", "-f", "qcow2", str(base), str(size))
    qemu("qemu-io", "-f", "qcow2", "-c", f"write -P 3 0 {512 * MIB}", "-c", f"write -P 4 {512 * MIB} {size - 512 * MIB}",
         str(base))
    rng = random.Random(7)
    ops = []
    for _ in range(400):
        cluster = rng.randrange(size // 65536)
        n = rng.choice([1, 1, 2, 17])
        length = min(n * 65536, (size // 65536 - cluster) * 65536)
        ops.append(("zero" if rng.random() < 0.2 else "data", cluster * 65536, length, rng.randrange(1, 250)))
    ops.append(("data", size // 65536 * 65536, size % 65536, 77))          # the partial last cluster
    ops.append(("zero", 0, 65536, 0))
    layer = tmp_path / "layer.qcow2"
    create_image(layer, size, backing=base.name)
    with LayerWriter.open(layer) as writer:
        _apply(writer, ops)
        writer.flush()
    qemu("qemu-img", "check", "-f", "qcow2", str(layer))     # no leak, no error
    ref = _expected(tmp_path, "ref.qcow2", size, base, ops)
    qemu("qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", str(ref), str(layer))
    assert held_ranges(layer) == held_ranges(ref)
    with LayerWriter.open(ref) as writer:                    # a layer qemu-img made and QEMU wrote
        writer.pwrite(65536, bytes([9]) * 65536)
        writer.flush()
    qemu("qemu-img", "check", "-f", "qcow2", str(ref))
    assert qemu("qemu-io", "-f", "qcow2", "-c", "read -P 9 64k 64k", str(ref)).count("read 65536/65536") == 1


def test_after_a_crash_the_reopened_layer_is_whole_and_rewriting_the_rest_gives_the_same_image(tmp_path):
    size = 256 * MIB
    base = tmp_path / "base.qcow2"
    qemu("qemu-img", "create", "-q", "-f", "qcow2", str(base), str(size))
    rng = random.Random(3)
    # each cluster once, as in one pass of the copy (in-place rewrites come only with the resumed pass)
    ops = [("data", c * 65536, 65536, rng.randrange(1, 250)) for c in rng.sample(range(8, size // 65536), 300)]
    ops[150:150] = [("zero", 0, 4 * 65536, 0)]
    layer = tmp_path / "layer.qcow2"
    create_image(layer, size, backing=base.name)
    writer = LayerWriter.open(layer)
    _apply(writer, ops[:100])
    writer.flush()                                           # the last heartbeat
    _apply(writer, ops[100:220])                             # then a kill -9: data, tables never written
    writer.close()
    qemu("qemu-img", "check", "-f", "qcow2", str(layer))     # whole as of the flush
    qemu("qemu-img", "compare", "-f", "qcow2", "-F", "qcow2",
         str(_expected(tmp_path, "at-flush.qcow2", size, base, ops[:100])), str(layer))
    with LayerWriter.open(layer) as writer:                  # the resumed copy redoes what followed
        _apply(writer, ops[100:])
        writer.flush()
    qemu("qemu-img", "check", "-f", "qcow2", str(layer))
    qemu("qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", str(_expected(tmp_path, "all.qcow2", size, base, ops)),
         str(layer))


def test_the_writer_takes_only_whole_clusters_of_plain_layers(tmp_path):
    layer = tmp_path / "l.qcow2"
    create_image(layer, 4 * MIB)
    with LayerWriter.open(layer) as writer:
        for offset, length in ((512, 65536), (0, 1000), (4 * MIB - 65536, 2 * 65536)):
            with pytest.raises(DiskError):
                writer.pwrite(offset, bytes(length))
    packed = tmp_path / "c.qcow2"
    qemu("qemu-img", "convert", "-c", "-f", "qcow2", "-O", "qcow2", str(layer), str(packed))
    qemu("qemu-io", "-f", "qcow2", "-c", "write -c -P 1 0 64k", str(packed))
    lazy = tmp_path / "lazy.qcow2"
    qemu("qemu-img", "create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on", str(lazy), "4M")
    small = tmp_path / "small.qcow2"
    qemu("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", str(small), "4M")
    assert LayerWriter.open(packed) is None                  # compressed clusters
    assert LayerWriter.open(small) is None                   # not 64 KiB clusters
    assert LayerWriter.open(tmp_path / "c.qcow2") is None
    lazy_writer = LayerWriter.open(lazy)                     # lazy refcounts: a compatible bit only
    assert lazy_writer is not None
    lazy_writer.close()


def test_a_layer_digest_from_known_cluster_hashes_is_the_one_read_from_the_file(tmp_path):
    import hashlib

    from vmferry.disks.qcow2_map import data_clusters
    from vmferry.replication import imageio

    layer = tmp_path / "l.qcow2"
    size = 64 * MIB + 512
    create_image(layer, size)
    blocks = {}
    with LayerWriter.open(layer) as writer:
        for n, guest in enumerate(random.Random(5).sample(range(size // 65536), 40)):
            data = bytes([n + 1]) * 65536
            writer.pwrite(guest * 65536, data)
            blocks[guest] = hashlib.sha256(data).digest()
        writer.zero(0, 65536)
        writer.flush()
    read = imageio.layer_digest(layer)
    assert read.startswith(imageio.LAYER_DIGEST)
    cluster, hosts = data_clusters(layer)
    assert cluster == 65536 and sorted(hosts.values()) == sorted(blocks)
    asked = []

    def known(index):
        asked.append(index)
        return blocks.get(hosts.get(index))

    assert imageio.layer_digest(layer, known) == read
    assert imageio.digest_matches(layer, read) and imageio.digest_matches(layer, imageio.file_digest(layer))
    with open(layer, "r+b") as fh:          # one byte of one data cluster changed
        fh.seek(min(hosts) * 65536 + 7)
        fh.write(b"\xee")
    assert not imageio.digest_matches(layer, read)
