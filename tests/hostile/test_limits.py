"""The limits of docs/limits.md: every real sample stays within them, the parsers are linear (a large
hostile input is refused or read in time proportional to its size), and each limit is reported as one
line naming the file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from vmferry.errors import CertificateError, LimitExceeded
from vmferry.ovf import Envelope, limits
from vmferry.package.certificate import parse_certificate_file

DATA = Path(__file__).parent.parent / "data"
SAMPLES = sorted(p for p in DATA.glob("**/*.ovf") if p.name != "ersatz_ovf_3.0.ovf")
SHARED = sorted(p for p in Path("/work/shared/samples").glob("**/*.ovf") if p.name != "ersatz_ovf_3.0.ovf")


@pytest.mark.parametrize("path", SAMPLES + SHARED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_real_sample_is_within_the_limits(path):
    Envelope.from_bytes(path.read_bytes(), path=path)


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@pytest.mark.parametrize("body", [b"\n" * 300_000, b"-----BEGIN CERTIFICATE-----\n" * 20_000,
                                  b"SHA256(vm.mf)=" + b" " * 200_000 + b"zz\n", b"(" * 200_000 + b"\n"])
def test_certificate_parsing_is_linear(body):
    """Quadratic before (a regex over the whole text, a lazy match per BEGIN line): minutes for these.
    Now each line is looked at once: well under a second."""
    def parse():
        with pytest.raises(CertificateError):
            parse_certificate_file(body, "vm.cert")

    assert _seconds(parse) < 1.0


def test_odd_length_hex_signature_is_a_certificate_error_not_a_crash():
    with pytest.raises(CertificateError, match="odd number"):
        parse_certificate_file(b"SHA256(vm.mf)= abc\n-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n",
                               "vm.cert")


@pytest.mark.parametrize(("text", "ok"), [("1", True), ("${size}", True), ("TBD", True), ("", True),
                                          ("1e3", True), ("-1", False), ("NaN", False), ("inf", False),
                                          ("1e400", False), ("1.5", False), ("9" * 41, False),
                                          ("9" * 5000, False), (str(1 << 63), False)])
def test_numbers_in_range_or_one_line_error(text, ok):
    if ok:
        limits.number(text, "x", "vm.ovf")
    else:
        with pytest.raises(LimitExceeded) as exc:
            limits.number(text, "x", "vm.ovf")
        assert str(exc.value).startswith("vm.ovf: ") and "\n" not in str(exc.value)


@pytest.mark.parametrize(("units", "mult"), [("byte * 2^30", 1 << 30), ("byte*2^20", 1 << 20), ("byte * 1024", 1024),
                                              ("hertz * 10^6", None), ("byte * furlong", None)])
def test_units_understood(units, mult):
    assert limits.byte_units(units, "u", "vm.ovf") == mult


@pytest.mark.parametrize("units", ["byte * 2^80", " * ".join(["byte"] + ["2^60"] * 2), "byte * 2^-1", "byte * 0",
                                   "byte * " + "9" * 50, "byte * 2^9999999", " * ".join(["byte"] + ["2"] * 20)])
def test_units_out_of_range(units):
    with pytest.raises(LimitExceeded):
        limits.byte_units(units, "u", "vm.ovf")


def test_units_module_never_builds_huge_numbers():
    from vmferry.ovf.units import parse_byte_units, parse_int

    start = time.perf_counter()
    assert parse_byte_units(" * ".join(["byte"] + ["2^80"] * 1000)) is None
    assert parse_byte_units("byte * " + "9" * 5000) is None
    assert parse_int("9" * 5000) is None
    assert time.perf_counter() - start < 0.5
