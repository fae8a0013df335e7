"""oVirt / RHV operating-system ids, as rows pointing at the OS table (:mod:`vmferry.tables.os_data`).

oVirt names a guest OS by a unique name (``rhel_8x64``, ``windows_2022``, ``other_linux``) and a number
(``ovirt:id``). Sources, checked by hand:

* names and numbers: ovirt-engine ``packaging/conf/osinfo-defaults.properties`` (``os.<name>.id.value``)
  and its ``backwardCompatibility.*`` names (``RHEL6x64``, ``OtherLinux``, ``Windows2008R2x64``...), which
  virt-v2v still writes in its RHV export-domain OVF (``lib/create_ovf.ml``, ``get_ostype``);
* the numbers virt-v2v writes as ``ovirt:id`` (``get_ovirt_osid``), e.g. 29 for ``windows_2016x64``;
  31 for ``windows_2019x64`` as the engine's OVA writer (``OvfOvaWriter.mapOsId``) names it;
* 37 for ``windows_2022``: virt-v2v's own test expectation for ``-o vdsm``
  (``tests/test-o-vdsm-options.ovf.expected``: ``ovirt:id='37'``, Description ``windows_2022``);
* the display names (``os.<name>.name.value``), which the engine's OVA export writes as the
  OperatingSystemSection's Description (``OsRepository.getOsName``), accepted on read like legacy names;
  those of the newer names (``Windows 2022``, ``Red Hat Enterprise Linux 8.x x64``...) as oVirt's web UI
  labels them.

Numbers of the other newer names (``rhel_8x64``, ``rhel_9x64``, ``windows_11``, newer Debian/Ubuntu) were
not found in a source that settles them, so a bare ``ovirt:id`` of those is not mapped (virt-v2v and the
engine write the name beside it).
"""

from __future__ import annotations

from vmferry.tables.os_data import ROWS, OsRow

