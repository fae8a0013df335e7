"""Thin adapter over ``qemu-img`` (Debian package qemu-utils).

Every call goes through :mod:`vmferry.tools.proc` and reads ``--output=json`` where the tool offers
it. An image is named by an :class:`ImageSpec`: a file, or a byte range of a file (a member of an
OVA) opened through qemu's ``raw`` driver with ``offset`` and ``size``, so nothing is unpacked.

``qemu-img compare`` has no JSON output; its documented exit status (0 identical, 1 different,
2 error) is the answer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from vmferry.errors import DiskError, ToolFailed
from vmferry.tools import proc

QEMU_IMG = "qemu-img"


@dataclass(frozen=True)
class ImageSpec:
    """An image for qemu-img: ``fmt`` is the qemu driver name (``vmdk``, ``qcow2``, ``vpc``...).

    ``offset``/``size`` select a byte range of ``path`` (a tar member); ``size=None`` means to the
    end of the file.
    """

    path: str
    fmt: str
    offset: int = 0
    size: int | None = None

    def is_range(self) -> bool:
        return self.offset != 0 or self.size is not None

    def options(self) -> dict:
        """The qemu block-driver options of this image, as a JSON-able dict."""
        inner: dict = {"driver": "file", "filename": os.path.abspath(self.path)}
        if self.is_range():
            ranged: dict = {"driver": "raw", "offset": self.offset, "file": inner}
            if self.size is not None:
                ranged["size"] = self.size
            inner = ranged
        if self.fmt == "raw" and self.is_range():
            return inner
        return {"driver": self.fmt, "file": inner}

    def filename(self) -> str:
        """The name to give qemu-img: the plain path, or a ``json:`` pseudo-filename for ranges."""
        if not self.is_range():
            return os.path.abspath(self.path)
        return "json:" + json.dumps(self.options(), separators=(",", ":"))

    def argv(self, flag: str = "-f") -> list[str]:
        """Arguments naming this image for a sub-command (``-f fmt path`` or ``json:...``)."""
        if self.is_range():
            return [self.filename()]
        return [flag, self.fmt, self.filename()]


@dataclass(frozen=True)
class ImageInfo:
    format: str
    virtual_size: int
    actual_size: int | None
    cluster_size: int | None
    dirty: bool
    format_specific: Mapping = field(default_factory=dict)

    @property
    def subformat(self) -> str | None:
        data = self.format_specific.get("data", {}) if self.format_specific else {}
        return data.get("create-type")


@dataclass(frozen=True)
class Extent:
    start: int
    length: int
    data: bool
    zero: bool
    offset: int | None  # host offset of the bytes when they are stored plainly, else None
    depth: int = 0      # 0: in this image; >0: in a backing file


def _run(argv: list[str], what: str, path: str, **kwargs) -> proc.Result:
    try:
        return proc.run(argv, **kwargs)
    except ToolFailed as exc:
        detail = exc.stderr.strip().splitlines()[-1] if exc.stderr.strip() else str(exc)
        detail = detail.removeprefix("qemu-img: ")
        raise DiskError(f"{what} failed: {detail}", path=path) from exc


def _json(argv: list[str], what: str, path: str, **kwargs) -> object:
    result = _run(argv, what, path, **kwargs)
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise DiskError(f"{what}: qemu-img printed output that is not JSON", path=path) from exc


def info(spec: ImageSpec, *, timeout: float = 60) -> ImageInfo:
    doc = _json([QEMU_IMG, "info", "--output=json", *spec.argv()], "reading the image header",
                spec.path, timeout=timeout)
    if not isinstance(doc, dict) or "virtual-size" not in doc:
        raise DiskError("qemu-img info gave no virtual size", path=spec.path)
    return ImageInfo(format=doc.get("format", spec.fmt), virtual_size=int(doc["virtual-size"]),
                     actual_size=doc.get("actual-size"), cluster_size=doc.get("cluster-size"),
                     dirty=bool(doc.get("dirty-flag", False)),
                     format_specific=doc.get("format-specific") or {})


def map_extents(spec: ImageSpec, *, timeout: float = 300) -> list[Extent]:
    """The allocation map: which ranges hold data, which read as zeros, where plain bytes lie."""
    doc = _json([QEMU_IMG, "map", "--output=json", *spec.argv()], "mapping the image", spec.path,
                timeout=timeout)
    if not isinstance(doc, list):
        raise DiskError("qemu-img map did not print a list", path=spec.path)
    return [Extent(int(e["start"]), int(e["length"]), bool(e.get("data")), bool(e.get("zero")),
                   int(e["offset"]) if "offset" in e else None, int(e.get("depth", 0))) for e in doc]


def check(spec: ImageSpec, *, timeout: float = 300) -> dict:
    """``qemu-img check``: a dict with ``check-errors`` and friends; raises nothing on corruption."""
    argv = [QEMU_IMG, "check", "--output=json", *spec.argv()]
    result = proc.run(argv, check=False, timeout=timeout)
    try:
        doc = json.loads(result.stdout) if result.stdout.strip() else {}
    except json.JSONDecodeError as exc:
        raise DiskError("qemu-img check printed output that is not JSON", path=spec.path) from exc
    if result.returncode not in (0, 2, 3) and not doc:
        # exit 1: the check could not complete, which for a readable file means it is corrupt
        lines = [ln.removeprefix("qemu-img: ") for ln in result.stderr.strip().splitlines() if ln.strip()]
        if result.returncode != 1 or not lines:
            raise DiskError(f"qemu-img check failed: {' '.join(lines)}", path=spec.path)
        doc = {"check-errors": 1, "error": lines[0]}
    doc.setdefault("check-errors", 0)
    doc["_exit"] = result.returncode
    return doc


def compare(a: ImageSpec, b: ImageSpec, *, timeout: float = 600) -> bool:
    """True when the guest sees the same bytes in both (a longer image must read zeros past the
    shorter one's end; compare virtual sizes separately when they matter)."""
    argv = [QEMU_IMG, "compare", "-q"]
    argv += a.argv("-f") + b.argv("-F")
    result = proc.run(argv, check=False, timeout=timeout)
    if result.returncode in (0, 1):
        return result.returncode == 0
    raise DiskError(f"qemu-img compare failed: {result.stderr.strip()}", path=a.path)


def create(path: str, fmt: str, size: int, options: Mapping[str, str] | None = None) -> None:
    argv = [QEMU_IMG, "create", "-q", "-f", fmt]
    if options:
        argv += ["-o", ",".join(f"{k}={v}" for k, v in options.items())]
    _run([*argv, path, str(size)], "creating the image", path, timeout=120)


def convert_argv(src: ImageSpec, dst_path: str, dst_fmt: str,
                 options: Mapping[str, str] | None = None, *, coroutines: int = 8) -> list[str]:
    argv = [QEMU_IMG, "convert", "-m", str(coroutines), "-W"]
    argv += [*src.argv(), "-O", dst_fmt]
    if options:
        argv += ["-o", ",".join(f"{k}={v}" for k, v in options.items())]
    return [*argv, dst_path]


def convert(src: ImageSpec, dst_path: str, dst_fmt: str, options: Mapping[str, str] | None = None,
            *, timeout: float | None = None) -> None:
    """Convert ``src`` into a new image ``dst_path``; raises :class:`DiskError` on failure."""
    _run(convert_argv(src, dst_path, dst_fmt, options), f"converting to {dst_fmt}", src.path,
         timeout=timeout)
