"""The console's operator token: who may start runs (and, when the console listens beyond loopback, read).

The token is ``$VMFERRY_CONSOLE_TOKEN`` when set, else the text of ``<state>/console.token``, made on the
first start (random, mode 0600, written under a temporary name and renamed). A request proves it with
``Authorization: Bearer <token>``, or with the ``vmferry_token`` cookie the login form sets (HttpOnly,
SameSite=Strict, so another site's page cannot post with it).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import tempfile
from pathlib import Path

from vmferry.errors import UsageError

TOKEN_ENV = "VMFERRY_CONSOLE_TOKEN"
TOKEN_FILE = "console.token"
COOKIE = "vmferry_token"


def operator_token(state_dir: str | os.PathLike) -> tuple[str, str]:
    """The operator token and where it comes from (the variable's name or the file's path)."""
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        if len(env) < 16:
            raise UsageError(f"${TOKEN_ENV} is too short to be a token (at least 16 characters)")
        return env, f"${TOKEN_ENV}"
    path = Path(state_dir) / TOKEN_FILE
    try:
        text = path.read_text(encoding="utf-8").strip()
        if len(text) >= 16:
            return text, str(path)
        raise UsageError(f"{path}: the console token is too short (at least 16 characters)")
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    fd, tmp = tempfile.mkstemp(prefix=f".{TOKEN_FILE}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(token + "\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return token, str(path)


def token_matches(given: str | None, token: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


def request_token(authorization: str | None, cookie: str | None) -> str | None:
    """The token a request carries: the bearer token, else the cookie."""
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return cookie


def is_loopback(host: str) -> bool:
    """True when ``host`` is only reachable from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as the console's address; port 0 picks a free one."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise UsageError(f"the console's address is HOST:PORT, not {listen!r}")
    return host.strip("[]"), int(port)
