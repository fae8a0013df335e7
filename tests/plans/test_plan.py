"""`vmferry plan` on the three-tier example: every kind of change, boot order, risks, the graph."""

from __future__ import annotations

import json

from lxml import etree

from tests.plans.servers import edit_yaml
from vmferry.cli.main import main
from vmferry.plans import build_plan, load_app
from vmferry.plans.nft import check_ruleset


def rules(plan) -> set[str]:
    return {r.rule for r in plan.risks}


def test_plan_lists_every_change(example):
    plan = build_plan(load_app(example), "dc1", "cloud")
    assert plan.networks == {"front": "web-net", "back": "app-net", "data": "data"}
    addrs = {(n.component, n.index): (n.old_address, n.new_address) for n in plan.nics}
    assert addrs == {("web1", 0): ("10.1.1.11", "10.20.1.11"), ("web2", 0): ("10.1.1.12", "10.20.1.12"),
                     ("app", 0): ("10.1.2.20", "10.20.2.20"),
                     ("app", 1): ("10.1.3.20", "10.20.3.101"),     # pool; .100 is in use at cloud
                     ("db", 0): ("10.1.3.30", "10.20.3.102")}
    app_props = next(v.properties for v in plan.vm_settings if v.component == "app")
    assert app_props["vmferry.net.1.address"] == "10.20.3.101/24"
    assert app_props["vmferry.net.0.gateway"] == "10.20.2.1" and app_props["vmferry.net.1.dns"] == "10.20.0.2"
    assert {(d.name, tuple(d.old), tuple(d.new)) for d in plan.dns} == {
        ("www.shop.example.test", ("10.1.1.10",), ("10.20.1.10",)),
        ("app.shop.example.test", ("10.1.2.20",), ("10.20.2.20",)),
        ("db.shop.example.test", ("10.1.3.30",), ("10.20.3.102",))}
    assert {(c.member, c.old, c.new) for c in plan.lb} == {("web1", "10.1.1.11:80", "10.20.1.11:80"),
                                                             ("web2", "10.1.1.12:80", "10.20.1.12:80")}
    fw = {f.rule: f for f in plan.firewall}
    assert fw["web-to-app"].new.startswith("ip saddr 10.20.1.0/24 ip daddr { 10.20.2.20, 10.20.3.101 }")
    assert "ip daddr 10.20.3.102 tcp dport 22" in fw["admin-ssh"].new    # literal old address rewritten
    assert fw["app-to-ldap"].new is None                                  # LDAP has no address at cloud
    assert {(c.certificate, c.component) for c in plan.certificates} == {("web-tls", "web1"), ("web-tls", "web2")}
    assert "IP SAN 10.1.1.11 will not match" in plan.certificates[0].problem
    assert {(c.eid, c.new) for c in plan.locator} == {("10.1.1.11/32", "10.20.1.11"), ("10.1.1.12/32", "10.20.1.12"),
                                                      ("10.1.2.20/32", "10.20.2.20"), ("10.1.3.30/32", "10.20.3.102")}
    assert plan.boot_order == [["db"], ["app"], ["web1", "web2"]]
    assert {"VMF-APP-003", "VMF-APP-010", "VMF-APP-011", "VMF-APP-012"} <= rules(plan)
    assert "VMF-APP-014" not in rules(plan)
    ldap = next(r for r in plan.risks if r.rule == "VMF-APP-010")
    assert "ldap" in ldap.message and ldap.severity == "error"


def test_ruleset_passes_nft_check(example, tmp_path):
    plan = build_plan(load_app(example), "dc1", "cloud")
    path = tmp_path / "r.nft"
    path.write_text(plan.ruleset)
    check_ruleset(path)                                 # raises if nft refuses it
    path.write_text(plan.ruleset.replace("10.20.3.102", "10.20.3.302"))
    try:
        check_ruleset(path)
    except Exception as exc:                            # noqa: BLE001 - asserting the type below
        assert type(exc).__name__ == "PlanError" and "nft -c refused" in str(exc)
    else:
        raise AssertionError("nft -c accepted an invalid address")


def test_ldap_counterpart_removes_the_risk(example):
    edit_yaml(example, lambda d: d["sites"]["cloud"].setdefault("services", {}).update(
        {"directory": {"kind": "ldap", "host": "10.20.9.10", "port": 636}}))
    plan = build_plan(load_app(example), "dc1", "cloud")
    assert "VMF-APP-010" not in rules(plan) and "VMF-APP-011" not in rules(plan)
    svc = plan.services[0]
    assert (svc.service, svc.identity, svc.old, svc.new) == ("ldap", True, "10.1.9.10:636/tcp", "10.20.9.10:636/tcp")
    assert "ip daddr 10.20.9.10 tcp dport 636" in {f.rule: f for f in plan.firewall}["app-to-ldap"].new


