"""``vmferry pack DIR``: an OVF directory into an OVA, in one pass.

The descriptor is filled in from what was written by :func:`fill_descriptor`, a small lxml
function kept apart on purpose: it will be replaced by the OVF model (:mod:`vmferry.ovf`) when
that exists. It only touches ``File/@href``, ``@size`` (dropping ``@compression``/``@chunkSize`` of
files vmferry rewrote) and ``Disk/@capacity``, ``@capacityAllocationUnits``, ``@populatedSize``,
``@format``; everything else in the document is kept as lxml serialises it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
from dataclasses import dataclass

from lxml import etree

from vmferry.disks import formats
from vmferry.disks.convert import open_disk
from vmferry.errors import DiskError, UsageError
from vmferry.ovf.xmlsafe import parse_bytes
from vmferry.package.ova_writer import PackResult, PackSource, WrittenFile, pack_ova
from vmferry.progress import Reporter

UNIT_SHIFT = {"byte": 0, "byte * 2^10": 10, "byte * 2^20": 20, "byte * 2^30": 30, "byte * 2^40": 40}


@dataclass(frozen=True)
class DescribedFile:
    id: str
    href: str
    disk_format: str | None   # ovf:format of the Disk using it (None: not a disk)
    compression: str | None = None
    chunk_size: str | None = None


def _parse(xml: bytes, path: str) -> etree._ElementTree:
    """The one safe parser (no DTD, no entities, bounded; see ovf/xmlsafe.py)."""
    return parse_bytes(xml, path=path)


def _ns(root) -> str:
    return etree.QName(root).namespace or ""


def _attr(el, ns: str, name: str) -> str | None:
    return el.get(f"{{{ns}}}{name}") if ns else el.get(name)


def _local(el) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def described_files(xml: bytes, path: str = "descriptor") -> list[DescribedFile]:
    root = _parse(xml, path).getroot()
    ns = _ns(root)
    disks = {}
    for el in root.iter():
        if _local(el) == "Disk" and _attr(el, ns, "fileRef"):
            disks[_attr(el, ns, "fileRef")] = _attr(el, ns, "format")
    out = []
    for el in root.iter():
        if _local(el) == "File" and _attr(el, ns, "href"):
            fid = _attr(el, ns, "id") or ""
            out.append(DescribedFile(fid, _attr(el, ns, "href"), disks.get(fid), _attr(el, ns, "compression"),
                                     _attr(el, ns, "chunkSize")))
    return out


def fill_descriptor(xml: bytes, written: dict[str, WrittenFile], renames: dict[str, str]) -> bytes:
    """The descriptor with sizes, capacities and formats taken from the written files.

    ``renames`` maps an original ``href`` to its name in the OVA; ``written`` is keyed by the new
    name (and may be empty: the first, provisional rendering).
    """
    tree = _parse(xml, "descriptor")
    root = tree.getroot()
    ns = _ns(root)
    q = (lambda n: f"{{{ns}}}{n}") if ns else (lambda n: n)
    by_id: dict[str, WrittenFile] = {}
    for el in root.iter():
        if _local(el) != "File" or not _attr(el, ns, "href"):
            continue
        new = renames.get(_attr(el, ns, "href"), _attr(el, ns, "href"))
        el.set(q("href"), new)
        w = written.get(new)
        if w is not None:
            el.set(q("size"), str(w.size))
            if w.format_uri:  # rewritten by vmferry: no longer compressed or chunked
                for gone in ("compression", "chunkSize"):
                    el.attrib.pop(q(gone), None)
            by_id[_attr(el, ns, "id") or ""] = w
    for el in root.iter():
        if _local(el) != "Disk":
            continue
        w = by_id.get(_attr(el, ns, "fileRef") or "")
        if w is None:
            continue
        if w.capacity is not None:
            unit = (_attr(el, ns, "capacityAllocationUnits") or "byte").strip()
            shift = UNIT_SHIFT.get(unit)
            if shift is not None and w.capacity % (1 << shift) == 0:
                el.set(q("capacity"), str(w.capacity >> shift))
            else:
                el.set(q("capacity"), str(w.capacity))
                el.attrib.pop(q("capacityAllocationUnits"), None)
        if w.populated is not None:
            el.set(q("populatedSize"), str(w.populated))
        if w.format_uri:
            el.set(q("format"), w.format_uri)
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8") + b"\n"


def find_descriptor(directory: str) -> str:
    found = sorted(glob.glob(os.path.join(glob.escape(directory), "*.ovf")))
    if len(found) != 1:
        raise UsageError(f"{directory} must hold exactly one .ovf descriptor ({len(found)} found)",
                         path=directory)
    return found[0]


def pack_directory(directory: str | os.PathLike, out: str | os.PathLike, *, disk_format: str | None = None,
                   force: bool = False, reporter: Reporter | None = None, level: int | None = None,
                   workers: int | None = None) -> PackResult:
    """Pack the OVF package in ``directory`` into ``out``.

    ``disk_format="vmdk-stream"`` writes every disk that is not already streamOptimized as such
    (renamed ``*.vmdk``); ``None`` copies files unchanged. The manifest is always regenerated
    (SHA256); a certificate is not carried over since the contents change.
    """
    from vmferry.package import open_package

    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise UsageError("not a directory", path=directory)
    desc_path = find_descriptor(directory)
    if disk_format not in (None, "vmdk-stream"):
        formats.get_format(disk_format)
        raise UsageError("pack writes disks as they are or as vmdk-stream; use `vmferry disk convert` first")
    # the package reader, on the folder: the descriptor and every file confined to it, no links followed
    pkg = open_package(directory)
    xml = pkg.descriptor_bytes
    pkg.envelope  # noqa: B018 - parsed once: an OVF envelope within the limits of docs/limits.md
    # a folder being packed usually has no manifest yet (pack writes one): no VMF-PKG-004 here
    findings = [f for f in pkg.verify_integrity() if f.rule != "VMF-PKG-004"]
    pkg.content()   # every Disk's file and every reference resolved, sizes as declared: else it raises
    sources, renames, files = [], {}, []
    for df in described_files(xml, desc_path):
        if os.path.basename(df.href) != df.href:
            raise UsageError(f"file reference {df.href!r} is not a plain file name", path=desc_path)
        if df.chunk_size:
            raise UsageError(f"{df.href} is chunked (ovf:chunkSize); join its chunks before packing",
                             path=desc_path)
        # present, a regular file, covered by the manifest, its ovf:size right when it declares one (a
        # File without a size gets the true one); a compressed file's gzip stream is checked while packed
        pf = pkg.file(df.href)
        path = pf.parts[0].fs_path
        files.append(pf)
        disk = None
        stream = False
        compressed = df.compression not in (None, "", "identity")  # copied as it is, attribute kept
        if df.disk_format is not None and not compressed:
            disk = open_disk(path)
            finding = formats.format_mismatch(disk.detected, df.disk_format, path=path)
            if finding is not None and disk_format is None:
                findings.append(finding)
            stream = disk_format == "vmdk-stream" and disk.format != "vmdk-stream"
            named = [r.name for r in disk.header.references] + [os.path.basename(e.path)
                                                                 for e in disk.header.extents if e.path]
            if named and not stream:
                # an archive member can name no other file: copied as it is, it would point nowhere
                raise DiskError(f"the disk keeps data in other files ({', '.join(named[:3])}); "
                                "write it whole as streamOptimized VMDK instead", path=path)
        name = df.href
        if stream and not name.lower().endswith(".vmdk"):
            name = os.path.splitext(name)[0] + ".vmdk"
            renames[df.href] = name
        sources.append(PackSource(name, path, disk, stream))
    kwargs = {"level": level} if level is not None else {}
    with contextlib.ExitStack() as verifying:   # each file verified while packed, before the rename
        checks = [verifying.enter_context(pf.verified_in_place()) for pf in files]
        result = pack_ova(out, os.path.basename(desc_path), lambda w: fill_descriptor(xml, w, renames), sources,
                          force=force, reporter=reporter, workers=workers,
                          finish=lambda: [check() for check in checks], **kwargs)
    return dataclasses.replace(result, findings=findings)
