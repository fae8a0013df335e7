"""Certificates: read subject alternative names from a PEM file, tell which ones a move breaks."""

from __future__ import annotations

import os

from vmferry.errors import PlanError


def read_sans(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """DNS names and IP addresses of the first certificate in a PEM file."""
    from cryptography import x509

    try:
        data = open(path, "rb").read()  # noqa: SIM115 - short read
    except OSError as exc:
        raise PlanError(f"cannot read certificate: {exc.strerror}", path=path) from exc
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise PlanError(f"not a PEM certificate: {exc}", path=path) from exc
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    names = [n.lower() for n in ext.get_values_for_type(x509.DNSName)]
    ips = [a.compressed for a in ext.get_values_for_type(x509.IPAddress)]
    return names, ips


def name_matches(pattern: str, name: str) -> bool:
    """RFC 6125 matching: exact, or a left-most ``*`` label standing for exactly one label."""
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern == name:
        return True
    if pattern.startswith("*."):
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:]
    return False
