"""The main job of vmferry on this machine: protect an application to a second site, then prove the
replicas would run there (a test failover in isolated networks) and report the RTO.

The application ``shop`` has three components, each the project's small serving test guest
(tests/recovery/serviceguest.py: busybox init, HTTP on port 80, a TCP port of its own, a guest agent),
exported VMware-style as an OVA per component (cached under ~/.cache/vmferry-test/demo-*):

    db  (10.66.0.11, TCP 5432)  <-  app (10.66.0.12, TCP 8080)  <-  web (10.66.0.13, HTTP 80, pool "web")

Sites ``dc1`` and ``dr`` are two storage directories of one private, privileged libvirtd
(scripts/demo_libvirtd.py). The run: ``vmferry protect`` (convert + repair each package for KVM, first
recovery point at dr), ``vmferry status``, ``vmferry recover shop --to dr --test`` (boot groups
db -> app -> web in an isolated network, each VM proved by its guest agent and health checks, then the
application check through the pool's health check, everything removed again), a check that nothing is
left, ``vmferry unprotect``, and the daemon stopped. Whatever fails, everything is cleaned; exit 1.

    python scripts/demo_recover.py [--components db,web]   # from the repository root
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO), str(REPO / "scripts")]

import demo_libvirtd  # noqa: E402

COMPONENTS = {   # name: (last octet, extra TCP port, depends on)
    "db": (11, 5432, None),
    "app": (12, 8080, "db"),
    "web": (13, 0, "app"),
}
PROPERTY = ('<Property ovf:key="vmferry.test.tcp" ovf:type="string" ovf:userConfigurable="true" '
            'ovf:value="{port}"/>\n    </ProductSection>')


def step(msg: str) -> None:
    sys.stdout.write(f"\n\033[1m== {msg}\033[0m\n")
    sys.stdout.flush()


def packages(out: Path, names: list[str]) -> dict[str, Path]:
    """One OVA per component (the serving guest, its address and port in the OVF), built once and cached."""
    from tests.guest.test_end_to_end import OVF
    from tests.recovery import serviceguest
    from vmferry.disks.convert import convert_disk, open_disk
    from vmferry.disks.packdir import pack_directory
    from vmferry.tools.proc import run

    image = serviceguest.service_image()
    key = hashlib.sha256((image.name + OVF + PROPERTY).encode()).hexdigest()[:12]
    cache = demo_libvirtd.CACHE / f"demo-{key}"
    cache.mkdir(parents=True, exist_ok=True)
    found = {}
    for name in names:
        octet, port, _ = COMPONENTS[name]
        ova = cache / f"{name}.ova"
        if not ova.exists():
            tmp = out / f"{name}.build"
            tmp.mkdir()
            raw = tmp / "disk.raw"
            run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", image, raw], timeout=300)
            pkg = tmp / "pkg"
            pkg.mkdir()
            convert_disk(open_disk(str(raw)), str(pkg / "guest.vmdk"), "vmdk-stream")
            ovf = OVF.format(name=name, capacity=os.path.getsize(raw), ip=f"10.66.0.{octet}")
            if port:
                ovf = ovf.replace("</ProductSection>", PROPERTY.format(port=port), 1)
            (pkg / f"{name}.ovf").write_text(ovf)
            pack_directory(pkg, tmp / "out.ova", force=True)
            os.replace(tmp / "out.ova", ova)
            subprocess.run(["rm", "-rf", str(tmp)], check=True)
        found[name] = ova
    return found


def needs(name: str, names: list[str]) -> str | None:
    """The nearest component ``name`` depends on among ``names`` (web needs db when app is left out)."""
    parent = COMPONENTS[name][2]
    while parent and parent not in names:
        parent = COMPONENTS[parent][2]
    return parent


def manifest(names: list[str], ovas: dict[str, Path], uri: str, work: Path) -> dict:
    comps, deps = {}, []
    for name in names:
        octet, port, _ = COMPONENTS[name]
        comps[name] = {"package": str(ovas[name]), "nics": [{"address": f"10.66.0.{octet}/24"}],
                       "ports": [port] if port else [80]}
        parent = needs(name, names)
        if parent:
            deps.append({"from": name, "to": parent, "port": COMPONENTS[parent][1] or 80})
    doc = {"name": "shop", "components": comps, "dependencies": deps,
           "sites": {site: {"platform": "libvirt",
                            "libvirt": {"uri": uri, "storage": str(work / site), "networks": {"VM Network": lan}},
                            "networks": nets}
                     for site, lan, nets in (
                         ("dc1", "dc1-lan", {"VM Network": {"subnet": "10.66.0.0/24", "gateway": "10.66.0.1"}}),
                         ("dr", "dr-lan", {"dr-app": {"subnet": "10.77.0.0/24", "gateway": "10.77.0.1"}}))},
           "moves": [{"from": "dc1", "to": "dr", "networks": {"VM Network": "dr-app"},
                      "readdress": [{"from": "10.66.0.0/24", "to": "10.77.0.0/24"}]}]}
    if "web" in names:
        doc["load_balancer"] = {"pools": [{"name": "web", "port": 80, "members": ["web"],
                                           "health_check": {"type": "http", "path": "/"}}]}
    return doc


def vmferry(env: dict, *args: str, check: bool = True, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run ``vmferry ARGS``: its output shown indented as it comes (its progress lines go to the terminal's
    standard error as they are), and returned; raises on failure when ``check``."""
    sys.stdout.write(f"$ vmferry {' '.join(args)}\n")
    sys.stdout.flush()
    out = []
    with subprocess.Popen([sys.executable, "-m", "vmferry", *args], stdout=subprocess.PIPE, text=True,
                          env=env) as proc:
        deadline = time.monotonic() + timeout
        for line in proc.stdout:
            out.append(line)
            sys.stdout.write(f"  {line}")
            sys.stdout.flush()
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    res = subprocess.CompletedProcess(proc.args, proc.returncode, "".join(out), "")
    if check and res.returncode != 0:
        raise RuntimeError(f"vmferry {args[0]} failed (exit {res.returncode})")
    return res


