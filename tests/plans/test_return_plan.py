"""The plan of a failback (return_plan): after the move dc1 -> dr, every address, DNS record, pool member,
locator and firewall rule goes back to what the manifest declares for dc1 — which build_plan from dr would
not do (the manifest's addresses are dc1's, so nothing seems to change)."""

from __future__ import annotations

import yaml

from vmferry.plans.manifest import load_app
from vmferry.plans.plan import build_plan, return_plan

HOSTS = {"db": 11, "app": 12, "web": 13}


def manifest(tmp_path):
    comps = {c: {"source": {"domain": c}, "nics": [{"network": "lan", "address": f"10.91.0.{h}/24"}], "ports": [80]}
             for c, h in HOSTS.items()}
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump({
        "name": "shop", "zone": "shop.test", "components": comps,
        "dns": {"records": [{"name": "www", "type": "A", "pool": "web"}, {"name": "db", "type": "A", "component": "db"}]},
        "load_balancer": {"pools": [{"name": "web", "port": 80, "members": ["web"]}]},
        "firewall": [{"name": "app-to-db", "from": "app", "to": "db", "port": 80}],
        "sites": {"dc1": {"networks": {"lan": {"subnet": "10.91.0.0/24", "gateway": "10.91.0.1"}}},
                  "dr": {"networks": {"dr-lan": {"subnet": "10.92.0.0/24", "gateway": "10.92.0.1"}}}},
        "moves": [{"from": "dc1", "to": "dr", "networks": {"lan": "dr-lan"},
                   "readdress": [{"from": "10.91.0.0/24", "to": "10.92.0.0/24"}]}]}))
    return load_app(str(path))


def test_return_plan_brings_every_surrounding_back_home(tmp_path):
    app = manifest(tmp_path)
    back = return_plan(app, "dr", "dc1")
    assert (back.source, back.target, back.networks) == ("dr", "dc1", {"dr-lan": "lan"})
    assert {(n.component, n.source_network, n.target_network, n.old_address, n.new_address) for n in back.nics} == {
        (c, "dr-lan", "lan", f"10.92.0.{h}", f"10.91.0.{h}") for c, h in HOSTS.items()}
    dns = {d.name: (d.old, d.new) for d in back.dns}
    assert dns["db.shop.test"] == (["10.92.0.11"], ["10.91.0.11"])
    assert dns["www.shop.test"] == (["10.92.0.13"], ["10.91.0.13"])
    assert [(m.old, m.new) for m in back.lb] == [("10.92.0.13:80", "10.91.0.13:80")]
    assert {(x.eid, x.old, x.new) for x in back.locator} == {
        (f"10.91.0.{h}/32", f"10.92.0.{h}", f"10.91.0.{h}") for h in HOSTS.values()}   # identities stay dc1's
    (rule,) = back.firewall
    assert "10.92.0.12" in rule.old and "ip saddr 10.91.0.12 ip daddr 10.91.0.11" in rule.new
    assert back.boot_order == build_plan(app, "dc1", "dr").boot_order


def test_build_plan_from_the_away_site_would_change_nothing(tmp_path):
    app = manifest(tmp_path)
    naive = build_plan(app, "dr", "dc1")
    assert all(n.new_address is None or n.new_address == n.old_address for n in naive.nics)
    assert all(d.new in ([], d.old) for d in naive.dns)
