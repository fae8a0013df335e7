"""OVF manifests (``.mf``): one ``ALGO(name)= hexdigest`` line per file (DSP0243 §5.1).

SHA1 (OVF 1.x), SHA256 and SHA512 (OVF 2.x) are read; tools that write ``SHA256 (name) = hex`` with
spaces are accepted too. Lines that cannot be read, unknown algorithms and a second line for the same
file become findings (errors); :meth:`vmferry.package.base.Package.verify_integrity` refuses a package
whose manifest has any.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from vmferry.findings import Finding

ALGORITHMS = {"SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}
_LINE = re.compile(r"^\s*(?P<algo>[A-Za-z0-9-]+)\s*\((?P<name>.+)\)\s*=\s*(?P<digest>[0-9a-fA-F]+)\s*$")


@dataclass(frozen=True)
class ManifestEntry:
    algorithm: str   # "SHA1", "SHA256", "SHA512"
    name: str
    digest: str      # lower-case hex
    line: int

    def new_hash(self):
        return hashlib.new(ALGORITHMS[self.algorithm])


@dataclass
class Manifest:
    name: str
    entries: list[ManifestEntry]
    findings: list[Finding]
    duplicates: frozenset[str] = frozenset()   # names listed more than once (only the first is an entry)

    def by_name(self) -> dict[str, ManifestEntry]:
        return {e.name: e for e in self.entries}


def parse_manifest(data: bytes, name: str) -> Manifest:
    entries: list[ManifestEntry] = []
    findings: list[Finding] = []
    seen: dict[str, ManifestEntry] = {}
    dups: set[str] = set()
    text = data.decode("utf-8", errors="replace")
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _LINE.match(line)
        if not m:
            findings.append(Finding("VMF-PKG-010", "error", f"manifest line cannot be read: {line.strip()[:80]!r}",
                                    f"{name} (line {lineno})"))
            continue
        algo = m.group("algo").upper().replace("-", "")
        if algo not in ALGORITHMS:
            findings.append(Finding("VMF-PKG-011", "error", f"unsupported digest algorithm {m.group('algo')}",
                                    f"{name} (line {lineno})"))
            continue
        digest = m.group("digest").lower()
        if len(digest) != hashlib.new(ALGORITHMS[algo]).digest_size * 2:
            findings.append(Finding("VMF-PKG-010", "error", f"{algo} digest of {m.group('name')} has the wrong "
                                    "length", f"{name} (line {lineno})"))
            continue
        entry = ManifestEntry(algo, m.group("name").strip(), digest, lineno)
        earlier = seen.get(entry.name)
        if earlier is not None:
            findings.append(Finding("VMF-PKG-015", "error", f"'{entry.name}' is listed twice (lines "
                                    f"{earlier.line} and {lineno}); which digest holds is unknown",
                                    f"{name} (line {lineno})"))
            dups.add(entry.name)
            continue
        entries.append(entry)
        seen[entry.name] = entry
    return Manifest(name, entries, findings, frozenset(dups))


def format_manifest(digests: list[tuple[str, str]], algorithm: str = "SHA256") -> bytes:
    """Manifest bytes for ``[(name, hexdigest), ...]``."""
    return "".join(f"{algorithm}({name})= {digest}\n" for name, digest in digests).encode()
