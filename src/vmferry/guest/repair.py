"""Guest repair: make a converted Linux guest boot and keep its network on every hypervisor asked for.

    report = repair_image("disk.qcow2", ["kvm", "vmware"], nics=[NicSetting(0, mac="00:50:56:a1:b2:c3")])

Works on the image it is given, which must be the converted copy (``vmferry guest repair`` and
``convert`` never hand it the source). One libguestfs appliance (:class:`vmferry.tools.guestfs.Session`)
mounts the guest read-write and:

* **network identity**: configuration bound to a physical interface name follows the NIC by its MAC
  (:mod:`vmferry.guest.netrepair`), and new addresses, when given, are written in the guest's convention;
* **devices and boot**: fstab, ``root=``/``resume=`` naming a bus device become ``UUID=``; a UEFI guest
  gets the removable-media fallback loader ``EFI/BOOT/BOOTX64.EFI`` (:mod:`vmferry.guest.bootrepair`);
* **guest tools**: units of hypervisors not asked for are masked (not uninstalled); qemu-guest-agent is
  enabled for kvm (:mod:`vmferry.guest.unitrepair`);
* **generalize** (optional): machine-id, SSH host keys, DHCP leases, persistent-net rules, hostname;
* **drivers**: the initramfs configuration asks for the drivers of every target and of the source, the
  guest's own tool regenerates the initramfs of every installed kernel, and vmferry's initramfs reader
  verifies that the drivers are in (:mod:`vmferry.guest.driverrepair`).

Every change is a :class:`Change` (file, old content, new content, reason) in the :class:`RepairReport`;
``dry_run`` lists them without writing anything (the appliance mounts the guest read-only).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import asdict, dataclass, field, replace

from vmferry.errors import GuestError, UsageError
from vmferry.guest import bootrepair, netrepair
from vmferry.guest.netrepair import NicSetting
from vmferry.tools.guestfs import Session

HYPERVISORS = ("kvm", "vmware", "xen", "hyperv", "virtualbox", "aws")
_SET_KEY = re.compile(r"^vmferry\.net\.(\d+)\.(address|gateway|dns|mac)$")


@dataclass(frozen=True)
class Change:
    file: str                # path in the guest
    old: str | None          # previous content (None: the file did not exist)
    new: str | None          # new content (None: removed; "-> TARGET" for a symbolic link)
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RepairReport:
    image: str
    targets: list[str]
    source: list[str] = field(default_factory=list)     # hypervisors the image came from (drivers kept)
    dry_run: bool = False
    os: str = ""
    changes: list[Change] = field(default_factory=list)
    drivers: dict[str, list[str]] = field(default_factory=dict)   # kernel -> drivers verified in its initramfs
    regenerated: list[str] = field(default_factory=list)          # kernels whose initramfs was rebuilt
    problems: list[str] = field(default_factory=list)             # what could not be repaired, and why
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)     # step -> seconds (launch, network, ...)
    guest: object = field(default=None, repr=False)   # the GuestReport read after the repair, when asked for

    def timed(self, step: str, since: float) -> float:
        now = time.monotonic()
        self.timings[step] = round(self.timings.get(step, 0.0) + now - since, 1)
        return now

    def to_dict(self) -> dict:
        d = asdict(replace(self, guest=None))
        d.pop("guest")
        d["changes"] = [c.to_dict() for c in self.changes]
        return d


def parse_settings(pairs: list[str]) -> list[NicSetting]:
    """``vmferry.net.<n>.address|gateway|dns|mac=VALUE`` settings into one :class:`NicSetting` per NIC."""
    import ipaddress

    nics: dict[int, NicSetting] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        m = _SET_KEY.match(key.strip())
        if not sep or not m:
            raise UsageError(f"setting {pair!r}: expected vmferry.net.N.address|gateway|dns|mac=VALUE")
        nic = nics.setdefault(int(m.group(1)), NicSetting(int(m.group(1))))
        what, value = m.group(2), value.strip()
        try:
            if what == "address":
                if "/" not in value:
                    raise ValueError("an address needs its prefix length, e.g. 10.0.0.5/24")
                nic.address = ipaddress.ip_interface(value).with_prefixlen
            elif what == "gateway":
                nic.gateway = str(ipaddress.ip_address(value))
            elif what == "dns":
                nic.dns = [str(ipaddress.ip_address(v)) for v in re.split(r"[,\s]+", value) if v]
            else:
                mac = netrepair.normal_mac(value)
                if mac is None:
                    raise ValueError("not a MAC address")
                nic.mac = mac
        except ValueError as exc:
            raise UsageError(f"setting {key}={value!r}: {exc}") from exc
    for nic in nics.values():
        if nic.gateway and not nic.address:
            raise UsageError(f"setting vmferry.net.{nic.index}.gateway needs vmferry.net.{nic.index}.address")
        if nic.address and nic.gateway and \
                ipaddress.ip_address(nic.gateway) not in ipaddress.ip_interface(nic.address).network:
            raise UsageError(f"setting vmferry.net.{nic.index}.gateway {nic.gateway} is outside {nic.address}")
    return [nics[i] for i in sorted(nics)]


def merge_settings(macs: list[str], settings: list[NicSetting]) -> list[NicSetting]:
    """The NICs' MACs (in NIC order) with the settings given for them (a MAC given there wins)."""
    by_index = {s.index: s for s in settings}
    out = []
    for i in range(max(len(macs), max(by_index, default=-1) + 1)):
        s = by_index.get(i, NicSetting(i))
        if not s.mac and i < len(macs) and macs[i]:
            s = NicSetting(i, netrepair.normal_mac(macs[i]) or "", s.address, s.gateway, list(s.dns))
        out.append(s)
    return out


