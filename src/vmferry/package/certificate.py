"""OVF certificates (``.cert``): a signature over the manifest plus the signer's X.509 certificate.

The file holds a line ``ALGO(package.mf)= hex-signature`` and one or more PEM certificates; the first is
the signer's. The signature is checked with the signer's public key (RSA PKCS#1 v1.5 or ECDSA).
Expired and self-signed certificates are reported as findings.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from vmferry.errors import CertificateError
from vmferry.findings import Finding

# One line, matched line by line (never across lines, so parsing stays linear in the file's size).
_SIG = re.compile(r"(?P<algo>[A-Za-z0-9-]+)[ \t]*\((?P<name>[^()]+)\)[ \t]*=[ \t]*(?P<sig>[0-9a-fA-F]+)")
_ALGOS = ("SHA1", "SHA256", "SHA512")
_BEGIN, _END = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
MAX_CERTIFICATE_BYTES = 1 << 20


def parse_certificate_file(cert_bytes: bytes, cert_name: str) -> tuple[str, str, bytes, list[bytes]]:
    """``(algorithm, manifest name, signature, [PEM blocks])`` of a ``.cert`` file, in one pass over its
    lines; raise :class:`CertificateError` naming the file for anything unreadable."""
    if len(cert_bytes) > MAX_CERTIFICATE_BYTES:
        raise CertificateError(f"certificate file is {len(cert_bytes)} bytes, more than the "
                               f"{MAX_CERTIFICATE_BYTES} allowed", path=cert_name)
    text = cert_bytes.decode("ascii", errors="replace")
    signature_line = None
    pems: list[bytes] = []
    block: list[str] | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line == _BEGIN:
            block = [line]                      # a BEGIN inside a block starts over: never quadratic
        elif block is not None:
            block.append(line)
            if line == _END:
                pems.append(("\n".join(block) + "\n").encode())
                block = None
        elif signature_line is None:
            m = _SIG.fullmatch(line)
            if m:
                signature_line = m
    if signature_line is None:
        raise CertificateError("no 'ALGO(manifest)= signature' line", path=cert_name)
    algo = signature_line.group("algo").upper().replace("-", "")
    if algo not in _ALGOS:
        raise CertificateError(f"unsupported signature digest algorithm {signature_line.group('algo')[:20]!r}",
                               path=cert_name)
    hexsig = signature_line.group("sig")
    if len(hexsig) % 2:
        raise CertificateError(f"the signature has an odd number ({len(hexsig)}) of hex digits", path=cert_name)
    if not pems:
        raise CertificateError("no PEM certificate", path=cert_name)
    return algo, signature_line.group("name").strip(), bytes.fromhex(hexsig), pems


@dataclass
class CertificateReport:
    manifest_name: str
    subject: str
    issuer: str
    not_after: str
    self_signed: bool
    findings: list[Finding]


def verify_certificate(cert_bytes: bytes, cert_name: str, manifest_bytes: bytes, manifest_name: str,
                       now: dt.datetime | None = None) -> CertificateReport:
    """Verify the signature in ``cert_bytes`` over ``manifest_bytes``; raise :class:`CertificateError`
    when it does not verify, report expiry and self-signing as findings."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    algo_name, signed_name, signature, pems = parse_certificate_file(cert_bytes, cert_name)
    if signed_name != manifest_name:
        raise CertificateError(f"signs '{signed_name}', not the manifest '{manifest_name}'", path=cert_name)
    try:
        cert = x509.load_pem_x509_certificate(pems[0])
    except ValueError as exc:
        raise CertificateError(f"certificate cannot be read: {exc}", path=cert_name) from exc
    algo = {"SHA1": hashes.SHA1(), "SHA256": hashes.SHA256(), "SHA512": hashes.SHA512()}[algo_name]
    key = cert.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, manifest_bytes, padding.PKCS1v15(), algo)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, manifest_bytes, ec.ECDSA(algo))
        else:
            raise CertificateError(f"unsupported key type {type(key).__name__}", path=cert_name)
    except InvalidSignature as exc:
        raise CertificateError(f"signature does not verify over {manifest_name}", path=cert_name) from exc
    findings: list[Finding] = []
    now = now or dt.datetime.now(dt.UTC)
    if cert.not_valid_after_utc < now:
        findings.append(Finding("VMF-PKG-021", "warning",
                                f"certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}", cert_name))
    if cert.not_valid_before_utc > now:
        findings.append(Finding("VMF-PKG-021", "warning",
                                f"certificate not valid before {cert.not_valid_before_utc:%Y-%m-%d}", cert_name))
    self_signed = cert.issuer == cert.subject
    if self_signed:
        findings.append(Finding("VMF-PKG-022", "warning", "certificate is self-signed: the signature proves "
                                "integrity, not who signed", cert_name))
    return CertificateReport(manifest_name, cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(),
                             cert.not_valid_after_utc.isoformat(), self_signed, findings)
