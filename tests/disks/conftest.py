"""Fixtures of the disk tests: generated images (random and zero regions, odd sizes), made with
the real qemu-img. Everything lives in pytest's tmp_path."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.conftest import COT
from vmferry.tools import qemu_img

# The sample VMDKs of ../shared/samples, as copied into tests/data/cot (byte-identical).
SAMPLES = os.fspath(COT)
SAMPLE_VMDKS = ["input.vmdk", "ubuntu.2.0-disk1.vmdk", "blank.vmdk"]

if shutil.which("qemu-img") is None:  # pragma: no cover - qemu-utils is in .ci/apt-packages.txt
    pytest.skip("qemu-img (qemu-utils) is not installed", allow_module_level=True)


def make_raw(path, size: int, regions: list[tuple[int, int]], seed: int = 1) -> str:
    """A raw image of ``size`` bytes, zeros except random bytes in each (offset, length) region."""
    rng = __import__("random").Random(seed)
    with open(path, "wb") as f:
        f.truncate(size)
        for off, length in regions:
            f.seek(off)
            f.write(rng.randbytes(length))
    return os.fspath(path)


# 5 MiB + 7 sectors: not a multiple of a grain, a cluster or a MiB; random, zero, random, zero.
ODD_SIZE = 5 * 1048576 + 7 * 512
ODD_REGIONS = [(0, 700_000), (1_500_000, 65_536 * 3 + 512), (3_000_000, 1000), (ODD_SIZE - 4096, 4096)]


@pytest.fixture
def odd_raw(tmp_path) -> str:
    return make_raw(tmp_path / "odd.raw", ODD_SIZE, ODD_REGIONS)


def sample(name: str) -> str:
    path = os.path.abspath(os.path.join(SAMPLES, name))
    if not os.path.exists(path):
        pytest.skip(f"sample {path} is not present (../shared/samples)")
    return path


def same(a: str, a_fmt: str, b: str, b_fmt: str) -> bool:
    return qemu_img.compare(qemu_img.ImageSpec(a, a_fmt), qemu_img.ImageSpec(b, b_fmt))


def leftovers(directory) -> list[str]:
    return [n for n in os.listdir(directory) if ".vmferry-tmp-" in n]