class Editor:
    """Writes to the guest, each write recorded as a :class:`Change`; in a dry run, only recorded."""

    def __init__(self, session: Session, report: RepairReport) -> None:
        self.s, self.report = session, report
        self.pending: dict[str, str | None] = {}     # what this run wrote, for later readers in a dry run

    def text(self, path: str) -> str | None:
        if path in self.pending:
            return self.pending[path]
        return self.s.read_text(path)

    def write(self, path: str, new: str, reason: str, *, mode: int | None = None) -> bool:
        old = self.text(path)
        if old == new:
            return False
        self.report.changes.append(Change(path, old, new, reason))
        self.pending[path] = new
        if not self.report.dry_run:
            self.s.write(path, new, mode=mode)
        return True

    def symlink(self, target: str, link: str, reason: str) -> bool:
        old = None
        if self.s.is_symlink(link):
            old = "-> " + self.s.readlink(link)
            if old == f"-> {target}":
                return False
        elif self.s.exists(link):
            old = self.s.read_text(link)
        self.report.changes.append(Change(link, old, f"-> {target}", reason))
        if not self.report.dry_run:
            self.s.symlink(target, link)
        return True

    def remove(self, path: str, reason: str, *, secret: bool = False) -> bool:
        if not (self.s.exists(path) or self.s.is_symlink(path)):
            return False
        if self.s.is_symlink(path):
            old = "-> " + self.s.readlink(path)
        elif secret or not self.s.is_file(path):
            old = "(not shown)"
        else:
            old = self.s.read_text(path)
        self.report.changes.append(Change(path, old, None, reason))
        self.pending[path] = None
        if not self.report.dry_run:
            self.s.remove(path)
        return True


def repair_image(image: str | os.PathLike, targets: list[str], *, nics: list[NicSetting] | None = None,
                 source: list[str] | None = None, generalize: bool = False, dry_run: bool = False,
                 fmt: str | None = None, regenerate: bool = True, host_splice: bool = True,
                 inspect: bool = False, trusted_chain: bool = False) -> RepairReport:
    """Repair the Linux guest on ``image`` (in place: pass a copy) for the hypervisors ``targets``.

    ``nics``: the VM's NICs in order (their MACs, new addresses); ``source``: the hypervisors the image
    came from, whose drivers are kept (inferred from the current initramfs when None); ``host_splice``:
    add drivers to an initramfs-tools image on the host (:mod:`vmferry.guest.initramfs_splice`) instead
    of running update-initramfs under emulation; ``inspect``: also read the repaired guest
    (:func:`vmferry.guest.collect.inspect_session`, same appliance) into ``report.guest``.
    ``trusted_chain``: ``image`` is a qcow2 layer of a recovery point vmferry wrote itself over a chain it
    built (:mod:`vmferry.replication.points`), whose backing lies outside its folder by design; the header
    check that refuses such references is not run for it.
    """
    from vmferry.guest import driverrepair, unitrepair
    from vmferry.guest.collect import image_format

    start = time.monotonic()
    image = os.fspath(image)
    check_targets(targets)
    report = RepairReport(image, list(dict.fromkeys(targets)), dry_run=dry_run)
    # the header check runs on every image libguestfs is given, except vmferry's own point layers
    checked = "qcow2" if trusted_chain else image_format(image)
    if fmt and fmt != checked:
        raise UsageError(f"the image is {checked}, not {fmt}", path=image)
    with Session(image, checked, readonly=dry_run) as s:
        t = report.timed("launch", start)
        report.os = f"{s.inspect('type')} {s.inspect('distro')} {s.inspect('major_version')}"
        if s.inspect("type") != "linux":
            report.problems.append(f"{s.inspect('type')} guests are not repaired (only Linux is): nothing changed")
            if inspect:
                from vmferry.guest.collect import inspect_session

                report.guest = inspect_session(s, image)
            report.seconds = round(time.monotonic() - start, 1)
            return report
        ed = Editor(s, report)
        repair_network(ed, nics or [])
        t = report.timed("network", t)
        repair_boot(ed)
        t = report.timed("boot", t)
        unitrepair.repair_units(ed, report.targets)
        if generalize:
            unitrepair.generalize(ed)
        t = report.timed("units", t)
        driverrepair.repair_drivers(ed, report.targets, source, regenerate=regenerate, host_splice=host_splice)
        t = report.timed("drivers", t)
        if inspect:
            from vmferry.guest.collect import inspect_session

            report.guest = inspect_session(s, image)
            t = report.timed("inspect", t)
    report.timed("shutdown", t)
    report.seconds = round(time.monotonic() - start, 1)
    return report


