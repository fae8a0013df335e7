"""Azure Storage as a site: upload a fixed VHD as the page blob Azure makes disks and images from.

    result = upload_vhd("out/web01.vhd", AzureSettings(container="vhds", connection_string=...))

Azure takes a VHD only as a **page blob** (512-byte pages; a block blob cannot become a disk). The blob
is created at the file's size (a whole number of pages: a fixed VHD is N MiB plus its 512-byte footer),
(its container created when missing), then only the ranges that hold data are sent: holes of the sparse file (``SEEK_DATA``/``SEEK_HOLE``) and
runs of zeros are skipped, since a page never written reads as zeros. Each ``Put Page`` carries at most
4 MiB, aligned to 512 bytes, several in flight at once. Through ``azure-storage-blob`` (``vmferry[azure]``).

Credentials: a connection string (``connection_string`` option or ``AZURE_STORAGE_CONNECTION_STRING``), or
an account URL (``account_url`` / ``AZURE_STORAGE_ACCOUNT_URL``) with a SAS token or account key in
``AZURE_STORAGE_CREDENTIAL``; never anything written in vmferry. Every Azure error becomes a
:class:`~vmferry.errors.TargetError`.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from vmferry.errors import TargetError, UsageError

PAGE = 512
MAX_PUT = 4 << 20          # the Put Page limit
RUN = 64 << 10
ZERO_RUN = bytes(RUN)


@dataclass(frozen=True)
class AzureSettings:
    container: str
    blob_prefix: str = ""
    connection_string: str | None = None
    account_url: str | None = None
    credential: str | None = None
    workers: int = 4

    @classmethod
    def from_options(cls, options: dict) -> AzureSettings:
        container = options.get("container") or os.environ.get("VMFERRY_AZURE_CONTAINER")
        if not container:
            raise UsageError("an Azure upload needs the blob container (container option, or VMFERRY_AZURE_CONTAINER)")
        conn = options.get("connection_string") or os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
        url = options.get("account_url") or os.environ.get("AZURE_STORAGE_ACCOUNT_URL")
        if not conn and not url:
            raise UsageError("an Azure upload needs a storage connection string (AZURE_STORAGE_CONNECTION_STRING) "
                             "or an account URL (AZURE_STORAGE_ACCOUNT_URL)")
        return cls(container, options.get("blob_prefix") or "", conn, url,
                   options.get("credential") or os.environ.get("AZURE_STORAGE_CREDENTIAL"))


def _service(settings: AzureSettings):
    try:
        from azure.storage.blob import BlobServiceClient
    except ImportError as exc:   # pragma: no cover - the extra is installed in the test environment
        raise TargetError("uploading to Azure needs azure-storage-blob (pip install 'vmferry[azure]')") from exc
    if settings.connection_string:
        return BlobServiceClient.from_connection_string(settings.connection_string)
    return BlobServiceClient(settings.account_url, credential=settings.credential)


def data_ranges(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """(offset, length) of the ranges of the file that may hold data (its holes left out), page-aligned."""
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:          # ENXIO: no data after pos
            return
        end = os.lseek(fd, start, os.SEEK_HOLE)
        start -= start % PAGE
        end = min(size, -(-end // PAGE) * PAGE)
        yield start, end - start
        pos = end


def pages_to_send(fd: int, size: int) -> Iterator[tuple[int, bytes]]:
    """(offset, bytes) of every run of non-zero data, at most 4 MiB each, 512-byte aligned."""
    for start, length in data_ranges(fd, size):
        for off in range(start, start + length, MAX_PUT):
            data = os.pread(fd, min(MAX_PUT, start + length - off), off)
            view = memoryview(data)
            run_start = None
            for pos in range(0, len(view), RUN):
                chunk = view[pos:pos + RUN]
                zero = chunk == (ZERO_RUN if len(chunk) == RUN else ZERO_RUN[:len(chunk)])
                if not zero and run_start is None:
                    run_start = pos
                elif zero and run_start is not None:
                    yield off + run_start, bytes(view[run_start:pos])
                    run_start = None
            if run_start is not None:
                yield off + run_start, bytes(view[run_start:])


def upload_vhd(path: str, settings: AzureSettings, *, blob_name: str | None = None) -> dict:
    """Upload the fixed VHD ``path`` as a page blob; {container, blob, url, size, sent, pages}."""
    from azure.core.exceptions import AzureError

    size = os.path.getsize(path)
    if size % PAGE:
        raise TargetError(f"a page blob holds whole 512-byte pages; the file is {size} bytes", path=path)
    name = settings.blob_prefix + (blob_name or os.path.basename(path))
    sent = puts = 0
    try:
        container = _service(settings).get_container_client(settings.container)
        if not container.exists():
            container.create_container()
        blob = container.get_blob_client(name)
        blob.create_page_blob(size)
        with open(path, "rb") as f, ThreadPoolExecutor(settings.workers, "azure-pages") as pool:
            pending: deque = deque()
            for offset, data in pages_to_send(f.fileno(), size):
                pending.append(pool.submit(blob.upload_page, data, offset=offset, length=len(data)))
                sent += len(data)
                puts += 1
                while len(pending) > settings.workers * 2:
                    pending.popleft().result()
            while pending:
                pending.popleft().result()
        props = blob.get_blob_properties()
    except AzureError as exc:
        raise TargetError(f"Azure page blob upload of {os.path.basename(path)} to {settings.container}/{name} "
                          f"failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", path=path) from exc
    if props.size != size:
        raise TargetError(f"the page blob holds {props.size} bytes after the upload, the VHD {size}", path=path)
    return {"container": settings.container, "blob": name, "url": blob.url, "size": size, "sent": sent,
            "puts": puts, "blob_type": getattr(props.blob_type, "value", str(props.blob_type))}
