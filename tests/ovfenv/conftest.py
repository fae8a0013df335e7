"""Fixtures for the OVF environment tests: cloud-init itself, as the real reader of what vmferry writes.

cloud-init is taken from Debian (the package a Debian guest would run), downloaded with
``apt-get download`` and unpacked with ``dpkg-deb -x`` into a cache directory, not installed: its
Python dependencies come from the Debian packages listed in .ci/apt-packages.txt, and it runs in
Debian's ``python3`` with the unpacked tree on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).parent
DATA = HERE / "data"
PROBE = HERE / "ci_probe.py"
SYSTEM_PYTHON = "/usr/bin/python3"
CI_DEPS = ("yaml", "jinja2", "jsonschema", "configobj", "requests", "jsonpatch", "netifaces", "oauthlib")
SITE = Path("usr/lib/python3/dist-packages")


def _cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "vmferry-tests" / "cloud-init"


def _unpack_cloud_init(cache: Path) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache.parent) as tmp:
        argv = ["apt-get", "download", "cloud-init"]
        if os.geteuid() == 0:  # root: let apt write into our directory without its _apt sandbox user
            argv[1:1] = ["-o", "APT::Sandbox::User=root"]
        got = subprocess.run(argv, cwd=tmp, capture_output=True, text=True, timeout=300)
        if got.returncode != 0 and os.geteuid() == 0:  # no package lists yet (fresh image): fetch them once
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=600)
            got = subprocess.run(argv, cwd=tmp, capture_output=True, text=True, timeout=300)
        debs = list(Path(tmp).glob("cloud-init_*.deb"))
        if got.returncode != 0 or not debs:
            pytest.fail(f"cannot download Debian's cloud-init package: {got.stderr.strip()[-500:]}")
        tree = Path(tmp) / "tree"
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(tree)], check=True, timeout=120)
        (tree / "VERSION").write_text(debs[0].name)
        if cache.exists():
            shutil.rmtree(cache)
        os.replace(tree, cache)


@pytest.fixture(scope="session")
def cloud_init_site(tmp_path_factory) -> Path:
    """The ``dist-packages`` directory of Debian's unpacked cloud-init package."""
    for tool in ("apt-get", "dpkg-deb", "xorriso", "genisoimage"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing (see .ci/apt-packages.txt)")
    missing = subprocess.run([SYSTEM_PYTHON, "-c", "import importlib.util, sys; print(' '.join(m for m in "
                              "sys.argv[1:] if importlib.util.find_spec(m) is None))", *CI_DEPS],
                             capture_output=True, text=True, check=True).stdout.split()
    if missing:
        pytest.fail(f"cloud-init's dependencies are missing from {SYSTEM_PYTHON}: {missing} "
                    "(install the python3-* packages of .ci/apt-packages.txt)")
    cache = _cache_dir()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        cache = tmp_path_factory.mktemp("cache") / "cloud-init"     # no writable home: this session only
    if not (cache / SITE / "cloudinit" / "sources" / "DataSourceOVF.py").is_file():
        _unpack_cloud_init(cache)
    return cache / SITE


@pytest.fixture
def cloud_init_read(cloud_init_site, tmp_path):
    """Run cloud-init's OVF datasource on an ISO; returns what it read (see ci_probe.py)."""

    def read(iso: Path) -> dict:
        work = Path(tempfile.mkdtemp(prefix="ci-", dir=tmp_path))
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env["PYTHONPATH"] = str(cloud_init_site)
        got = subprocess.run([SYSTEM_PYTHON, str(PROBE), str(iso), str(work)], capture_output=True, text=True,
                             env=env, timeout=120)
        assert got.returncode == 0, got.stderr[-3000:]
        return json.loads(got.stdout)

    return read
