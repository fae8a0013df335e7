"""The test copy of a replica's domain: same guest, throwaway disks, isolated NICs, a console log.

:func:`isolated_domain_xml` takes the replica's definition (what ``convert --to kvm`` wrote and protect
stored) and changes only what a test run must change, keeping everything else (machine, buses, NIC
models and MACs, memory, firmware):

* name: the run's own, the UUID dropped (libvirt makes one);
* each disk: the run's qcow2 overlay over the point's layer (the replica itself is never opened for
  writing), CD-ROMs replaced by one carrying the run's OVF environment;
* each NIC: on the isolated network standing in for its target network;
* serial console: written to a file (its tail goes in the report); no graphics;
* one guest agent channel (``org.qemu.guest_agent.0``), its socket in the run's directory when the path
  is short enough for a Unix socket.
"""

from __future__ import annotations

from lxml import etree

from vmferry.errors import RecoveryError

AGENT_CHANNEL = "org.qemu.guest_agent.0"
_PREFIX = {"virtio": "vd", "scsi": "sd", "sata": "sd", "ide": "hd", "usb": "sd"}


def _parse(xml: str, what: str) -> etree._Element:
    try:
        root = etree.fromstring(xml.encode(), etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        raise RecoveryError(f"{what}: the domain definition is not well-formed: {exc}") from exc
    if root.tag != "domain":
        raise RecoveryError(f"{what}: not a libvirt domain definition (root <{root.tag}>)")
    return root


def isolated_domain_xml(xml: str, *, name: str, overlays: dict[str, str], networks: list[str], console_log: str,
                    env_iso: str | None, what: str, agent_socket: str | None = None) -> str:
    """``xml`` rewritten for a test run. ``overlays``: disk target (``vda``) -> overlay path;
    ``networks``: the isolated network of each NIC, in the definition's NIC order."""
    root = _parse(xml, what)
    _set(root, "name", name)
    for el in root.findall("uuid"):
        root.remove(el)
    devices = root.find("devices")
    if devices is None:
        raise RecoveryError(f"{what}: the domain definition has no <devices>")
    cd_bus = None
    seen = set()
    for disk in devices.findall("disk"):
        target = disk.find("target")
        dev = target.get("dev") if target is not None else None
        if disk.get("device") == "cdrom":
            cd_bus = cd_bus or (target.get("bus") if target is not None else None)
            devices.remove(disk)
            continue
        if disk.get("device", "disk") != "disk":
            continue
        if dev not in overlays:
            raise RecoveryError(f"{what}: disk {dev} of the domain has no replica in the recovery point")
        seen.add(dev)
        disk.set("type", "file")
        for src in disk.findall("source"):
            disk.remove(src)
        driver = disk.find("driver")
        if driver is None:
            driver = etree.Element("driver", name="qemu")
            disk.insert(0, driver)
        driver.set("type", "qcow2")
        idx = list(disk).index(driver) + 1
        disk.insert(idx, etree.Element("source", file=overlays[dev]))
        for ro in disk.findall("readonly"):
            disk.remove(ro)
    missing = sorted(set(overlays) - seen)
    if missing:
        raise RecoveryError(f"{what}: the recovery point has disk {missing[0]}, the domain definition does not")
    if env_iso:
        _add_cdrom(root, devices, env_iso, cd_bus)
    nics = devices.findall("interface")
    if len(nics) != len(networks):
        raise RecoveryError(f"{what}: the domain has {len(nics)} NICs, the plan places {len(networks)}")
    for nic, net in zip(nics, networks, strict=True):
        nic.set("type", "network")
        for child in list(nic):
            if child.tag in ("source", "target", "virtualport", "vlan", "portForward", "backend", "ip", "route"):
                nic.remove(child)
        mac = nic.find("mac")
        nic.insert(1 if mac is not None else 0, etree.Element("source", network=net))
    for tag in ("serial", "console", "graphics", "video"):
        for el in devices.findall(tag):
            devices.remove(el)
    serial = etree.SubElement(devices, "serial", type="file")
    etree.SubElement(serial, "source", path=console_log)
    etree.SubElement(serial, "target", port="0")
    for c in devices.findall("channel"):
        if c.find("target") is not None and c.find("target").get("name") == AGENT_CHANNEL:
            devices.remove(c)
    ch = etree.SubElement(devices, "channel", type="unix")
    if agent_socket:          # libvirt's own path (state dir + domain name) can pass the 107-byte limit
        etree.SubElement(ch, "source", mode="bind", path=agent_socket)
    etree.SubElement(ch, "target", type="virtio", name=AGENT_CHANNEL)
    return etree.tostring(root, encoding="unicode")


def _set(root, tag: str, text: str) -> None:
    el = root.find(tag)
    if el is None:
        el = etree.Element(tag)
        root.insert(0, el)
    el.text = text


def _add_cdrom(root, devices, iso: str, bus: str | None) -> None:
    machine = (root.find("os/type").get("machine") or "") if root.find("os/type") is not None else ""
    bus = bus or ("sata" if "q35" in machine else "ide")
    prefix = _PREFIX.get(bus, "sd")
    used = {t.get("dev") for t in devices.findall("disk/target")}
    dev = next(prefix + c for c in "abcdefghijklmnopqrstuvwxyz" if prefix + c not in used)
    disk = etree.Element("disk", type="file", device="cdrom")
    etree.SubElement(disk, "driver", name="qemu", type="raw")
    etree.SubElement(disk, "source", file=iso)
    etree.SubElement(disk, "target", dev=dev, bus=bus)
    etree.SubElement(disk, "readonly")
    last = devices.findall("disk")
    if last:
        last[-1].addnext(disk)
    else:
        devices.insert(0, disk)
