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

_SIG = re.compile(r"^\s*(?P<algo>SHA1|SHA256|SHA512)\s*\((?P<name>[^)]+)\)\s*=\s*(?P<sig>[0-9a-fA-F]+)\s*$",
                  re.M | re.I)
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


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

    text = cert_bytes.decode("ascii", errors="replace")
    m = _SIG.search(text)
    if not m:
        raise CertificateError("no 'ALGO(manifest)= signature' line", path=cert_name)
    if m.group("name").strip() != manifest_name:
        raise CertificateError(f"signs '{m.group('name').strip()}', not the manifest '{manifest_name}'",
                               path=cert_name)
    pems = _PEM.findall(cert_bytes)
    if not pems:
        raise CertificateError("no PEM certificate", path=cert_name)
    try:
        cert = x509.load_pem_x509_certificate(pems[0])
    except ValueError as exc:
        raise CertificateError(f"certificate cannot be read: {exc}", path=cert_name) from exc
    algo = {"SHA1": hashes.SHA1(), "SHA256": hashes.SHA256(), "SHA512": hashes.SHA512()}[m.group("algo").upper()]
    signature = bytes.fromhex(m.group("sig"))
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
