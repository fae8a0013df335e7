"""Manifests and certificates: tampered files, decoys, duplicate lines, unknown algorithms, absent files,
odd hex, huge or degenerate certificates, bad signatures."""

from __future__ import annotations

import datetime as dt
import hashlib
from functools import lru_cache

from tests.hostile.kit import BASE_OVF, BASE_VMDK, Work, sha256_manifest, variants

FLIPPED = BASE_VMDK[:70_000] + bytes([BASE_VMDK[70_000] ^ 0x40]) + BASE_VMDK[70_001:]


def _sha(data: bytes, algo: str = "sha256") -> str:
    return hashlib.new(algo, data).hexdigest()


def _pkg(mf: bytes | None, *, disk: bytes = BASE_VMDK, ovf: bytes = BASE_OVF, extra=(), cert: bytes | None = None,
         decoy_first: bytes | None = None):
    """(OVA builder, folder builder) of the VMware sample with this manifest (and extras)."""
    def ova(w: Work):
        members = [("vm.ovf", ovf)]
        if decoy_first is not None:
            members.insert(0, ("00.mf", decoy_first))
        if mf is not None:
            members.append(("vm.mf", mf))
        if cert is not None:
            members.append(("vm.cert", cert))
        members += [("input.vmdk", disk), *extra]
        return w.ova(members)

    def folder(w: Work):
        files = {"input.vmdk": disk, **dict(extra)}
        if mf is not None:
            files["vm.mf"] = mf
        if cert is not None:
            files["vm.cert"] = cert
        if decoy_first is not None:
            files["00.mf"] = decoy_first
        return w.folder(ovf, files)
    return ova, folder


def _both(table: dict, key: str, pair) -> None:
    table[f"{key}-ova"], table[f"{key}-folder"] = pair


GOOD_MF = sha256_manifest({"vm.ovf": BASE_OVF, "input.vmdk": BASE_VMDK})
LINE_OVF = f"SHA256(vm.ovf)= {_sha(BASE_OVF)}\n".encode()
LINE_DISK = f"SHA256(input.vmdk)= {_sha(BASE_VMDK)}\n".encode()
LINE_FLIPPED = f"SHA256(input.vmdk)= {_sha(FLIPPED)}\n".encode()

CASES: dict = {}
_both(CASES, "flipped-disk-byte", _pkg(GOOD_MF, disk=FLIPPED))
_both(CASES, "descriptor-digest-wrong", _pkg(LINE_OVF.replace(b"= ", b"= 0", 1)[:-2] + b"\n" + LINE_DISK))
_both(CASES, "decoy-manifest-first", _pkg(GOOD_MF, disk=FLIPPED, decoy_first=LINE_OVF + LINE_FLIPPED))
_both(CASES, "duplicate-line-last-wins-good", _pkg(LINE_OVF + LINE_DISK + LINE_FLIPPED, disk=FLIPPED))
_both(CASES, "duplicate-line-first-good", _pkg(LINE_OVF + LINE_FLIPPED + LINE_DISK, disk=FLIPPED))
_both(CASES, "duplicate-identical-lines", _pkg(LINE_OVF + LINE_DISK + LINE_DISK))
_both(CASES, "unknown-algorithm", _pkg(LINE_OVF + f"MD5(input.vmdk)= {_sha(BASE_VMDK, 'md5')}\n".encode()))
_both(CASES, "absent-file-listed", _pkg(GOOD_MF + f"SHA256(missing.iso)= {'0' * 64}\n".encode()))
_both(CASES, "odd-length-hex", _pkg(LINE_OVF + f"SHA256(input.vmdk)= {_sha(BASE_VMDK)[:-1]}\n".encode()))
_both(CASES, "sha1-length-under-sha256", _pkg(LINE_OVF + f"SHA256(input.vmdk)= {_sha(BASE_VMDK, 'sha1')}\n".encode()))
_both(CASES, "garbage-line", _pkg(GOOD_MF + b"this is not a manifest line\n"))
_both(CASES, "binary-manifest", _pkg(bytes(range(256)) * 8))
_both(CASES, "manifest-names-traversal", _pkg(GOOD_MF + f"SHA256(../../etc/passwd)= {'0' * 64}\n".encode()))
_both(CASES, "newline-name-in-manifest", _pkg(GOOD_MF + f"SHA256(a\rvmferry: error: forged)= {'0' * 64}\n".encode()))
_both(CASES, "manifest-300000-blank-lines", _pkg(b"\n" * 300_000 + LINE_OVF + LINE_FLIPPED))
_both(CASES, "manifest-20000-absent-files", _pkg(GOOD_MF + b"".join(
    f"SHA256(f{i})= {'0' * 64}\n".encode() for i in range(20_000))))