def test_planted_address_conflicts(example):
    def plant(doc):
        doc["sites"]["cloud"]["in_use"].append("10.20.2.20")                  # app's new address is taken
        doc["moves"][0]["overrides"] = {"web2": {0: "10.20.1.11"}}             # web2 collides with web1
    edit_yaml(example, plant)
    plan = build_plan(load_app(example), "dc1", "cloud")
    msgs = [r.message for r in plan.risks if r.rule in ("VMF-APP-006", "VMF-APP-007")]
    assert any("10.20.2.20" in m and "already in use at site cloud" in m for m in msgs)
    assert any("10.20.1.11" in m and "given to both web1 NIC 0 and web2 NIC 0" in m for m in msgs)
    assert len(msgs) == 2


def test_pool_skips_override_addresses(example):
    edit_yaml(example, lambda d: d["moves"][0].update(overrides={"db": {0: "10.20.3.101"}}))
    plan = build_plan(load_app(example), "dc1", "cloud")
    addrs = {(n.component, n.index): n.new_address for n in plan.nics}
    assert addrs[("db", 0)] == "10.20.3.101" and addrs[("app", 1)] == "10.20.3.102"
    assert "VMF-APP-006" not in rules(plan)


def test_unmapped_network_and_missing_rule(example):
    def change(doc):
        del doc["moves"][0]["networks"]["front"]
        doc["moves"][0]["readdress"] = doc["moves"][0]["readdress"][1:]
    edit_yaml(example, change)
    plan = build_plan(load_app(example), "dc1", "cloud")
    assert "VMF-APP-001" in rules(plan)
    assert plan.networks["front"] is None
    assert any(r.rule == "VMF-APP-004" and "web1" in r.message for r in plan.risks)


def test_cycle_is_reported_and_started_together(example):
    edit_yaml(example, lambda d: d["dependencies"].append({"from": "db", "to": "app", "port": 8080}))
    plan = build_plan(load_app(example), "dc1", "cloud")
    assert plan.cycles == [["app", "db"]]
    assert plan.boot_order == [["app", "db"], ["web1", "web2"]]
    assert "VMF-APP-009" in rules(plan)


def test_cli_dry_run_json_and_exit_status(example, capsys):
    code = main(["plan", str(example), "--from", "dc1", "--to", "cloud", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["dry_run"] is True          # an error risk (LDAP) → exit 1
    assert doc["boot_order"] == [["db"], ["app"], ["web1", "web2"]]
    assert doc["steps"] == []                            # the example's sites have no servers to apply to
    code = main(["plan", str(example), "--from", "dc1", "--to", "cloud"])
    out = capsys.readouterr().out
    assert "boot order:\n  1. db\n  2. app\n  3. web1, web2" in out and "dry run: nothing was changed" in out


def test_graph_svg(example, tmp_path, capsys):
    svg = tmp_path / "shop.svg"
    assert main(["plan", str(example), "--from", "dc1", "--to", "cloud", "--graph", str(svg)]) == 1
    capsys.readouterr()
    root = etree.parse(str(svg)).getroot()
    ns = {"s": "http://www.w3.org/2000/svg"}
    nodes = {g.findtext("s:title", namespaces=ns): g for g in root.iterfind(".//s:g[@class='node']", ns)}
    assert {"c_web1", "c_web2", "c_app", "c_db", "s_ldap", "s_ntp", "p_web"} <= set(nodes)
    text = lambda g: " ".join(t.text or "" for t in g.iterfind(".//s:text", ns))  # noqa: E731
    assert "10.1.3.30 -> 10.20.3.102" in text(nodes["c_db"])
    assert "NO COUNTERPART" in text(nodes["s_ldap"])
    assert nodes["s_ldap"].find("s:ellipse", ns).get("stroke") == "red"
    edges = {g.findtext("s:title", namespaces=ns) for g in root.iterfind(".//s:g[@class='edge']", ns)}
    assert {"c_app->c_db", "c_app->s_ldap", "c_web1->c_app", "p_web->c_web2"} <= edges


def test_source_address_outside_its_network(example):
    edit_yaml(example, lambda d: d["components"]["web2"].update(nics=[{"address": "10.1.7.12/24"}]))
    plan = build_plan(load_app(example), "dc1", "cloud")
    assert any(r.rule == "VMF-APP-014" and "10.1.7.12 is outside front 10.1.1.0/24" in r.message for r in plan.risks)
    assert any(r.rule == "VMF-APP-004" and "web2" in r.message for r in plan.risks)   # no rule matches it
