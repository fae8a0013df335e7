"""Request signing and the sites file, in process."""

from __future__ import annotations

import pytest

from vmferry.errors import LocatorError
from vmferry.locator.auth import H_SIG, RequestRefused, Verifier, load_sites, sign

from .conftest import EAST_SECRET, WEST_SECRET, write_sites


@pytest.fixture
def sites(tmp_path):
    return load_sites(write_sites(tmp_path))


def test_sites_file_is_read(sites):
    east, west = sites
    assert (east.name, east.key_id, east.secret) == ("east", "east-1", EAST_SECRET.encode())
    assert west.secret == WEST_SECRET.encode() and not west.more_specifics
    assert {e.instance_id for e in east.allowed} == {0, 7}


@pytest.mark.parametrize("text,message", [
    ("not toml [[[", "not valid TOML"), ("x = 1\n", "no [[site]]"),
    ('[[site]]\nname="a"\nsecret="0123456789abcdef"\n', "missing 'key_id'"),
    ('[[site]]\nname="a"\nkey_id="k"\nsecret="short"\n', "at least 16 bytes"),
    ('[[site]]\nname="a"\nkey_id="k"\nsecret="0123456789abcdef"\nprefixes=["10.0.0.1/8"]\n', "invalid EID"),
])
def test_bad_sites_file_names_file_and_problem(tmp_path, text, message):
    path = tmp_path / "sites.toml"
    path.write_text(text)
    with pytest.raises(LocatorError) as err:
        load_sites(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_verify_accepts_once_and_refuses_each_attack(sites):
    now = [1_000_000.0]
    verifier = Verifier(sites, window=60, not_before=0, clock=lambda: now[0])
    body = b'{"eid":"10.1.0.0/16"}'
    headers = sign(EAST_SECRET.encode(), "POST", "/v1/register", "east-1", body, timestamp=now[0])
    assert verifier.verify("POST", "/v1/register", headers, body).name == "east"

    def reason(method, path, hdrs, data):
        with pytest.raises(RequestRefused) as err:
            verifier.verify(method, path, hdrs, data)
        return err.value.reason

    assert reason("POST", "/v1/register", headers, body) == "replayed"
    fresh = sign(EAST_SECRET.encode(), "POST", "/v1/register", "east-1", body, timestamp=now[0])
    assert reason("POST", "/v1/register", fresh, body + b" ") == "forged"  # body changed
    assert reason("POST", "/v1/deregister", fresh, body) == "forged"  # path changed
    assert reason("POST", "/v1/register", {**fresh, H_SIG: "0" * 64}, body) == "forged"
    wrong_key = sign(WEST_SECRET.encode(), "POST", "/v1/register", "east-1", body, timestamp=now[0])
    assert reason("POST", "/v1/register", wrong_key, body) == "forged"
    unknown = sign(EAST_SECRET.encode(), "POST", "/v1/register", "nobody", body, timestamp=now[0])
    assert reason("POST", "/v1/register", unknown, body) == "unknown_key"
    old = sign(EAST_SECRET.encode(), "POST", "/v1/register", "east-1", body, timestamp=now[0] - 61)
    assert reason("POST", "/v1/register", old, body) == "stale"
    assert reason("POST", "/v1/register", {}, body) == "missing"
    # the forged attempts did not burn the nonce: the genuine request still passes once
    assert verifier.verify("POST", "/v1/register", fresh, body).name == "east"


def test_requests_signed_before_start_are_stale(sites):
    verifier = Verifier(sites, window=300, not_before=2000.0, clock=lambda: 2001.0)
    body = b"{}"
    headers = sign(EAST_SECRET.encode(), "POST", "/v1/refresh", "east-1", body, timestamp=1999.0)
    with pytest.raises(RequestRefused) as err:
        verifier.verify("POST", "/v1/refresh", headers, body)
    assert err.value.reason == "stale"
