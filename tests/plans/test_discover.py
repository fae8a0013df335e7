"""Dependency suggestions from observed connections: a flows CSV and `ss -tn` captures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vmferry.cli.main import main
from vmferry.errors import PlanError
from vmferry.plans import load_app, read_flows_csv, read_ss, suggest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def app():
    from tests.plans.servers import EXAMPLE

    return load_app(EXAMPLE / "app.yaml")


def test_ss_capture_directions(app):
    flows = read_ss(DATA / "ss-app.txt", app, "app")
    # incoming (app listens on 8080): the client is the source; outgoing: the peer's port is the service
    assert (flows[0].src, flows[0].dst, flows[0].port) == ("10.1.1.11", "10.1.2.20", 8080)
    assert (flows[2].src, flows[2].dst, flows[2].port) == ("10.1.3.20", "10.1.3.30", 5432)
    assert ("10.1.2.20", "10.1.9.11", 88) in [(f.src, f.dst, f.port) for f in flows]   # ::ffff: mapped
    assert len(flows) == 10


def test_suggestions_from_ss_and_csv(app):
    flows = (read_ss(DATA / "ss-app.txt", app, "app") + read_ss(DATA / "ss-db.txt", app, "db")
             + read_flows_csv(DATA / "flows.csv"))
    got = [(s.source, s.target, s.target_kind, s.port, s.protocol, s.seen) for s in suggest(app, flows)]
    assert got == [
        ("app", "10.1.9.20", "unknown", 6379, "tcp", 3),
        ("app", "10.1.9.11", "unknown", 88, "tcp", 1),
        ("app", "10.1.9.21", "unknown", 443, "tcp", 1),
        ("db", "ldap", "service", 636, "tcp", 1),
        ("web1", "db", "component", 5432, "tcp", 1),
        ("web2", "db", "component", 5432, "tcp", 1),
    ]


def test_suggest_command_json(app, capsys):
    from tests.plans.servers import EXAMPLE

    code = main(["plan", str(EXAMPLE / "app.yaml"), "--ss", f"app={DATA / 'ss-app.txt'}", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["suggestions"][0]["target"] == "10.1.9.20" and doc["suggestions"][0]["seen"] == 3
    assert "- { from: web1" not in json.dumps(doc)   # only app's capture was given


@pytest.mark.parametrize("text, problem", [
    ("10.1.1.11,10.1.2.20,http,tcp\n", "bad port"),
    ("10.1.1.11,10.1.2.20,80\n", "expected src,dst,port,proto"),
    ("10.1.1.11,nowhere,80,tcp\n", "is not an IP address"),
    ("10.1.1.11,10.1.2.20,80,sctp\n", "tcp or udp"),
])
def test_bad_flows_csv(tmp_path, text, problem):
    path = tmp_path / "flows.csv"
    path.write_text(text)
    with pytest.raises(PlanError, match=problem) as info:
        read_flows_csv(path)
    assert str(path) in str(info.value) and "line 1" in str(info.value)


def test_bad_ss_capture(tmp_path, app):
    path = tmp_path / "ss.txt"
    path.write_text("ESTAB 0 0 10.1.2.20 10.1.9.9:80\n")
    with pytest.raises(PlanError, match="not ADDRESS:PORT"):
        read_ss(path, app, "app")
    with pytest.raises(PlanError, match="unknown component"):
        read_ss(path, app, "nope")
