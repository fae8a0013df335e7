"""What a package holds, resolved once before any command that reads its content uses a byte of it.

:func:`resolve_content` is the gate every content-reading command passes (``convert`` to every target,
``check`` and ``validate`` of a package, ``pack``, ``unpack``, ``disk convert X.ova:M``, ``guest``): the
manifest and certificate are verified (:meth:`Package.verify_integrity`), then every Disk must name a
File that exists, and every File of References must be a file of the package, resolved and checked
through the reader (:meth:`Package.file`) against *its own* attributes:

- its ``ovf:href`` is a plain relative name inside the package (not empty, absolute, ``..``, a URL or
  a folder), and names content, not the package's own descriptor, manifest or certificate;
- it is present, a regular file reached without links; chunked, every chunk is there with consistent
  sizes; its ``ovf:size`` (when declared) is what the package holds, File by File — two Files naming
  one file with different sizes cannot both be right;
- the manifest, when there is one, lists it.

Anything else is bad input: one :class:`~vmferry.errors.PackageError` naming the file and the problem.
The bytes themselves are checked while they are read (digests, gzip streams and their bound), by the
reader's streams.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vmferry.errors import MissingFile, PackageError, UnsafeArchive

if TYPE_CHECKING:
    from vmferry.package.base import Package
    from vmferry.package.files import PackageFile


def resolve_content(pkg: Package, *, urls: bool = False) -> dict[str, PackageFile]:
    """Every File of ``pkg``'s References by id (see the module documentation); raise on the first
    problem. ``urls=True`` passes over Files whose href is a URL instead of refusing them."""
    from vmferry.package.base import safe_href

    pkg.verify_integrity()
    env = pkg.envelope
    where = pkg.descriptor_path or pkg.where(pkg.descriptor_name)
    for disk in env.disks:
        if disk.file_ref and env.file_for_ref(disk.file_ref) is None:
            raise MissingFile(f"Disk '{disk.disk_id}' names fileRef '{disk.file_ref}', which References does "
                              "not declare: its content is not in the package", path=where)
    own = {pkg.descriptor_name, f"{pkg.stem}.mf", f"{pkg.stem}.cert"}
    out: dict[str, PackageFile] = {}
    seen: dict[str, tuple] = {}
    for f in env.references:
        if not f.href:
            raise MissingFile(f"File '{f.id}' has an empty ovf:href: it names no file of the package", path=where)
        if urls and "://" in f.href:
            continue
        name = safe_href(f.href)
        if name is None:
            raise UnsafeArchive(f"File '{f.id}' has href '{f.href}', outside the package (absolute, '..', a "
                                "URL or a folder); refused", path=where)
        if name in own:
            raise UnsafeArchive(f"File '{f.id}' names '{name}', the package's own descriptor, manifest or "
                                "certificate, as its content; refused", path=where)
        shape = ((f.compression or "").strip().lower(), f.chunk_size)
        if seen.setdefault(name, shape) != shape:
            raise PackageError(f"two Files name '{f.href}' with different compression or chunking",
                               path=pkg.where(name))
        out[f.id] = pkg.file(f.href, ref=f)
    return out
