"""Run cloud-init's own OVF datasource on an environment ISO; print what it read as JSON.

Executed by the tests in a separate interpreter (Debian's python3 with the files of Debian's
cloud-init package on PYTHONPATH), never imported by vmferry. Only two things are stood in for,
because a test cannot attach a CD-ROM: the mount table (the ISO's files, extracted by xorriso, are
presented as the iso9660 filesystem mounted from /dev/sr0) and the DMI product name (a QEMU guest).
Everything else is cloud-init's code: transport_iso9660, get_ovf_env, read_ovf_environment,
DataSourceOVF._get_data, network_state parsing and the ENI and netplan renderers.

usage: ci_probe.py ISO WORKDIR
"""

import json
import os
import subprocess
import sys


def main() -> int:
    iso, work = sys.argv[1], sys.argv[2]
    mnt = os.path.join(work, "mnt")
    os.makedirs(mnt)
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/", mnt],
                   check=True, capture_output=True)

    from cloudinit import dmi, helpers, util
    from cloudinit.net import eni, netplan, network_state
    from cloudinit.sources import DataSourceOVF as ovf

    util.mounts = lambda: {"/dev/sr0": {"fstype": "iso9660", "mountpoint": mnt, "opts": "ro"}}
    dmi.read_dmi_data = lambda key: "Standard PC (Q35 + ICH9, 2009)" if key == "system-product-name" else None
    paths = helpers.Paths({"cloud_dir": os.path.join(work, "cloud"), "run_dir": os.path.join(work, "run")})
    ds = ovf.DataSourceOVF(sys_cfg={}, distro=None, paths=paths)
    found = ds._get_data()
    out = {"found": found, "seed": ds.seed, "metadata": ds.metadata, "cfg": ds.cfg,
           "instance_id": ds.get_instance_id() if found else None,
           "properties": ovf.get_properties(ds.environment) if found else None,
           "network_config": ds.network_config}
    if ds.network_config:
        state = network_state.parse_net_config_data(ds.network_config)
        out["interfaces"] = [
            {"name": i["name"], "mac": i.get("mac_address"),
             "subnets": [{k: s.get(k) for k in ("type", "address", "prefix", "netmask", "gateway",
                                                 "dns_nameservers", "dns_search") if s.get(k) is not None}
                         for s in i.get("subnets", [])]}
            for i in state.iter_interfaces()]
        out["dns"] = {"nameservers": state.dns_nameservers, "search": state.dns_searchdomains}
        target = os.path.join(work, "root")
        eni.Renderer({"eni_path": "etc/network/interfaces"}).render_network_state(state, target=target)
        with open(os.path.join(target, "etc/network/interfaces")) as f:
            out["eni"] = f.read()
        netplan.Renderer({"netplan_path": "etc/netplan/50-cloud-init.yaml", "postcmds": False}
                         ).render_network_state(state, target=target)
        with open(os.path.join(target, "etc/netplan/50-cloud-init.yaml")) as f:
            out["netplan"] = f.read()
    json.dump(out, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
