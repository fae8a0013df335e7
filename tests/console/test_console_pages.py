"""The console's pages and guards over real protection records (the library's Store), without Temporal:
the overview's RPO colours and last tests, the application page, the operator token on every write (and
on reads when the console listens beyond loopback), the token file."""

from __future__ import annotations

import os
import re
import stat
from datetime import UTC, datetime

import pytest

from tests.console.records import RPO, fleet, record
from vmferry.console import auth
from vmferry.console.app import ConsoleState, create_app
from vmferry.console.cache import CachedStore
from vmferry.replication.store import Store

TOKEN = "operator-token-0123456789"


@pytest.fixture
def console(tmp_path):
    from starlette.testclient import TestClient

    fleet(Store(tmp_path), 30)
    return TestClient(create_app(ConsoleState(tmp_path, None, TOKEN))), tmp_path


def _cells(html: str) -> dict[str, str]:
    return dict(re.findall(r'<tr data-app="([^"]+)">.*?data-rpo="(\w+)"', html, re.S))


def test_overview_rows_rpo_colours_and_last_tests(console):
    client, _ = console
    res = client.get("/")
    assert res.status_code == 200 and float(res.headers["server-timing"].split("dur=")[1]) > 0
    colours = _cells(res.text)
    assert len(colours) == 30
    assert colours["app000"] == "green" and colours["app009"] == "amber" and colours["app024"] == "red"
    assert colours["app019"] == "amber" and list(colours.values()).count("red") == 1
    row = res.text.split('<tr data-app="app005">')[1].split("</tr>")[0]
    assert "failed" in row and "RTO 42 s" in row                     # app005: its last test failed
    row = res.text.split('<tr data-app="app003">')[1].split("</tr>")[0]
    assert "never" in row                                             # app003: never tested
    row = res.text.split('<tr data-app="app017">')[1].split("</tr>")[0]
    assert "app017-vm2: <span class=\"ready not-ready\">not-ready</span>" in row
    assert "VMF-GUEST-012" in row and "dc1 → dr" in row


def test_application_page(console):
    client, _ = console
    res = client.get("/apps/app001")
    assert res.status_code == 200
    assert res.text.count('class="pt ') == 7 + 2                      # 7 points on the timeline (+ legend)
    assert res.text.count('class="bar"') == 7                         # one throughput bar per point
    assert "app001-vm1" in res.text and "8.0 GiB" in res.text
    assert 'id="confirm-test"' in res.text and 'name="confirm_name"' in res.text
    assert "/apps/app001.yaml" in res.text                             # no manifest: the plan says why
    missing = client.get("/apps/nope")
    assert missing.status_code == 404 and "not protected" in missing.text


def test_writes_need_the_token_and_change_nothing(console):
    client, root = console
    before = {p: os.stat(p).st_mtime_ns for p in (root / "groups").iterdir()}
    res = client.post("/apps/app001/test", data={"confirm": "yes"})
    assert res.status_code == 401 and "operator token" in res.text
    res = client.post("/apps/app001/test", data={"confirm": "yes"}, headers={"Authorization": "Bearer wrong-token"})
    assert res.status_code == 403
    res = client.post("/apps/app001/failover", data={"confirm_name": "app001"})
    assert res.status_code == 401
    res = client.post("/runs/x/resume", data={"gate": "g"}, cookies={auth.COOKIE: "nope"})
    assert res.status_code == 403
    res = client.post("/apps/app001/test", data={"confirm": "yes"},
                      headers={"Authorization": f"Bearer {TOKEN}", "Origin": "http://evil.example"})
    assert res.status_code == 403 and "another site" in res.text
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    res = client.post("/apps/app001/test", data={}, headers=bearer)
    assert res.status_code == 400 and "confirmed" in res.text
    res = client.post("/apps/app001/failover", data={"confirm_name": "app00"}, headers=bearer)
    assert res.status_code == 400 and "typing the application" in res.text
    assert {p: os.stat(p).st_mtime_ns for p in (root / "groups").iterdir()} == before


def test_login_cookie_and_reads_beyond_loopback(tmp_path):
    from starlette.testclient import TestClient

    record(Store(tmp_path), "shop", age=10, now=datetime.now(UTC))
    client = TestClient(create_app(ConsoleState(tmp_path, None, TOKEN, public=True)))
    assert client.get("/").status_code == 401
    assert client.get("/apps/shop").status_code == 401
    assert client.get("/static/console.css").status_code == 200
    assert client.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    res = client.post("/login", data={"token": "wrong", "back": "/"}, follow_redirects=False)
    assert res.status_code == 403
    res = client.post("/login", data={"token": TOKEN, "back": "//evil.example/x"}, follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == "/"
    assert "httponly" in res.headers["set-cookie"].lower() and "samesite=strict" in res.headers["set-cookie"].lower()
    page = client.get("/")
    assert page.status_code == 200 and 'data-app="shop"' in page.text and "sign out" in page.text


def test_operator_token_file(tmp_path, monkeypatch):
    monkeypatch.delenv(auth.TOKEN_ENV, raising=False)
    token, where = auth.operator_token(tmp_path / "state")
    path = tmp_path / "state" / auth.TOKEN_FILE
    assert where == str(path) and len(token) >= 24 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert auth.operator_token(tmp_path / "state") == (token, where)
    assert [p.name for p in (tmp_path / "state").iterdir()] == [auth.TOKEN_FILE]     # no temp file left
    monkeypatch.setenv(auth.TOKEN_ENV, "from-the-environment-1234")
    assert auth.operator_token(tmp_path / "state") == ("from-the-environment-1234", f"${auth.TOKEN_ENV}")
    monkeypatch.setenv(auth.TOKEN_ENV, "short")
    with pytest.raises(Exception, match="too short"):
        auth.operator_token(tmp_path / "state")
    assert auth.is_loopback("127.0.0.1") and auth.is_loopback("::1") and not auth.is_loopback("0.0.0.0")
    assert auth.parse_listen("[::1]:8470") == ("::1", 8470)
    with pytest.raises(Exception, match="HOST:PORT"):
        auth.parse_listen("8470")


def test_cached_store_rereads_a_changed_record(tmp_path):
    now = datetime.now(UTC)
    record(Store(tmp_path), "shop", age=10, now=now)
    cached = CachedStore(tmp_path)
    first = cached.load("shop")
    assert cached.load("shop") is first
    record(Store(tmp_path), "shop", age=2 * RPO, now=now)
    second = cached.load("shop")
    assert second is not first and second.newest.taken_at < first.newest.taken_at
