"""The application's firewall rules as an nftables ruleset, checked with ``nft -c`` and written atomically.

The ruleset declares, flushes and redefines one ``inet`` table, so loading it twice gives the same
state (``nft -f`` is atomic per file). vmferry only writes and checks the file; loading it into a
kernel (``nft -f FILE``) is left to the site's own tooling. ``nft -c`` needs CAP_NET_ADMIN (it reads
the kernel's ruleset cache); it works as root, also in a container with that capability.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from vmferry.errors import PlanError, ToolFailed
from vmferry.tools.proc import run


def render_ruleset(table: str, app: str, rules: list[str]) -> str:
    lines = [f"# vmferry: firewall rules of application {app}", f"table inet {table} {{}}",
             f"flush table inet {table}", f"table inet {table} {{",
             "    chain forward {", "        type filter hook forward priority filter; policy accept;"]
    lines += [f"        {r}" for r in rules]
    lines += ["    }", "}", ""]
    return "\n".join(lines)


def check_ruleset(path: str | os.PathLike) -> None:
    """Run ``nft -c -f`` on a ruleset file; a refusal becomes a PlanError with nft's first message."""
    try:
        run(["nft", "-c", "-f", os.fspath(path)], timeout=30)
    except ToolFailed as exc:
        first = next((ln for ln in exc.stderr.splitlines() if "Error" in ln), exc.stderr.strip()[:200])
        raise PlanError(f"nft -c refused the ruleset: {first}", path=path) from exc


def write_ruleset(path: str | os.PathLike, text: str) -> bool:
    """Check and write ``text`` to ``path`` (temp file + rename). False when it was already there."""
    path = Path(path)
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"cannot read the existing ruleset: {exc}", path=path) from exc
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise PlanError(f"cannot write the ruleset: {exc.strerror}", path=path) from exc
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        check_ruleset(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return True