# ---- network ----------------------------------------------------------------------------------------

NET_DIRS = {"/etc/network/interfaces.d": "ifupdown", "/etc/systemd/network": "networkd", "/etc/netplan": "netplan",
            "/etc/NetworkManager/system-connections": "nm", "/etc/sysconfig/network-scripts": "ifcfg"}


def _net_files(ed: Editor) -> list[tuple[str, str, str]]:
    """(path, convention, text) of the guest's network configuration files."""
    out = []
    if (text := ed.text("/etc/network/interfaces")) is not None:
        out.append(("/etc/network/interfaces", "ifupdown", text))
    for directory, kind in NET_DIRS.items():
        for name in ed.s.ls(directory):
            path = f"{directory}/{name}"
            if (kind == "networkd" and not name.endswith(".network")) or \
                    (kind == "netplan" and not name.endswith((".yaml", ".yml"))) or \
                    (kind == "ifcfg" and not name.startswith("ifcfg-")) or name.startswith("."):
                continue
            if (text := ed.text(path)) is not None:
                out.append((path, kind, text))
    return out


def _names(kind: str, text: str) -> list[str]:
    if kind == "ifupdown":
        return netrepair.ifupdown_interfaces(text)
    if kind == "netplan":
        return netrepair.netplan_interfaces(text)
    one = {"networkd": netrepair.networkd_name, "nm": netrepair.nm_interface, "ifcfg": netrepair.ifcfg_device}[kind]
    name = one(text)
    return [name] if name else []


def repair_network(ed: Editor, nics: list[NicSetting]) -> None:
    files = _net_files(ed)
    names: list[str] = []
    for _path, kind, text in files:
        names += [n for n in _names(kind, text) if n not in names]
    names.sort(key=netrepair.slot_order)
    settings = {name: nic for name, nic in zip(names, nics, strict=False)}
    for name in names[len(nics):]:
        ed.report.problems.append(f"interface {name} is configured by name but the VM has no NIC for it "
                                  "(or its MAC is unknown): not rebound")
    for name, nic in settings.items():
        if not nic.mac:
            ed.report.problems.append(f"interface {name}: the MAC of NIC {nic.index} is unknown: not rebound")
    pinned: set[str] = set()
    for path, kind, text in files:
        here = {n: settings[n] for n in _names(kind, text) if n in settings}
        if not here:
            continue
        if kind == "ifupdown":
            new = netrepair.ifupdown(text, here)
        elif kind == "netplan":
            new = netrepair.netplan(text, here)      # match: macaddress + set-name: netplan's own pin
        elif kind == "networkd":
            new = netrepair.networkd(text, next(iter(here.values())))
        elif kind == "nm":
            new = netrepair.nm_keyfile(text, next(iter(here.values())))
        else:
            new = netrepair.ifcfg(text, next(iter(here.values())))
        if kind != "netplan":
            pinned |= {n for n, s in here.items() if s.mac}
        what = []
        if any(s.mac for s in here.values()) and kind in ("netplan", "nm", "ifcfg"):
            what.append("follows the NIC by MAC")
        if any(s.readdress for s in here.values()):
            what.append("new address " + ", ".join(s.address for s in here.values() if s.readdress))
        if what or new != text:
            ed.write(path, new, f"{kind}: {', '.join(sorted(here))} " + ("; ".join(what) or "updated"))
    for name in sorted(pinned, key=netrepair.slot_order):
        path, content = netrepair.link_file(name, settings[name].mac)
        ed.write(path, content, f"the NIC with MAC {settings[name].mac} keeps the name {name} its configuration "
                 "uses (a systemd .link file; udev applies it on every hypervisor)")


