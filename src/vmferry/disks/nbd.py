"""Writing guest bytes into any qemu image format through ``qemu-nbd`` (Debian qemu-utils).

``qemu-img`` cannot read a pipe, so a disk that only exists as a stream (a gzip-compressed or
chunked OVA member) cannot be handed to ``qemu-img convert``. Instead the output image is created
empty, exported read-write by ``qemu-nbd`` on a private Unix socket, and vmferry writes the guest
bytes into it with a minimal NBD client (the protocol's fixed-newstyle handshake with
``NBD_OPT_EXPORT_NAME``, then ``WRITE``/``FLUSH``/``DISC`` requests and simple replies, per the
NBD protocol document). Nothing but the output is written to disk.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import tempfile
import time
from collections.abc import Iterator

from vmferry.errors import DiskError
from vmferry.tools import proc

NBDMAGIC = b"NBDMAGIC"
IHAVEOPT = b"IHAVEOPT"
FLAG_FIXED_NEWSTYLE = 1
FLAG_NO_ZEROES = 2
OPT_EXPORT_NAME = 1
REQUEST_MAGIC = 0x25609513
REPLY_MAGIC = 0x67446698
CMD_WRITE, CMD_DISC, CMD_FLUSH = 1, 2, 3
REQUEST = struct.Struct(">IHHQQI")
REPLY = struct.Struct(">IIQ")


class NbdClient:
    """A blocking NBD client for one export on a Unix socket."""

    def __init__(self, path: str, timeout: float = 120) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.handle = 0
        self.size = self._handshake()

    def _recv(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise DiskError("qemu-nbd closed the connection")
            buf += chunk
        return bytes(buf)

    def _handshake(self) -> int:
        head = self._recv(18)
        if head[:8] != NBDMAGIC or head[8:16] != IHAVEOPT:
            raise DiskError("qemu-nbd did not answer with the NBD newstyle handshake")
        flags, = struct.unpack(">H", head[16:18])
        client = flags & (FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES)
        self.sock.sendall(struct.pack(">I", client) + IHAVEOPT + struct.pack(">II", OPT_EXPORT_NAME, 0))
        size, _tflags = struct.unpack(">QH", self._recv(10))
        if not client & FLAG_NO_ZEROES:
            self._recv(124)
        return size

    def _request(self, cmd: int, offset: int = 0, data: bytes | memoryview = b"", length: int | None = None) -> None:
        self.handle += 1
        length = len(data) if length is None else length
        self.sock.sendall(REQUEST.pack(REQUEST_MAGIC, 0, cmd, self.handle, offset, length))
        if data:
            self.sock.sendall(data)
        if cmd == CMD_DISC:
            return
        magic, error, handle = REPLY.unpack(self._recv(REPLY.size))
        if magic != REPLY_MAGIC or handle != self.handle:
            raise DiskError("qemu-nbd sent an unexpected reply")
        if error:
            raise DiskError(f"qemu-nbd refused a write at {offset}: {os.strerror(error)}")

    def write(self, offset: int, data: bytes | memoryview) -> None:
        if offset + len(data) > self.size:
            raise DiskError(f"write past the end of the output ({offset + len(data)} > {self.size})")
        self._request(CMD_WRITE, offset, data)

    def flush(self) -> None:
        self._request(CMD_FLUSH)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._request(CMD_DISC)
        self.sock.close()


@contextlib.contextmanager
def nbd_writer(path: str, fmt: str) -> Iterator[NbdClient]:
    """Export the existing image ``path`` (qemu format ``fmt``) read-write and yield a client."""
    workdir = tempfile.mkdtemp(prefix="vmferry-nbd-")
    sock = os.path.join(workdir, "nbd.sock")
    pidfile = os.path.join(workdir, "nbd.pid")
    client = None
    try:
        proc.run(["qemu-nbd", "--fork", "--persistent", "--shared=1", f"--socket={sock}",
                  f"--pid-file={pidfile}", "--cache=writeback", f"--format={fmt}", path], timeout=60)
        client = NbdClient(sock)
        yield client
        client.flush()
    finally:
        if client is not None:
            client.close()
        _stop(pidfile)
        with contextlib.suppress(OSError):
            os.unlink(sock)
        with contextlib.suppress(OSError):
            os.unlink(pidfile)
        with contextlib.suppress(OSError):
            os.rmdir(workdir)


def _stop(pidfile: str) -> None:
    """Stop the qemu-nbd this module started (its pid file names it) and wait until it is gone."""
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    for _ in range(400):
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[-1].split()[0] == "Z":
                    return  # exited; its reaper has not collected it yet
        except (FileNotFoundError, ProcessLookupError):
            return
        time.sleep(0.025)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
