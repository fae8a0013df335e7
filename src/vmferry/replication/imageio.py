"""Reading and writing the guest-visible bytes of a qcow2 layer chain (or any image qemu reads).

An image is named by a :class:`~vmferry.tools.qemu_img.ImageSpec` whose backing chain vmferry builds
from its own records (never from the header), exported by ``qemu-nbd`` started through systemd socket
activation by Debian's ``python3-libnbd``: no listening socket, no port, no temporary file, and the
server ends with the handle. Writes go into the top layer only (qcow2 copy-on-write keeps the layers
below unchanged).

Block hashing (:func:`block_hashes`) is the one shared notion of "what a disk holds": SHA-256 of each
``block_size`` bytes of the virtual disk, the last block padded by nothing (it is hashed as it is).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator

from vmferry.errors import ReplicationError
from vmferry.tools import debian_binding
from vmferry.tools.qemu_img import ImageSpec

BLOCK_SIZE = 64 * 1024          # the qcow2 cluster size and QEMU's default dirty-bitmap granularity
IO_CHUNK = 4 * 1024 * 1024      # one NBD request (qemu-nbd takes up to 32 MiB)


def libnbd():
    """The ``nbd`` module (Debian's ``python3-libnbd``, loaded into the virtualenv when need be)."""
    return debian_binding.load("nbd", "libnbdmod", package="python3-libnbd", error=ReplicationError)


class Image:
    """An open image: ``size``, ``pread``, ``pwrite``, ``flush``."""

    def __init__(self, handle, spec: ImageSpec, writable: bool) -> None:
        self._h = handle
        self.spec = spec
        self.writable = writable
        self.size = handle.get_size()

    def _fail(self, what: str, exc: Exception) -> ReplicationError:
        return ReplicationError(f"{what} failed: {exc}", path=self.spec.path)

    def pread(self, length: int, offset: int) -> bytes:
        out = bytearray()
        try:
            while length > 0:
                n = min(length, IO_CHUNK)
                out += self._h.pread(n, offset)
                offset += n
                length -= n
        except Exception as exc:  # nbd.Error is the binding's own class
            raise self._fail("reading", exc) from exc
        return bytes(out)

    def pwrite(self, data: bytes, offset: int) -> None:
        if not self.writable:
            raise ReplicationError("the image is open read-only", path=self.spec.path)
        if offset < 0 or offset + len(data) > self.size:
            raise ReplicationError(f"a write of {len(data)} bytes at {offset} is outside the disk "
                                   f"({self.size} bytes)", path=self.spec.path)
        view = memoryview(data)
        try:
            for start in range(0, len(view), IO_CHUNK):
                self._h.pwrite(view[start:start + IO_CHUNK], offset + start)
        except Exception as exc:
            raise self._fail("writing", exc) from exc

    def flush(self) -> None:
        try:
            self._h.flush()
        except Exception as exc:
            raise self._fail("flushing", exc) from exc


@contextlib.contextmanager
def open_image(spec: ImageSpec, *, writable: bool = False) -> Iterator[Image]:
    """The image ``spec`` exported by a private ``qemu-nbd``; writes are flushed before it is closed."""
    nbd = libnbd()
    handle = nbd.NBD()
    argv = ["qemu-nbd", "--cache=writeback", "--discard=unmap"]
    if not writable:
        argv.append("--read-only")
    argv += spec.argv()
    try:
        handle.connect_systemd_socket_activation(argv)
    except Exception as exc:
        del handle
        raise ReplicationError(f"qemu-nbd cannot export the image: {exc}", path=spec.path) from exc
    image = Image(handle, spec, writable)
    try:
        yield image
        if writable:
            image.flush()
    finally:
        with contextlib.suppress(Exception):
            handle.shutdown()
        del image, handle   # the binding reaps qemu-nbd when the handle goes


def block_hash(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


HASH_READ = 1024 * 1024   # one read of the hashing pipeline
HASH_THREADS = 8          # reads in flight: qemu-nbd serves them concurrently (a compressed VMDK inflates
                          # grains in parallel), and hashlib releases the GIL while it hashes


def block_hashes(image: Image, block_size: int = BLOCK_SIZE, *,
                 progress: Callable[[int], None] | None = None) -> list[bytes]:
    """The SHA-256 of every ``block_size`` bytes of the image's virtual disk, in order (read and hashed
    ``HASH_THREADS`` requests at a time; about 3x faster than one at a time on a compressed VMDK)."""
    from concurrent.futures import ThreadPoolExecutor

    per_read = max(block_size, (HASH_READ // block_size) * block_size)

    def one(offset: int) -> list[bytes]:
        data = image.pread(min(per_read, image.size - offset), offset)
        return [block_hash(data[start:start + block_size]) for start in range(0, len(data), block_size)]

    out: list[bytes] = []
    with ThreadPoolExecutor(HASH_THREADS) as pool:
        offsets = range(0, image.size, per_read)
        for offset, hashes in zip(offsets, pool.map(one, offsets), strict=True):
            out += hashes
            if progress is not None:
                progress(min(image.size, offset + per_read))
    return out


def map_digest(hashes: list[bytes] | bytes, size: int, block_size: int) -> str:
    """The digest of a whole disk from its block hashes (size and block size included): a list of them,
    or the hashes one after the other as a ``.map`` file holds them (the same digest)."""
    h = hashlib.sha256()
    h.update(size.to_bytes(8, "big") + block_size.to_bytes(8, "big"))
    h.update(hashes if isinstance(hashes, bytes | bytearray) else b"".join(hashes))   # one update, not one per block
    return "sha256:" + h.hexdigest()


LAYER_DIGEST = "sha256-64k:"   # SHA-256 over the SHA-256 of each 64 KiB of the file, in order
LAYER_PIECE = 64 * 1024


def layer_digest(path: str | os.PathLike, known: Callable[[int], bytes | None] | None = None) -> str:
    """The digest of a layer file as a whole: SHA-256 over the SHA-256 of each ``LAYER_PIECE`` bytes of
    the file in order (the last piece as long as the file leaves it). ``known(index)`` may give a
    piece's SHA-256 without the piece being read (the seal knows the hashes of the data clusters the
    copy wrote); every other piece is read here."""
    return pieces_digest(layer_pieces(path, known))


def pieces_digest(pieces: list[bytes]) -> str:
    """:func:`layer_digest` of a file whose pieces have the SHA-256 ``pieces``."""
    return LAYER_DIGEST + hashlib.sha256(b"".join(pieces)).hexdigest()


def layer_pieces(path: str | os.PathLike, known: Callable[[int], bytes | None] | None = None) -> list[bytes]:
    """The SHA-256 of each ``LAYER_PIECE`` of the file (see :func:`layer_digest`)."""
    pieces = []
    try:
        with open(path, "rb") as fh:
            fd = fh.fileno()
            count = -(-os.fstat(fd).st_size // LAYER_PIECE)
            index = 0
            while index < count:
                digest = known(index) if known is not None else None
                if digest is not None:
                    pieces.append(digest)
                    index += 1
                    continue
                run = 1     # the pieces to read: up to the next known one, at most 1 MiB at a time
                while index + run < count and run < 16 and (known is None or known(index + run) is None):
                    run += 1
                data = memoryview(os.pread(fd, run * LAYER_PIECE, index * LAYER_PIECE))
                pieces += [hashlib.sha256(data[at:at + LAYER_PIECE]).digest()
                           for at in range(0, len(data), LAYER_PIECE)]
                index += run
    except OSError as exc:
        raise ReplicationError(f"cannot read: {exc.strerror}", path=path) from exc
    if len(pieces) != count:
        raise ReplicationError("the layer file changed while it was read", path=path)
    return pieces


def digest_matches(path: str | os.PathLike, recorded: str) -> bool:
    """Whether the file at ``path`` has the digest ``recorded`` (either kind: :func:`layer_digest` or
    :func:`file_digest`)."""
    if recorded.startswith(LAYER_DIGEST):
        return layer_digest(path) == recorded
    return file_digest(path) == recorded


def file_digest(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    except OSError as exc:
        raise ReplicationError(f"cannot read: {exc.strerror}", path=path) from exc
    return "sha256:" + h.hexdigest()