# ---- devices and boot -------------------------------------------------------------------------------

BOOT_CONFIGS = ("/boot/grub/grub.cfg", "/boot/grub2/grub.cfg", "/etc/default/grub", "/boot/extlinux/extlinux.conf",
                "/boot/syslinux/syslinux.cfg", "/extlinux.conf", "/etc/initramfs-tools/conf.d/resume")


def repair_boot(ed: Editor) -> None:
    uuids: dict[str, str | None] = {}

    def uuid_of(spec: str) -> str | None:
        device = bootrepair.bus_device(spec)
        if device is None:
            return None
        if device not in uuids:
            try:
                uuids[device] = ed.s.vfs_uuid(device) or None
            except GuestError:
                uuids[device] = None
            if uuids[device] is None:
                ed.report.problems.append(f"{spec}: no file system with a UUID on that device in this image")
        return uuids[device]

    if (text := ed.text("/etc/fstab")) is not None:
        new, done = bootrepair.fstab(text, uuid_of)
        if done:
            ed.write("/etc/fstab", new, f"{', '.join(done)} named by UUID (the device name changes with the bus)")
    configs = list(BOOT_CONFIGS)
    configs += [f"/boot/loader/entries/{n}" for n in ed.s.ls("/boot/loader/entries") if n.endswith(".conf")]
    for efi in ed.s.ls("/boot/efi/EFI"):
        configs.append(f"/boot/efi/EFI/{efi}/grub.cfg")
    for path in configs:
        if (text := ed.text(path)) is None:
            continue
        new, done = bootrepair.kernel_args(text, uuid_of)
        reason = f"{', '.join(dict.fromkeys(done))} named by UUID" if done else ""
        if path == "/etc/default/grub":
            new, changed = bootrepair.grub_defaults(new)
            if changed:
                reason = "; ".join(filter(None, [reason, "GRUB_DISABLE_LINUX_UUID=false, so update-grub keeps "
                                                 "root=UUID="]))
        if reason:
            ed.write(path, new, reason)
    repair_uefi_fallback(ed)


def repair_uefi_fallback(ed: Editor) -> None:
    """A UEFI guest booted through an NVRAM entry gets ``EFI/BOOT/BOOTX64.EFI`` (a fresh firmware's default)."""
    esp = "/boot/efi" if "/boot/efi" in ed.s.mountpoints else None
    if esp is None:
        return
    dirs = ed.s.ls(f"{esp}/EFI")
    boot_dir = next((d for d in dirs if d.upper() == "BOOT"), None)
    if boot_dir and any(n.upper() == "BOOTX64.EFI" for n in ed.s.ls(f"{esp}/EFI/{boot_dir}")):
        return
    for vendor in dirs:
        if vendor.upper() == "BOOT":
            continue
        files = {n.lower(): n for n in ed.s.ls(f"{esp}/EFI/{vendor}")}
        loader = files.get("shimx64.efi") or files.get("grubx64.efi")
        if loader is None:
            continue
        target = f"{esp}/EFI/{boot_dir or 'BOOT'}"
        src = f"{esp}/EFI/{vendor}/{loader}"
        copies = [(src, f"{target}/BOOTX64.EFI")]
        if loader.lower() == "shimx64.efi" and "grubx64.efi" in files:   # shim loads grubx64.efi beside itself
            copies.append((f"{esp}/EFI/{vendor}/{files['grubx64.efi']}", f"{target}/grubx64.efi"))
        for a, b in copies:
            ed.report.changes.append(Change(b, None, f"copy of {a}", "UEFI removable-media fallback path: the "
                                            "guest boots on a firmware with no NVRAM entry for it"))
            if not ed.report.dry_run:
                ed.s.copy(a, b)
        return
    ed.report.problems.append(f"UEFI: no EFI/BOOT/BOOTX64.EFI and no shimx64.efi or grubx64.efi under {esp}/EFI "
                              "to make it from")


def check_targets(targets: list[str]) -> list[str]:
    bad = [t for t in targets if t not in HYPERVISORS]
    if bad or not targets:
        raise UsageError(f"unknown hypervisor {', '.join(bad) or '(none)'} (one of {', '.join(HYPERVISORS)})")
    return targets


__all__ = ["Change", "RepairReport", "NicSetting", "repair_image", "parse_settings", "merge_settings",
           "check_targets"]
