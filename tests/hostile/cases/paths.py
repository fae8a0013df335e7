"""References and paths: hrefs that leave the package (``..``, absolute, URLs, ``json:``), symlinked
files and sub-folders, FIFOs and devices, missing and short files, chunks."""

from __future__ import annotations

import os

from tests.hostile.kit import BASE_OVF, BASE_VMDK, INPUT_FILES, INPUT_OVF, Work, base_members, variants

HREF = b'ovf:href="input.vmdk"'


def _href(new: str) -> bytes:
    return Work.sub(BASE_OVF, HREF, f'ovf:href="{new}"'.encode())


def _folder_href(href_of, *, host=True, files=None):
    return lambda w: w.folder(_href(href_of(w)), files=files, host=host)


def _ova_href(href_of, *, host=True):
    return lambda w: w.ova(base_members(_href(href_of(w))), host=host)


def _symlinked_disk(w: Work):
    b = w.folder(BASE_OVF, files={}, host=True)
    os.symlink(w.host_file, w.pkg / "input.vmdk")
    return b


def _symlinked_subfolder(w: Work):
    b = w.folder(_href("sub/secret.txt"), files={}, host=True)
    os.symlink(w.host_file.parent, w.pkg / "sub")
    return b


def _symlinked_subfolder_relative(w: Work):
    b = w.folder(_href("disks/secret.txt"), files={}, host=True)
    os.symlink("../host", w.pkg / "disks")
    return b


def _symlink_to_dev_zero(w: Work):
    b = w.folder(BASE_OVF, files={})
    os.symlink("/dev/zero", w.pkg / "input.vmdk")
    return b


def _fifo_disk(w: Work):
    b = w.folder(BASE_OVF, files={})
    os.mkfifo(w.pkg / "input.vmdk")
    return b


def _fifo_ova(w: Work):
    path = w.pkg / "vm.ova"
    os.mkfifo(path)
    from tests.hostile.kit import Built
    return Built(path, "ova", member="input.vmdk")


def _fifo_descriptor_in_folder(w: Work):
    """The folder is given; its only .ovf is a FIFO."""
    os.mkfifo(w.pkg / "vm.ovf")
    from tests.hostile.kit import Built
    return Built(w.pkg, "ovf", names=("vm.ovf",), folder=w.pkg)


def _directory_as_disk(w: Work):
    b = w.folder(BASE_OVF, files={})
    (w.pkg / "input.vmdk").mkdir()
    return b


def _chunked(drop: int | None, *, size_lie: int = 0, ova: bool = False):
    """input.vmdk as 3 chunks (ovf:chunkSize); chunk ``drop`` missing."""
    chunk = 65536
    ovf = Work.sub(BASE_OVF, b'ovf:size="152576"', f'ovf:size="{152576 + size_lie}" ovf:chunkSize="{chunk}"'.encode())
    parts = {f"input.vmdk.{i:09d}": BASE_VMDK[i * chunk:(i + 1) * chunk] for i in range(3)}
    if drop is not None:
        del parts[f"input.vmdk.{drop:09d}"]

    def build(w: Work):
        if ova:
            return w.ova([("vm.ovf", ovf), *parts.items()], member=None)
        return w.folder(ovf, files=parts)
    return build


def _sized(data: bytes, *, ova: bool = False):
    def build(w: Work):
        if ova:
            return w.ova(base_members(BASE_OVF, data, manifest=False))
        return w.folder(BASE_OVF, files={"input.vmdk": data})
    return build


variants("paths", "content", {
    "dotdot-to-host-file": _folder_href(lambda w: "../host/secret.txt"),
    "dotdot-deep-to-host-file": _folder_href(lambda w: "a/b/../../../host/secret.txt"),
    "absolute-host-file": _folder_href(lambda w: str(w.host_file)),
    "absolute-host-file-in-ova": _ova_href(lambda w: str(w.host_file)),
    "dotdot-in-ova": _ova_href(lambda w: "../host/secret.txt"),
    "file-url-host-file": _folder_href(lambda w: f"file://{w.host_file}"),
    "file-url-single-slash": _folder_href(lambda w: f"file:{w.host_file}"),
    "http-url": _folder_href(lambda w: "http://127.0.0.1:9/disk.vmdk", host=False),
    "json-protocol-name": _folder_href(lambda w: f'json:{{"file.filename":"{w.host_file}"}}'),
    "nbd-protocol-name": _folder_href(lambda w: "nbd:127.0.0.1:9", host=False),
    "backslash-dotdot": _folder_href(lambda w: "..\\host\\secret.txt"),
    "home-tilde": _folder_href(lambda w: "~/secret.txt", host=False),
    "empty-href": _folder_href(lambda w: "", host=False),
    "dot-href": _folder_href(lambda w: ".", host=False),
    "trailing-slash-href": _folder_href(lambda w: "input.vmdk/", host=False, files={"input.vmdk": BASE_VMDK}),
    "proc-self-environ": _folder_href(lambda w: "/proc/self/environ", host=False),
    "dev-zero": _folder_href(lambda w: "/dev/zero", host=False),
    "symlinked-disk-to-host": _symlinked_disk,
    "symlinked-subfolder": _symlinked_subfolder,
    "symlinked-subfolder-relative": _symlinked_subfolder_relative,
    "symlink-to-dev-zero": _symlink_to_dev_zero,
    "fifo-disk": _fifo_disk,
    "directory-as-disk": _directory_as_disk,
    "href-is-the-descriptor": lambda w: w.folder(_href("vm.ovf"), files={}),
    "missing-file-folder": lambda w: w.folder(BASE_OVF, files={}),
    "missing-file-ova": lambda w: w.ova([("vm.ovf", BASE_OVF)], member=None),
    "missing-middle-chunk": _chunked(1),
    "missing-last-chunk": _chunked(2),
    "missing-first-chunk-ova": _chunked(0, ova=True),
    "chunks-shorter-than-size": _chunked(None, size_lie=1000),
    "short-disk-folder": _sized(BASE_VMDK[:100_000]),
    "short-disk-ova": _sized(BASE_VMDK[:100_000], ova=True),
    "long-disk-folder": _sized(BASE_VMDK + b"\0" * 4096),
    "empty-disk-ova": _sized(b"", ova=True),
    "file-ref-to-unknown-file": lambda w: w.folder(Work.sub(BASE_OVF, b'ovf:fileRef="file1"',
                                                            b'ovf:fileRef="nofile"')),
    "two-files-one-href-different-sizes": lambda w: w.folder(Work.sub(
        BASE_OVF, b"<ovf:References>",
        b'<ovf:References><ovf:File ovf:href="input.vmdk" ovf:id="file0" ovf:size="12"/>')),
    "iso-href-outside": lambda w: w.folder(Work.sub(INPUT_OVF, b'ovf:href="input.iso"',
                                                    f'ovf:href="{w.host_file}"'.encode()), files=INPUT_FILES,
                                           host=True),
})

variants("paths", "container", {
    "fifo-as-ova": _fifo_ova,
})
variants("paths", "descriptor", {
    "fifo-descriptor-in-folder": _fifo_descriptor_in_folder,
})
