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
    end of the file. ``backing`` is the checked backing image (None: the image has none, and qemu is
    told so); ``data_file`` the checked external data file of a qcow2 image.

    qemu-img is always given ``-f FMT`` and a ``json:`` block graph that names every node itself, so it
    opens no file vmferry did not check (QEMU's *qemu-img* and *Block device options* documentation,
    docs/tools/qemu-img.rst and qapi/block-core.json BlockdevOptionsGenericCOWFormat):

    * ``"file": {"driver": "file", "filename": ...}``: the protocol layer is fixed, so a name that
      looks like ``nbd:``, ``http:`` or ``json:`` is never parsed as one;
    * ``"backing": null``: "it is allowed to pass null here in order to disable the default backing
      file" — whatever the image header names, qemu opens no backing file (or the checked one);
    * ``"data-file"``: the checked external data file of a qcow2 image, given explicitly.
    """

    path: str
    fmt: str
    offset: int = 0
    size: int | None = None
    backing: ImageSpec | None = None
    data_file: str | None = None

    def is_range(self) -> bool:
        return self.offset != 0 or self.size is not None

    def node(self, *, chain: bool = True) -> dict:
        """The block graph below the top driver (which ``-f`` names), as a JSON-able dict.

        ``chain=False`` for ``qemu-img info``, which opens no backing file and refuses options for one.
        """
        protocol: dict = {"driver": "file", "filename": os.path.abspath(self.path)}
        if self.fmt == "raw":
            ranged = {"offset": self.offset, "file": protocol} if self.is_range() else {"file": protocol}
            if self.size is not None:
                ranged["size"] = self.size
            return ranged
        if self.is_range():
            inner: dict = {"driver": "raw", "offset": self.offset, "file": protocol}
            if self.size is not None:
                inner["size"] = self.size
            protocol = inner
        node: dict = {"file": protocol, "backing": None}
        if self.backing is not None and chain:
            node["backing"] = self.backing.options()
        if self.data_file is not None:
            node["data-file"] = {"driver": "file", "filename": os.path.abspath(self.data_file)}
        return node

    def options(self) -> dict:
        """The whole block graph of this image, top driver included."""
        return {"driver": self.fmt, **self.node()}

    def filename(self, *, chain: bool = True) -> str:
        """The ``json:`` pseudo-filename naming every node of this image."""
        return "json:" + json.dumps(self.node(chain=chain), separators=(",", ":"))

    def argv(self, flag: str = "-f", *, chain: bool = True) -> list[str]:
        """Arguments naming this image for a sub-command: always ``-f fmt json:{...}``."""
        return [flag, self.fmt, self.filename(chain=chain)]


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
    doc = _json([QEMU_IMG, "info", "--output=json", *spec.argv(chain=False)], "reading the image header",
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
    """A new empty image (never with a backing file: no ``-b``/``backing_file`` option is ever given)."""
    if not isinstance(size, int) or size <= 0:
        raise DiskError(f"cannot create an image of {size} bytes", path=path)
    if options and any(k in ("backing_file", "backing_fmt", "data_file") for k in options):
        raise DiskError("images are created without backing or data files", path=path)
    argv = [QEMU_IMG, "create", "-q", "-f", fmt]
    if options:
        argv += ["-o", ",".join(f"{k}={v}" for k, v in options.items())]
    _run([*argv, path, str(size)], "creating the image", path, timeout=120)


def convert_argv(src: ImageSpec, dst_path: str, dst_fmt: str,
                 options: Mapping[str, str] | None = None, *, coroutines: int = 8) -> list[str]:
    argv = [QEMU_IMG, "convert", "-m", str(coroutines)]
    if (options or {}).get("subformat") != "streamOptimized":
        # out-of-order writes; not for a streamOptimized VMDK, which QEMU appends grain after grain: with
        # -W its end-of-stream marker is at times overwritten by a late grain (QEMU 7.2), leaving a file
        # that ends without one (vmferry's stream readers refuse it)
        argv.append("-W")
    argv += [*src.argv(), "-O", dst_fmt]
    if options:
        argv += ["-o", ",".join(f"{k}={v}" for k, v in options.items())]
    return [*argv, dst_path]


def convert(src: ImageSpec, dst_path: str, dst_fmt: str, options: Mapping[str, str] | None = None,
            *, timeout: float | None = None) -> None:
    """Convert ``src`` into a new image ``dst_path``; raises :class:`DiskError` on failure."""
    _run(convert_argv(src, dst_path, dst_fmt, options), f"converting to {dst_fmt}", src.path,
         timeout=timeout)


def resize(path: str, fmt: str, size: int) -> None:
    """Grow the image ``path`` (format ``fmt``) to ``size`` bytes of virtual size."""
    if not isinstance(size, int) or size <= 0:
        raise DiskError(f"cannot resize an image to {size} bytes", path=path)
    _run([QEMU_IMG, "resize", "-q", "-f", fmt, path, str(size)], "resizing the image", path, timeout=120)
