"""--apply against real servers on 127.0.0.1: BIND 9 (RFC 2136 + TSIG), HAProxy's runtime API, the
locator service, and an nftables ruleset checked with ``nft -c``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.plans.servers import LOCATOR_SECRET, ZONE, Locator, edit_yaml
from vmferry.cli.main import main
from vmferry.locator.client import LocatorClient
from vmferry.locator.devservers import free_port


def cloud_site(named, haproxy, locator_url: str, ruleset: Path) -> dict:
    """The cloud site re-addressed into 127.20.0.0/16, with its real servers."""
    return {
        "networks": {
            "web-net": {"subnet": "127.20.1.0/24", "gateway": "127.20.1.1", "dns": ["127.20.0.2"]},
            "app-net": {"subnet": "127.20.2.0/24", "gateway": "127.20.2.1", "dns": ["127.20.0.2"]},
            "data": {"subnet": "127.20.3.0/24", "gateway": "127.20.3.1", "mtu": 9000,
                     "pool": "127.20.3.100-127.20.3.199"},
        },
        "in_use": ["127.20.1.10", "127.20.3.100"],
        "services": {"ldap": {"kind": "ldap", "host": "127.20.9.10", "port": 636}},
        "dns": {"server": f"127.0.0.1:{named.port}",
                "tsig": {"name": named.key_name, "algorithm": "hmac-sha256", "secret": named.secret}},
        "load_balancer": {"kind": "haproxy", "runtime": f"unix:{haproxy.socket}", "vips": {"web": "127.20.1.10"}},
        "locator": {"url": locator_url, "key_id": "cloud-1", "secret": LOCATOR_SECRET, "ttl": 30},
        "firewall": {"ruleset": str(ruleset), "table": "vmferry_shop"},
    }


def prepare(example: Path, named, haproxy, locator_url: str) -> tuple[Path, Path]:
    ruleset = example.parent / "cloud.nft"

    def change(doc):
        doc["moves"][0]["readdress"] = [{"from": "10.1.1.0/24", "to": "127.20.1.0/24"},
                                        {"from": "10.1.2.0/24", "to": "127.20.2.0/24"}, {"pool": "data"}]
    edit_yaml(example, change)
    sites = example.parent / "sites.yaml"
    sites.write_text(yaml.safe_dump({"sites": {"cloud": cloud_site(named, haproxy, locator_url, ruleset)}}))
    return sites, ruleset


def dig(named, name: str) -> list[str]:
    out = subprocess.run(["dig", "+yaml", "@127.0.0.1", "-p", str(named.port), name, "A"], capture_output=True,
                         text=True, check=True, timeout=20).stdout
    doc = yaml.safe_load(out)[0]["message"]["response_message_data"]
    return sorted(rr.split()[-1] for rr in doc.get("ANSWER_SECTION", []))


def soa_serial(named) -> int:
    out = subprocess.run(["dig", "+yaml", "@127.0.0.1", "-p", str(named.port), ZONE, "SOA"], capture_output=True,
                         text=True, check=True, timeout=20).stdout
    return int(yaml.safe_load(out)[0]["message"]["response_message_data"]["ANSWER_SECTION"][0].split()[6])


def run_plan(capsys, *args) -> tuple[int, dict]:
    code = main(["plan", *args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_apply_interrupted_resumed_then_noop(example, named, haproxy, tmp_path, capsys):
    locator = Locator(tmp_path / "locator", port=free_port())     # not started yet: the apply fails there
    sites, ruleset = prepare(example, named, haproxy, locator.url)
    state = tmp_path / "state.json"
    args = [str(example), "--from", "dc1", "--to", "cloud", "--sites", str(sites), "--state", str(state)]

    # the dry run lists the steps and changes nothing
    code, dry = run_plan(capsys, *args)
    assert code == 0, dry["risks"]
    kinds = [s["kind"] for s in dry["steps"]]
    assert kinds == ["dns"] * 3 + ["locator"] * 4 + ["lb"] * 2 + ["firewall"]
    assert dig(named, f"www.{ZONE}") == [] and not state.exists() and not ruleset.exists()

    assert main(["plan", *args]) == 0                              # the text dry run prints the same steps
    text = capsys.readouterr().out
    listed = [ln.split(". ", 1)[1] for ln in text.split("\nsteps (10):\n")[1].splitlines() if ". " in ln]
    assert listed == [s["summary"] for s in dry["steps"]]

    # first apply: DNS done, then the locator is unreachable; the rest is not reached
    code, first = run_plan(capsys, *args, "--apply")
    assert code == 2
    assert [r["id"] for r in first["results"]] == [s["id"] for s in dry["steps"]]
    status = {r["id"]: r["status"] for r in first["results"]}
    assert [status[s["id"]] for s in first["steps"] if s["kind"] == "dns"] == ["applied"] * 3
    code, dry = run_plan(capsys, *args)
    assert [s["id"] for s in dry["steps"] if s["already_applied"]] == [s["id"] for s in dry["steps"][:3]]
    assert status["locator:10.1.1.11/32"] == "failed"
    assert all(v == "pending" for k, v in status.items() if k.startswith(("lb:", "firewall:")))
    assert dig(named, f"www.{ZONE}") == ["127.20.1.10"]
    assert haproxy.state() == {"web1": "10.1.1.11:80"}          # untouched
    assert not ruleset.exists()

    locator.start()
    try:
        serial = soa_serial(named)
        code, second = run_plan(capsys, *args, "--apply")
        assert code == 0, second["results"]
        status = {r["id"]: r["status"] for r in second["results"]}
        assert [v for k, v in status.items() if k.startswith("dns:")] == ["skipped"] * 3
        assert all(v == "applied" for k, v in status.items() if not k.startswith("dns:"))
        assert soa_serial(named) == serial                        # DNS was not touched again

        assert dig(named, f"www.{ZONE}") == ["127.20.1.10"]
        assert dig(named, f"app.{ZONE}") == ["127.20.2.20"]
        assert dig(named, f"db.{ZONE}") == ["127.20.3.102"]
        assert haproxy.state() == {"web1": "127.20.1.11:80", "web2": "127.20.1.12:80"}
        with LocatorClient(locator.url) as client:
            for old, new in [("10.1.1.11", "127.20.1.11"), ("10.1.1.12", "127.20.1.12"),
                             ("10.1.2.20", "127.20.2.20"), ("10.1.3.30", "127.20.3.102")]:
                res = client.resolve(old)
                assert [loc.address for loc in res.mapping.locators] == [new]
            version = client.status()
        text = ruleset.read_text()
        assert "ip daddr 127.20.3.102 tcp dport 5432" in text and "10.1.3.30" not in text
        assert "ip daddr 127.20.9.10 tcp dport 636" in text          # LDAP rule, now with a counterpart
        mtime = ruleset.stat().st_mtime_ns

        # the dry run now says every step is already applied
        code, dry = run_plan(capsys, *args)
        assert code == 0 and all(s["already_applied"] for s in dry["steps"])

        # third apply: nothing changes anywhere
        code, third = run_plan(capsys, *args, "--apply")
        assert code == 0
        assert {r["status"] for r in third["results"]} == {"skipped"}
        assert soa_serial(named) == serial
        with LocatorClient(locator.url) as client:
            assert client.status() == version
        assert ruleset.stat().st_mtime_ns == mtime
        assert haproxy.state() == {"web1": "127.20.1.11:80", "web2": "127.20.1.12:80"}
    finally:
        locator.close()


def test_apply_without_journal_is_still_idempotent(example, named, haproxy, tmp_path, capsys):
    """Losing the journal (a crash between a step and its record) re-runs steps that then change nothing."""
    locator = Locator(tmp_path / "locator").start()
    try:
        sites, ruleset = prepare(example, named, haproxy, locator.url)
        args = [str(example), "--from", "dc1", "--to", "cloud", "--sites", str(sites)]
        code, first = run_plan(capsys, *args, "--apply", "--state", str(tmp_path / "a.json"))
        assert code == 0 and {r["status"] for r in first["results"]} == {"applied"}
        serial = soa_serial(named)
        code, again = run_plan(capsys, *args, "--apply", "--state", str(tmp_path / "b.json"))
        assert code == 0
        assert {r["detail"] for r in again["results"]} == {"already in place"}
        assert soa_serial(named) == serial
    finally:
        locator.close()


def test_apply_refuses_a_plan_with_error_risks(example, capsys):
    code = main(["plan", str(example), "--from", "dc1", "--to", "cloud", "--apply"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert "risk(s) of severity error" in captured.err and len(captured.err.strip().splitlines()) == 1


def test_changed_plan_reapplies_only_changed_steps(example, named, haproxy, tmp_path, capsys):
    locator = Locator(tmp_path / "locator").start()
    try:
        sites, ruleset = prepare(example, named, haproxy, locator.url)
        args = [str(example), "--from", "dc1", "--to", "cloud", "--sites", str(sites), "--state", str(tmp_path / "s.json")]
        assert run_plan(capsys, *args, "--apply")[0] == 0
        edit_yaml(example, lambda d: d["moves"][0].update(overrides={"web2": {0: "127.20.1.50"}}))
        code, again = run_plan(capsys, *args, "--apply")
        assert code == 0
        applied = sorted(r["id"] for r in again["results"] if r["status"] == "applied")
        assert applied == ["firewall:ruleset", "lb:web/web2", "locator:10.1.1.12/32"]
        assert haproxy.state()["web2"] == "127.20.1.50:80"
        assert "ip daddr 127.20.1.50 tcp dport 80" in ruleset.read_text()
    finally:
        locator.close()


def test_journal_of_another_plan_is_refused(example, tmp_path, capsys):
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"app": "other", "from": "dc1", "to": "cloud", "done": {}}))
    edit_yaml(example, lambda d: d["sites"]["cloud"].setdefault("services", {}).update(
        ldap={"kind": "ldap", "host": "10.20.9.10", "port": 636}))
    code = main(["plan", str(example), "--from", "dc1", "--to", "cloud", "--apply", "--state", str(state)])
    err = capsys.readouterr().err
    assert code == 2 and "belongs to other dc1->cloud" in err and str(state) in err


def test_a_second_apply_of_the_same_journal_is_refused_while_one_runs(example, tmp_path, capsys):
    """One apply of a journal at a time (its run lock, held here by another process); nothing is applied
    and the journal is not written by the refused run."""
    state = tmp_path / "state.json"
    edit_yaml(example, lambda d: d["sites"]["cloud"].setdefault("services", {}).update(
        ldap={"kind": "ldap", "host": "10.20.9.10", "port": 636}))
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)",
                               f"{state}.lock"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code = main(["plan", str(example), "--from", "dc1", "--to", "cloud", "--apply", "--state", str(state)])
        err = capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    assert code == 2 and "another apply of this plan is running" in err and len(err.strip().splitlines()) == 1
    assert not state.exists()


def test_runtime_api_over_tcp(haproxy):
    from vmferry.plans.haproxy import RuntimeApi

    api = RuntimeApi(f"127.0.0.1:{haproxy.admin_port}")
    assert {n: f"{s.address}:{s.port}" for n, s in api.servers("web").items()} == {"web1": "10.1.1.11:80"}
    assert api.ensure_member("web", "web1", "127.20.1.11", 8080, check=False) == "moved from 10.1.1.11:80"
    assert api.ensure_member("web", "web1", "127.20.1.11", 8080, check=False) == "already in place"
    assert haproxy.state() == {"web1": "127.20.1.11:8080"}
    try:
        api.servers("nosuch")
    except Exception as exc:  # noqa: BLE001 - the type is asserted
        assert type(exc).__name__ == "PlanError" and "nosuch" in str(exc)
    else:
        raise AssertionError("an unknown backend was accepted")


def test_wrong_tsig_key_fails_the_dns_step(example, named, haproxy, tmp_path, capsys):
    sites, _ = prepare(example, named, haproxy, "http://127.0.0.1:9")
    edit_yaml(sites, lambda d: d["sites"]["cloud"]["dns"]["tsig"].update(secret="d3Jvbmcgc2VjcmV0IGtleSAxMjM0NTY3ODkwMTI="))
    code, out = run_plan(capsys, str(example), "--from", "dc1", "--to", "cloud", "--sites", str(sites), "--apply",
                         "--state", str(tmp_path / "s.json"))
    assert code == 2
    first = out["results"][0]
    assert first["status"] == "failed" and "www.shop.example.test" in first["detail"], first
    assert {r["status"] for r in out["results"][1:]} == {"pending"}
    assert dig(named, f"www.{ZONE}") == []
