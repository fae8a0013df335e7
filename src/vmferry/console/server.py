"""The console's HTTP server, run by ``vmferry serve`` beside its workers: uvicorn on its own thread and
event loop (the main thread keeps the workers and their signal handling), on a socket bound before it
starts, so the address it prints is the one it serves."""

from __future__ import annotations

import socket
import threading

from vmferry.console import auth
from vmferry.errors import UsageError

DEFAULT_LISTEN = "127.0.0.1:8470"


def bind(listen: str, *, fallback: bool = False) -> socket.socket:
    """A listening TCP socket on ``listen``; with ``fallback`` a taken port becomes a free one."""
    host, port = auth.parse_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        if fallback and port:
            sock.bind((host, 0))
        else:
            sock.close()
            raise UsageError(f"the console cannot listen on {listen}: {exc.strerror}") from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


class ConsoleServer:
    """uvicorn serving :func:`vmferry.console.app.create_app` on ``sock`` until :meth:`stop`."""

    def __init__(self, app, sock: socket.socket) -> None:
        import uvicorn

        self.sock = sock
        self.url = url_of(sock)
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                                    timeout_graceful_shutdown=2))
        self._thread = threading.Thread(target=self._run, name="vmferry-console", daemon=True)

    def _run(self) -> None:
        import asyncio

        asyncio.run(self._server.serve(sockets=[self.sock]))

    def start(self) -> ConsoleServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self.sock.close()