def run_demo(names: list[str], *, base: Path = demo_libvirtd.BASE) -> dict:
    """The whole demo; returns the test recovery's report (text), its RTO, the leftovers seen, timings."""
    from vmferry.tools import libvirt as lv

    t0 = time.monotonic()
    step("a private libvirtd with two sites on it, dc1 and dr (scripts/demo_libvirtd.py)")
    daemon = demo_libvirtd.start(base)
    result: dict = {}
    try:
        if daemon.cleaned:
            print(f"removed first, left by an earlier demo: {', '.join(daemon.cleaned)}")
        print(f"libvirtd pid {daemon.pid}, {daemon.uri}")
        work = daemon.workdir
        for site in ("dc1", "dr"):
            (work / site).mkdir()
            os.chown(work / site, daemon.uid, daemon.gid)
        env = dict(os.environ, VMFERRY_STATE=str(base / "state"), PYTHONPATH=os.pathsep.join(
            [str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
        env.pop("VMFERRY_TEMPORAL", None)
        step(f"the application 'shop': {' <- '.join(names)} (each an OVA of the project's serving test guest)")
        ovas = packages(base, names)
        import yaml

        app = base / "shop.yaml"
        app.write_text(yaml.safe_dump(manifest(names, ovas, daemon.uri, work), sort_keys=False))
        for name in names:
            octet, port, parent = COMPONENTS[name]
            print(f"  {name:<4} 10.66.0.{octet}  serves {port or 80}" + (f", needs {needs(name, names)}"
                                                                          if needs(name, names) else ""))
        step("vmferry protect: convert and repair each VM for KVM at dr, first recovery point")
        t = time.monotonic()
        vmferry(env, "protect", str(app), "--from", "dc1", "--to", "dr", "--domain-type", "qemu")
        result["protect_seconds"] = time.monotonic() - t
        step("vmferry status")
        vmferry(env, "status", "shop")
        step("vmferry recover shop --to dr --test   (isolated network, boot groups in order, proof per VM)")
        html = base / "report.html"
        t = time.monotonic()
        res = vmferry(env, "recover", "shop", "--to", "dr", "--test", "--html", str(html), check=False)
        result["recover_seconds"] = time.monotonic() - t
        result["report"] = res.stdout
        rto = re.search(r"^RTO: ([0-9.]+) s$", res.stdout, re.M)
        result["rto_seconds"] = float(rto.group(1)) if rto else None
        print(f"  (HTML report: {html}, removed with the demo)")
        step("what the test left at dr: nothing (libvirt domains and networks, run directory)")
        with lv.connect(daemon.uri) as conn:
            left = [n for n in conn.names() if n.startswith("vmferry-test-")] + \
                   [n for n in conn.networks() if n.startswith("vmferry-test-")]
        left += [str(p) for p in (work / "dr").glob(".vmferry-test-*")]
        result["left"] = left
        print("  " + (", ".join(left) if left else "nothing left"))
        step("vmferry unprotect shop")
        vmferry(env, "unprotect", "shop")
        if res.returncode != 0 or left:
            raise RuntimeError(f"the test left {left}" if left else
                               f"the test recovery did not prove the application (exit {res.returncode})")
    finally:
        step("stopping the demo's libvirtd, removing its files")
        removed = demo_libvirtd.stop(base)
        print("  " + ", ".join(removed))
        result["seconds"] = time.monotonic() - t0
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--components", default="db,app,web", help="which of db,app,web (default all three)")
    args = ap.parse_args(argv)
    names = [n for n in COMPONENTS if n in args.components.split(",")]
    if not names or set(args.components.split(",")) - set(COMPONENTS):
        ap.error("components are among db, app, web")
    try:
        result = run_demo(names)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"\ndemo FAILED: {exc}")
        return 1
    print(f"\nrecovery demo finished in {result['seconds']:.0f} s (protect {result['protect_seconds']:.0f} s, "
          f"test recovery {result['recover_seconds']:.0f} s, RTO {result['rto_seconds']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
