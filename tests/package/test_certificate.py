"""Signed packages: a real X.509 certificate and RSA signature made with `cryptography`."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tests.conftest import COT, run_vmferry
from tests.package.helpers import files_of, make_ova

NAMES = ["ubuntu.2.0.ovf", "ubuntu.2.0-disk1.vmdk"]


def _cert(days_valid: int = 365, start_days_ago: int = 1):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vmferry test signer")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=start_days_ago))
            .not_valid_after(now + dt.timedelta(days=days_valid)).sign(key, hashes.SHA256()))
    return key, cert


def _signed_ova(tmp, *, tamper_manifest=False, days_valid=365, start_days_ago=1):
    mf = (COT / "ubuntu.2.0.mf").read_bytes()
    key, cert = _cert(days_valid, start_days_ago)
    sig = key.sign(mf, padding.PKCS1v15(), hashes.SHA256())
    cert_file = (f"SHA256(ubuntu.2.0.mf)= {sig.hex()}\n".encode()
                 + cert.public_bytes(serialization.Encoding.PEM))
    if tamper_manifest:
        mf = mf.replace(b"SHA256", b"SHA256", 1) + b"\n"
    members = files_of(COT, NAMES)
    members = [members[0], ("ubuntu.2.0.mf", mf), ("ubuntu.2.0.cert", cert_file), members[1]]
    return make_ova(tmp / "signed.ova", members)


def test_valid_signature_verifies_and_self_signed_is_reported(tmp_path):
    result = run_vmferry("validate", "--no-schema", _signed_ova(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "VMF-PKG-022" in result.stdout


def test_signature_over_another_manifest_is_exit_2(tmp_path):
    result = run_vmferry("validate", _signed_ova(tmp_path, tamper_manifest=True))
    assert result.returncode == 2
    assert "ubuntu.2.0.cert" in result.stderr and "does not verify" in result.stderr


def test_expired_certificate_is_a_finding(tmp_path):
    result = run_vmferry("validate", "--no-schema", _signed_ova(tmp_path, days_valid=-10, start_days_ago=400))
    assert result.returncode == 0
    assert "VMF-PKG-021" in result.stdout and "expired" in result.stdout
