"""Guest tools and generalization, as edits of the guest's systemd configuration and state files.

Tools of a hypervisor the image is not repaired for are *masked* (``/etc/systemd/system/<unit>`` ->
``/dev/null``), never uninstalled: ``systemctl unmask`` brings them back when the image goes home.
"""

from __future__ import annotations

import configparser
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vmferry.guest.repair import Editor

UNIT_DIRS = ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
VENDOR_UNITS: dict[str, tuple[str, ...]] = {
    "vmware": ("open-vm-tools.service", "vmtoolsd.service", "vgauth.service", "vmware-tools.service",
               "vmware-tools-thinprint.service", "run-vmblock\\x2dfuse.mount"),
    "hyperv": ("hv-kvp-daemon.service", "hv-vss-daemon.service", "hv-fcopy-daemon.service", "hypervkvpd.service",
               "hypervvssd.service", "hypervfcopyd.service"),
    "xen": ("xe-daemon.service", "xe-linux-distribution.service", "xen-guest-agent.service"),
    "virtualbox": ("vboxadd.service", "vboxadd-service.service", "virtualbox-guest-utils.service"),
}
AGENT_UNIT = "qemu-guest-agent.service"
SSH_KEYGEN_UNIT = "vmferry-ssh-keygen.service"
SSH_KEYGEN = """# written by vmferry (generalize): SSH host keys are made on the first boot of each copy
[Unit]
Description=Generate SSH host keys (vmferry generalize)
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key
Before=ssh.service sshd.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
"""


def _unit_file(ed: Editor, unit: str) -> str | None:
    """Where the unit's file lives (not counting a mask)."""
    for d in UNIT_DIRS:
        path = f"{d}/{unit}"
        if ed.s.is_symlink(path) and ed.s.readlink(path) == "/dev/null":
            continue
        if ed.s.exists(path):
            return path
    return None


def repair_units(ed: Editor, targets: list[str]) -> None:
    for vendor, units in VENDOR_UNITS.items():
        if vendor in targets:
            continue
        for unit in units:
            where = _unit_file(ed, unit)
            if where is None:
                continue
            link = f"/etc/systemd/system/{unit}"
            if where == link and not ed.s.is_symlink(link):
                ed.report.problems.append(f"{link}: a unit written by the administrator; not masked")
                continue
            ed.symlink("/dev/null", link, f"{vendor} guest tools do nothing (or conflict) on "
                       f"{', '.join(targets)}: masked, not uninstalled ('systemctl unmask {unit}' undoes it)")
    if "kvm" in targets:
        _enable_agent(ed)


def _enable_agent(ed: Editor) -> None:
    mask = f"/etc/systemd/system/{AGENT_UNIT}"
    if ed.s.is_symlink(mask) and ed.s.readlink(mask) == "/dev/null":
        ed.remove(mask, "qemu-guest-agent unmasked: kvm is a target")
    where = _unit_file(ed, AGENT_UNIT)
    if where is None:
        return
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        cp.read_string(ed.s.read_text(where) or "")
    except configparser.Error:
        return
    wanted_by = cp.get("Install", "WantedBy", fallback="").split()
    if not wanted_by:
        ed.report.notes.append(f"{AGENT_UNIT} has no [Install] section: udev starts it when the agent's "
                               "virtio-serial port appears")
        return
    for target in wanted_by:
        ed.symlink(where, f"/etc/systemd/system/{target}.wants/{AGENT_UNIT}",
                   "qemu-guest-agent enabled: kvm is a target")


def generalize(ed: Editor) -> None:
    s = ed.s
    if s.is_file("/etc/machine-id"):
        ed.write("/etc/machine-id", "", "generalize: an empty machine-id makes systemd create a new one on "
                 "first boot (systemd's convention: empty, not removed)")
    if s.is_file("/var/lib/dbus/machine-id") and not s.is_symlink("/var/lib/dbus/machine-id"):
        ed.remove("/var/lib/dbus/machine-id", "generalize: D-Bus machine id (remade from /etc/machine-id)")
    keys = [n for n in s.ls("/etc/ssh") if n.startswith("ssh_host_")]
    for name in keys:
        ed.remove(f"/etc/ssh/{name}", "generalize: SSH host keys are made anew by each copy", secret=True)
    if keys:
        has_keygen = any(s.exists(f"{d}/{u}") for d in UNIT_DIRS for u in ("sshd-keygen@.service", "sshd-keygen.service"))
        if has_keygen:
            ed.report.notes.append("SSH host keys are regenerated at boot by the guest's sshd-keygen unit")
        elif s.exists("/usr/bin/ssh-keygen"):
            path = f"/etc/systemd/system/{SSH_KEYGEN_UNIT}"
            ed.write(path, SSH_KEYGEN, "generalize: the guest has no unit making SSH host keys at boot "
                     "(Debian's sshd does not start without them)")
            ed.symlink(path, f"/etc/systemd/system/multi-user.target.wants/{SSH_KEYGEN_UNIT}",
                       "generalize: host keys made before sshd starts")
        else:
            ed.report.problems.append("SSH host keys removed but the guest has no ssh-keygen to make new ones")
    for directory, suffixes in (("/var/lib/dhcp", (".leases", ".lease")), ("/var/lib/dhclient", (".leases", ".lease")),
                                ("/var/lib/NetworkManager", (".lease",)), ("/var/lib/systemd/network", ("",))):
        for name in s.ls(directory):
            if name.endswith(suffixes) and s.is_file(f"{directory}/{name}"):
                ed.remove(f"{directory}/{name}", "generalize: DHCP lease of the original VM")
    ed.remove("/etc/udev/rules.d/70-persistent-net.rules", "generalize: persistent-net rule naming the original "
              "VM's MACs")
    if s.is_file("/etc/hostname"):
        ed.write("/etc/hostname", "", "generalize: no static hostname, each copy gets its own (DHCP, "
                 "cloud-init or the OVF environment)")