# --- certificates ---------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _signer():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vmferry hostile signer")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365)).sign(key, hashes.SHA256()))
    return key, cert


def _pem() -> bytes:
    from cryptography.hazmat.primitives import serialization

    return _signer()[1].public_bytes(serialization.Encoding.PEM)


def _signature(mf: bytes) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    return _signer()[0].sign(mf, padding.PKCS1v15(), hashes.SHA256()).hex()


def _signed(cert_of, *, mf: bytes = GOOD_MF, signed: bytes | None = None, disk: bytes = BASE_VMDK):
    """Builders whose certificate text is ``cert_of(signature_hex, pem)`` (computed when built) over
    ``signed`` (default: the manifest itself)."""
    def pair():
        return _pkg(mf, disk=disk, cert=cert_of(_signature(signed if signed is not None else mf), _pem()))
    return (lambda w: pair()[0](w)), (lambda w: pair()[1](w))


def _line(sig: str, name: str = "vm.mf") -> bytes:
    return f"SHA256({name})= {sig}\n".encode()


def _flip(sig: str) -> str:
    return sig[:10] + ("0" if sig[10] != "0" else "1") + sig[11:]


_both(CASES, "cert-bad-signature", _signed(lambda s, p: _line(_flip(s)) + p))
_both(CASES, "cert-odd-length-hex", _signed(lambda s, p: _line(s[:-1]) + p))
_both(CASES, "cert-no-signature-line", _signed(lambda s, p: p))
_both(CASES, "cert-signs-another-manifest", _signed(lambda s, p: _line(s, "other.mf") + p))
_both(CASES, "cert-garbage-pem", _signed(lambda s, p: _line(s) + b"-----BEGIN CERTIFICATE-----\nnot base64!\n"
                                         b"-----END CERTIFICATE-----\n"))
_both(CASES, "cert-no-pem", _signed(lambda s, p: _line(s)))
_both(CASES, "cert-300000-blank-lines", _signed(lambda s, p: b"\n" * 300_000 + _line(_flip(s)) + p))
_both(CASES, "cert-20000-begin-lines", _signed(lambda s, p: _line(s) + b"-----BEGIN CERTIFICATE-----\n" * 20_000))
_both(CASES, "cert-20000-begin-then-bad-sig", _signed(lambda s, p: _line(_flip(s))
                                                     + b"-----BEGIN CERTIFICATE-----\n" * 20_000 + p))
_both(CASES, "cert-whitespace-run", _signed(lambda s, p: b"SHA256(vm.mf)=" + b" " * 200_000 + b"zz\n" + p))
_both(CASES, "cert-over-tampered-manifest", _signed(lambda s, p: _line(s) + p, mf=GOOD_MF + b"\n",
                                                        signed=GOOD_MF))
_both(CASES, "cert-without-manifest", _pkg(None, cert=b"SHA256(vm.mf)= 00\n"))
_both(CASES, "cert-unknown-algorithm", _signed(lambda s, p: b"MD5(vm.mf)= " + s.encode() + b"\n" + p))

variants("manifest", "content", CASES)
