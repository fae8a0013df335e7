"""The ``iso`` transport (DSP0243 §11.1): an ISO 9660 image whose root holds ``ovf-env.xml``.

The image carries Joliet and Rock Ridge names (so the guest sees ``ovf-env.xml`` in lower case, as
cloud-init and VMware guests look for it) and the volume label ``OVF ENV``. It is made by
``genisoimage`` (or ``xorriso -as mkisofs``) through :mod:`vmferry.tools.proc`, under a temporary
name in the output directory, then renamed: a failed run leaves no partial image behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vmferry.errors import ToolMissing, VmferryError
from vmferry.tools import proc

ENV_NAME = "ovf-env.xml"
VOLUME_LABEL = "OVF ENV"


def _mkisofs() -> list[str]:
    try:
        return [proc.which("genisoimage")]
    except ToolMissing:
        return [proc.which("xorriso"), "-as", "mkisofs"]


@contextmanager
def _os_errors(out: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise VmferryError(f"cannot write the output: {exc.strerror or exc}", path=out) from exc


def write_atomic(data: bytes, out_path: str | os.PathLike, *, force: bool = False,
                 private: bool = False) -> Path:
    """Write ``data`` to ``out_path`` through a temporary file in the same directory (mode 0600 when
    ``private``: the environment carries password values in clear)."""
    out = Path(out_path)
    _check_target(out, force)
    with _os_errors(out):
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o600 if private else 0o644)
            os.replace(tmp, out)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return out


def _check_target(out: Path, force: bool) -> None:
    if not out.parent.is_dir():
        raise VmferryError("the output directory does not exist", path=out.parent)
    if out.is_dir():
        raise VmferryError("the output is a directory", path=out)
    if out.exists() and not force:
        raise VmferryError("the output file exists (use --force to overwrite)", path=out)


def write_iso(env_xml: bytes, out_path: str | os.PathLike, *, force: bool = False,
              extra_files: dict[str, bytes] | None = None, label: str = VOLUME_LABEL,
              private: bool = False) -> Path:
    """Write an ISO 9660 + Joliet + Rock Ridge image labelled ``label`` holding ``ovf-env.xml``
    (mode 0600 when ``private``)."""
    out = Path(out_path)
    _check_target(out, force)
    files = {ENV_NAME: env_xml, **(extra_files or {})}
    with _os_errors(out), tempfile.TemporaryDirectory(prefix=".vmferry-env-", dir=out.parent) as staging:
        tree = Path(staging) / "root"
        tree.mkdir()
        for name, data in files.items():
            if "/" in name or name in ("", ".", ".."):
                raise VmferryError(f"invalid file name {name!r} for the environment image")
            (tree / name).write_bytes(data)
        tmp_iso = Path(staging) / "env.iso"
        proc.run([*_mkisofs(), "-quiet", "-input-charset", "utf-8", "-V", label, "-J", "-r",
                  "-o", str(tmp_iso), str(tree)], timeout=120)
        os.chmod(tmp_iso, 0o600 if private else 0o644)
        os.replace(tmp_iso, out)
    return out


def read_iso_file(iso_path: str | os.PathLike, name: str = ENV_NAME) -> bytes:
    """Extract one file from the root of an ISO image (by its Rock Ridge / Joliet name) with xorriso."""
    iso = Path(iso_path)
    if not iso.is_file():
        raise VmferryError("no such ISO image", path=iso)
    with tempfile.TemporaryDirectory(prefix="vmferry-iso-") as tmp:
        dest = Path(tmp) / "out"
        proc.run(["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", f"/{name}", str(dest)],
                 timeout=120)
        if not dest.is_file():
            raise VmferryError(f"{name} is not in the image", path=iso)
        return dest.read_bytes()


def volume_label(iso_path: str | os.PathLike) -> str:
    """The primary volume descriptor's volume identifier (ECMA-119 §8.4: sector 16, bytes 40-71)."""
    with open(iso_path, "rb") as f:
        f.seek(16 * 2048)
        pvd = f.read(2048)
    if pvd[1:6] != b"CD001":
        raise VmferryError("not an ISO 9660 image", path=os.fspath(iso_path))
    return pvd[40:72].decode("ascii", "replace").rstrip()
