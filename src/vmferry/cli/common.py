"""Helpers shared by the sub-commands: JSON output, human sizes, finding lists."""

from __future__ import annotations

import json
import sys


def emit_json(doc, *, stream=None) -> None:
    """One JSON document on one line (several paths give one document per line)."""
    stream = stream or sys.stdout
    stream.write(json.dumps(doc, separators=(",", ":"), sort_keys=False, default=str) + "\n")


def human_bytes(n: int | None) -> str:
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def print_findings(findings, *, stream=None, indent: str = "  ") -> None:
    stream = stream or sys.stdout
    for f in findings:
        stream.write(f"{indent}{f}\n")
        if f.fix:
            stream.write(f"{indent}        fix: {f.fix}\n")