# oVirt name -> (OS table row key, ovirt:id or None, legacy and display names accepted on read)
OVIRT_OS: dict[str, tuple[str, int | None, tuple[str, ...]]] = {
    "other": ("other-64", 0, ("Other", "Unassigned", "Other OS")),
    "other_linux": ("linux-64", 5, ("OtherLinux", "Linux")),
    "rhel_3": ("rhel-32", 9, ("RHEL3", "REHL3", "Red Hat Enterprise Linux 3.x")),
    "rhel_3x64": ("rhel-64", 15, ("RHEL3x64", "Red Hat Enterprise Linux 3.x x64")),
    "rhel_4": ("rhel-32", 8, ("RHEL4", "Red Hat Enterprise Linux 4.x")),
    "rhel_4x64": ("rhel-64", 14, ("RHEL4x64", "Red Hat Enterprise Linux 4.x x64")),
    "rhel_5": ("rhel5-32", 7, ("RHEL5", "Red Hat Enterprise Linux 5.x")),
    "rhel_5x64": ("rhel5-64", 13, ("RHEL5x64", "Red Hat Enterprise Linux 5.x x64")),
    "rhel_6": ("rhel6-32", 18, ("RHEL6", "Red Hat Enterprise Linux 6.x")),
    "rhel_6x64": ("rhel6-64", 19, ("RHEL6x64", "Red Hat Enterprise Linux 6.x x64")),
    "rhel_7x64": ("rhel7-64", 24, ("Red Hat Enterprise Linux 7.x x64",)),
    "rhel_8x64": ("rhel8-64", None, ("Red Hat Enterprise Linux 8.x x64",)),
    "rhel_9x64": ("rhel9-64", None, ("Red Hat Enterprise Linux 9.x x64",)),
    "sles_11": ("sles11-64", 1193, ("SUSE Linux Enterprise Server 11",)),
    "sles_12": ("sles12-64", None, ()),
    "sles_15": ("sles15-64", None, ()),
    "debian_7": ("debian-64", 1300, ("Debian 7",)),
    "debian_8": ("debian8-64", None, ()),
    "debian_9": ("debian9-64", None, ()),
    "debian_10": ("debian10-64", None, ()),
    "debian_11": ("debian11-64", None, ()),
    "debian_12": ("debian12-64", None, ()),
    "ubuntu_12_04": ("ubuntu-64", 1252, ("Ubuntu Precise Pangolin LTS",)),
    "ubuntu_12_10": ("ubuntu-64", 1253, ("Ubuntu Quantal Quetzal",)),
    "ubuntu_13_04": ("ubuntu-64", 1254, ("Ubuntu Raring Ringtails",)),
    "ubuntu_13_10": ("ubuntu-64", 1255, ("Ubuntu Saucy Salamander",)),
    "ubuntu_14_04": ("ubuntu-64", 1256, ("Ubuntu Trusty Tahr LTS",)),
    "ubuntu_16_04": ("ubuntu16.04-64", None, ()),
    "ubuntu_18_04": ("ubuntu18.04-64", None, ()),
    "ubuntu_20_04": ("ubuntu20.04-64", None, ()),
    "ubuntu_22_04": ("ubuntu22.04-64", None, ()),
    "ubuntu_24_04": ("ubuntu24.04-64", None, ()),
    "freebsd": ("freebsd-32", 1500, ("FreeBSD 9.2",)),
    "freebsdx64": ("freebsd-64", 1501, ("FreeBSD 9.2 x64",)),
    "windows_xp": ("winxp-32", 1, ("WindowsXP", "Windows XP")),
    "windows_2003": ("win2003-32", 3, ("Windows2003", "Windows 2003")),
    "windows_2003x64": ("win2003-64", 10, ("Windows2003x64", "Windows 2003 x64")),
    "windows_2008": ("win2008-32", 4, ("Windows2008", "Windows 2008")),
    "windows_2008x64": ("win2008-64", 16, ("Windows2008x64", "Windows 2008 x64")),
    "windows_2008R2x64": ("win2008r2-64", 17, ("Windows2008R2x64", "Windows 2008 R2 x64")),
    "windows_7": ("win7-32", 11, ("Windows7", "Windows 7")),
    "windows_7x64": ("win7-64", 12, ("Windows7x64", "Windows 7 x64")),
    "windows_8": ("win8-32", 20, ("Windows 8",)),
    "windows_8x64": ("win8-64", 21, ("Windows 8 x64",)),
    "windows_2012x64": ("win2012-64", 23, ("Windows 2012 x64",)),
    "windows_2012R2x64": ("win2012r2-64", 25, ("Windows 2012R2 x64",)),
    "windows_10": ("win10-32", 26, ("Windows 10",)),
    "windows_10x64": ("win10-64", 27, ("Windows 10 x64",)),
    "windows_2016x64": ("win2016-64", 29, ("Windows 2016 x64",)),
    "windows_2019x64": ("win2019-64", 31, ("Windows 2019 x64",)),
    "windows_2022": ("win2022-64", 37, ("Windows 2022",)),
    "windows_11": ("win11-64", None, ("Windows 11",)),
}

_ROW_BY_KEY = {row.key: row for row in ROWS}
_BY_NAME = {name.casefold(): name for name in OVIRT_OS}
_BY_NAME.update({alias.casefold(): name for name, (_, _, aliases) in OVIRT_OS.items() for alias in aliases})
_BY_NUMBER = {number: name for name, (_, number, _) in OVIRT_OS.items() if number is not None}


def ovirt_name(value: str | int | None) -> str | None:
    """The oVirt OS name of a name (any case, legacy names too) or an ``ovirt:id`` number, or None."""
    if value is None:
        return None
    text = str(value).strip()
    if text.isdigit():
        return _BY_NUMBER.get(int(text))
    return _BY_NAME.get(text.casefold())


def from_ovirt(value: str | int | None) -> OsRow | None:
    """The OS table row of an oVirt OS name or number (``windows_2022`` → Windows Server 2022)."""
    name = ovirt_name(value)
    return _ROW_BY_KEY.get(OVIRT_OS[name][0]) if name else None
