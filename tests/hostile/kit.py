"""The hostile suite's building blocks: a case table, a workspace to build hostile packages in (from
the real samples of tests/data), and the table of commands that read each kind of input.

A case is a function ``build(work) -> Built`` registered with :func:`case` (or many at once with
:func:`variants`) under one of :data:`CLASSES` and one of the input kinds of :data:`READS`. The matrix
test (test_matrix.py) runs every command of :func:`commands_for` on what the case built.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(__file__).parent.parent / "data"
COT = DATA / "cot"
BASE_OVF = (COT / "vmware.ovf").read_bytes()          # VMware export: 1 file input.vmdk, 1 disk, 4 NICs
BASE_VMDK = (COT / "input.vmdk").read_bytes()         # streamOptimized, 1 GiB virtual
INPUT_OVF = (COT / "input.ovf").read_bytes()          # COT: 3 files, 3 profiles, 10 properties
INPUT_FILES = {n: (COT / n).read_bytes() for n in ("input.vmdk", "input.iso", "sample_cfg.txt")}
VBOX_OVF = (COT / "ubuntu.2.0.ovf").read_bytes()      # VirtualBox, OVF 2.0
VBOX_VMDK = (COT / "ubuntu.2.0-disk1.vmdk").read_bytes()

CLASSES = ("xml", "tar", "manifest", "paths", "disks", "numbers", "names")
# what part of the input a case damages; decides which commands read it:
# descriptor (its XML), container (the OVA's tar), content (manifest, certificate, referenced files),
# image (a disk image inside a package: read by everything that opens images, not by unpack, which
# copies bytes), disk (a disk image on its own)
READS = ("descriptor", "container", "content", "image", "disk")


@dataclass
class Built:
    target: Path                       # what the command is given
    form: str                          # "ovf" (a descriptor in its folder), "ova" or "disk"
    member: str | None = None          # ova: the disk member that disk commands read (X.ova:MEMBER)
    host: bool = False                 # the case points at the host file (its marker must never show)
    names: tuple[str, ...] = ()        # other acceptable names of the file in the error line
    folder: Path | None = None         # the package folder (default: the target's)

    @property
    def package_dir(self) -> Path:
        return self.folder or self.target.parent


@dataclass(frozen=True)
class Case:
    id: str
    cls: str
    reads: str
    build: Callable[[Work], Built]


CASES: list[Case] = []


def case(cls: str, reads: str, *, name: str | None = None):
    assert cls in CLASSES and reads in READS, (cls, reads)

    def register(fn):
        CASES.append(Case(f"{cls}-{name or fn.__name__}", cls, reads, fn))
        return fn
    return register


def variants(cls: str, reads: str, table: dict[str, Callable[[Work], Built]]) -> None:
    for key, fn in table.items():
        CASES.append(Case(f"{cls}-{key}", cls, reads, fn))


# --- the workspace ------------------------------------------------------------------------------

@dataclass
class Work:
    """``root/pkg`` holds the package, ``root/host`` a host file the package must never reach."""

    root: Path
    marker: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.pkg = self.root / "pkg"
        self.pkg.mkdir(parents=True)
        host = self.root / "host"
        host.mkdir()
        self.marker = b"HOST-SECRET-" + os.urandom(8).hex().encode()
        self.host_file = host / "secret.txt"
        # long enough to be a disk's worth of sectors, every sector carrying the marker
        self.host_file.write_bytes((self.marker + b"\n").ljust(512, b"#") * 2048)

    # descriptor text edits
    @staticmethod
    def sub(data: bytes, old: bytes, new: bytes, count: int = 1) -> bytes:
        assert old in data, old
        return data.replace(old, new, count)

    def folder(self, ovf: bytes, files: dict[str, bytes] | None = None, *, name: str = "vm.ovf",
               manifest: bool = False, host: bool = False) -> Built:
        files = dict(files if files is not None else {"input.vmdk": BASE_VMDK})
        for fname, data in files.items():
            (self.pkg / fname).parent.mkdir(parents=True, exist_ok=True)
            (self.pkg / fname).write_bytes(data)
        (self.pkg / name).write_bytes(ovf)
        if manifest:
            (self.pkg / (name.rsplit(".", 1)[0] + ".mf")).write_bytes(sha256_manifest({name: ovf, **files}))
        return Built(self.pkg / name, "ovf", host=host, names=(str(self.pkg),))

    def ova(self, members: list[tuple[str, bytes]], *, name: str = "vm.ova", member: str | None = "input.vmdk",
            host: bool = False, fmt=tarfile.USTAR_FORMAT) -> Built:
        path = self.pkg / name
        path.write_bytes(tar_bytes(members, fmt=fmt))
        return Built(path, "ova", member=member, host=host)

    def ova_raw(self, data: bytes, *, name: str = "vm.ova", member: str | None = "input.vmdk",
                host: bool = False) -> Built:
        path = self.pkg / name
        path.write_bytes(data)
        return Built(path, "ova", member=member, host=host)

    def disk(self, data: bytes, name: str = "disk.img", *, host: bool = False) -> Built:
        path = self.pkg / name
        path.write_bytes(data)
        return Built(path, "disk", host=host)


def sha256_manifest(files: dict[str, bytes]) -> bytes:
    return b"".join(f"SHA256({n})= {hashlib.sha256(d).hexdigest()}\n".encode() for n, d in files.items())


def tar_bytes(members: list[tuple[str, bytes]], *, fmt=tarfile.USTAR_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def base_members(ovf: bytes = BASE_OVF, disk: bytes = BASE_VMDK, *, manifest: bool = True,
                 name: str = "vm") -> list[tuple[str, bytes]]:
    members = [(f"{name}.ovf", ovf), ("input.vmdk", disk)]
    if manifest:
        members.insert(1, (f"{name}.mf", sha256_manifest(dict(members))))
    return members


# --- the commands that read each kind of input --------------------------------------------------
# (command id, argv template). {target}: the path the case built; {dir}: its folder; {member}:
# X.ova:MEMBER; {out}: an empty folder that must still be empty afterwards.

TARGETS = ("dmtf", "vmware", "virtualbox", "xen", "kvm")
DESCRIPTOR_READERS = [
    ("inspect", ["inspect", "{target}"]),
    ("inspect-json", ["inspect", "--json", "{target}"]),
    ("validate", ["validate", "{target}"]),
    ("validate-descriptor-only", ["validate", "--descriptor-only", "{target}"]),
    ("check-kvm", ["check", "{target}", "--target", "kvm"]),
    ("check-vmware", ["check", "{target}", "--target", "vmware"]),
    *[(f"convert-{t}", ["convert", "{target}", "--to", t, "-o", "{out}/converted"]) for t in TARGETS],
    ("env", ["env", "{target}", "-o", "{out}/seed.iso"]),
]
CONTENT_READERS = [
    ("validate", ["validate", "{target}"]),
    ("check-kvm", ["check", "{target}", "--target", "kvm"]),
    *[(f"convert-{t}", ["convert", "{target}", "--to", t, "-o", "{out}/converted"]) for t in TARGETS],
    ("convert-vmware-ova", ["convert", "{target}", "--to", "vmware", "--ova", "-o", "{out}/x.ova"]),
]
# The cloud targets (no upload; guest inspection and repair on, as by default: hostile input must be
# refused before either). Their disks are converted from inside the package by the same reader as every
# target's, their documents are their own: every cloud command runs on every case that reaches the
# package's content, container or images; a case that damages only the descriptor is refused by the
# loading every convert shares (conversion.load/prepare), already run by the six other convert
# commands, so each such case runs one cloud command, the six in turn (see cloud_commands).
CLOUD_TARGETS = ("openstack", "gce", "hyperv", "proxmox", "aws", "azure")
CLOUD_CONVERTERS = [(f"convert-{t}", ["convert", "{target}", "--to", t, "-o", "{out}/converted"])
                    for t in CLOUD_TARGETS]
PACK = ("pack", ["pack", "{dir}", "-o", "{out}/x.ova"])
UNPACK = ("unpack", ["unpack", "{target}", "-o", "{out}/unpacked"])
UNPACK_VERIFY = ("unpack-verify-only", ["unpack", "--verify-only", "{target}"])
GUEST = ("guest", ["guest", "{target}"])
DISK_READERS = [
    ("disk-info", ["disk", "info", "{image}"]),
    ("disk-check", ["disk", "check", "{image}"]),
    ("disk-convert-qcow2", ["disk", "convert", "{image}", "-o", "{out}/x.qcow2", "-O", "qcow2"]),
    ("disk-convert-vmdk", ["disk", "convert", "{image}", "-o", "{out}/x.vmdk", "--target", "vmware"]),
]


def commands_for(c: Case, built: Built) -> list[tuple[str, list[str]]]:
    """Every command that reads what this case damaged, in the form it was built."""
    if built.form == "disk":
        return [*DISK_READERS, GUEST]
    out: list[tuple[str, list[str]]] = []
    if c.reads in ("descriptor", "container"):
        out += DESCRIPTOR_READERS
    else:
        out += CONTENT_READERS
    out += cloud_commands(c)
    if built.form == "ovf":
        out.append(PACK)
    else:
        if c.reads in ("container", "content"):  # unpack reads the archive and its manifest
            out += [UNPACK, UNPACK_VERIFY]
        if built.member and c.reads in ("container", "image"):
            out += DISK_READERS
        elif built.member and c.reads == "content":  # disk info/check read the image, not the manifest
            out += [cmd for cmd in DISK_READERS if cmd[0].startswith("disk-convert")]
    if c.reads in ("content", "image") or (built.form == "ova" and c.reads == "container"):
        out.append(GUEST)
    return out


def cloud_commands(c: Case) -> list[tuple[str, list[str]]]:
    """The cloud converters this package case runs: all of them unless it damages only the descriptor;
    then one, chosen by the case's place in the table so that each target gets a sixth of those cases."""
    if c.reads != "descriptor":
        return list(CLOUD_CONVERTERS)
    index = next(i for i, other in enumerate(CASES) if other.id == c.id)
    return [CLOUD_CONVERTERS[index % len(CLOUD_CONVERTERS)]]


def expand(argv: list[str], built: Built, out: Path) -> list[str]:
    image = f"{built.target}:{built.member}" if built.form == "ova" and built.member else str(built.target)
    values = {"target": str(built.target), "dir": str(built.package_dir), "out": str(out), "image": image}
    return [a.format(**values) for a in argv]
