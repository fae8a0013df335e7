"""Every real sample: what vmferry reads must equal what the XML says (values checked by hand)."""

from __future__ import annotations

import pytest

from tests.conftest import COT, OVIRT, V2V
from vmferry.summary import summarize

GIB = 1 << 30

# path: (cpus, memory_mib, [(disk_id, controller, model)], [capacities], [(network, nic model)], os cim id,
#        os vendor type, property count, hardware families)
EXPECTED = {
    COT / "vmware.ovf": (2, 1536, [("vmdisk1", "scsi", "virtio lsilogic")], [GIB],
                         [("lanethernet0", "E1000")] * 4, 80, "rhel6_64Guest", 1, ["vmx-08"]),
    COT / "input.ovf": (4, 4096, [("vmdisk1", "scsi", "lsilogic")], [GIB], [("VM Network", "VMXNET3")] * 3,
                        100, "other26xLinux64Guest", 10, ["vmx-07", "vmx-08"]),
    COT / "csr1000v.ovf": (1, 4096, [("vmdisk1", "scsi", "virtio lsilogic")], [GIB],
                           [(f"GigabitEthernet{i}", "VMXNET3 virtio") for i in (1, 2, 3)], 100,
                           "other26xLinux64Guest", 27,
                           ["vmx-08", "vmx-09", "vmx-10", "vmx-11", "Cisco:Internal:VMCloud-01"]),
    COT / "csr1000v_2017.ovf": (1, 4096, [("vmdisk1", "scsi", "VirtualSCSI")], [GIB],
                                [(f"GigabitEthernet{i}", "VMXNET3") for i in (1, 2, 3)], 100,
                                "other3xLinux64Guest", 26, ["vmx-10", "vmx-11", "vmx-13"]),
    COT / "iosv.ovf": (1, 384, [("vios-adventerprisek9-m.vmdk", "ide", "virtio"), ("flash2", "ide", "virtio")],
                       [128 << 20, GIB], [("GigabitEthernet0_0", "E1000"), ("GigabitEthernet0_1", "E1000")],
                       100, "otherGuest", 0, ["vmx-08", "Cisco:Internal:VMCloud-01"]),
    COT / "minimal.ovf": (None, None, [], [], [], None, None, 0, []),
    COT / "ubuntu.2.0.ovf": (1, 512, [("vmdisk1", "sata", "AHCI")], [8 * GIB], [("NAT", "E1000")], 94,
                             "Ubuntu_64", 0, ["virtualbox-2.2"]),
    COT / "v0.9.ovf": (1, 8192, [("vmdisk1", "scsi", "lsilogic")], [GIB], [("bridged", "PCNet32")], 107,
                       "other26xLinux64Guest", 0, ["vmx-04"]),
    COT / "invalid.ovf": (3, None, [(None, "ide", None)], [GIB, 128 << 20],
                          [("This is a rather verbose network name, eh what?", None)], None, None, 2, []),
    V2V / "test-i-ova.ovf": (1, 2048, [("vmdisk1", "scsi", "lsilogicsas")], [32 * GIB],
                             [("VM Network", "E1000")], 74, "windows7_64Guest", 0, ["vmx-08"]),
    V2V / "test-i-ova-two-disks.ovf": (1, 1024, [("vmdisk1", "scsi", "lsilogicsas"),
                                                 ("vmdisk2", "scsi", "lsilogicsas")],
                                       [50 * GIB, 450 * GIB], [("PG-VLAN60", "E1000")], 103,
                                       "windows7Server64Guest", 0, ["vmx-10"]),
    # oVirt/RHV: disks by image path or volume id (no controller Item: the bus is ovf:disk-interface),
    # CPUs = num_of_sockets x cpu_per_socket x threads_per_cpu, NIC subtype = oVirt's interface number,
    # OS = the oVirt name (ovf:id is the VM's UUID, except in the engine's OVA where it is a CIM code)
    OVIRT / "v2v-rhv-windows.ovf": (4, 8192, [("3f0e9d8c-7b6a-4958-8473-625140393a21", "other", "VirtIO"),
                                              ("6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c22", "other", "VirtIO")],
                                    [40 * GIB, 100 * GIB], [("ovirtmgmt", "3")], None, "windows_2016x64", 0, []),
    OVIRT / "v2v-vdsm-ovirt-rhel8.ovf": (2, 3072, [("a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", "other", "VirtIO")],
                                         [20 * GIB], [("ovirtmgmt", "3"), ("storage", "2")], None, "rhel_8x64",
                                         0, []),
    OVIRT / "engine-ova-rhel7.ovf": (8, 4096, [("1a2b3c4d-5e6f-4071-8293-a4b5c6d7e8f9", "scsi", "VirtIO_SCSI"),
                                               ("2b3c4d5e-6f70-4182-93a4-b5c6d7e8f90a", "scsi", "VirtIO_SCSI")],
                                     [10 * GIB, 2 * GIB], [("ovirtmgmt", "3")], 80, "rhel_7x64", 0, []),
    OVIRT / "export-domain-windows2022.ovf": (8, 16384, [("3f0e9d8c-7b6a-4958-8473-625140393a21", "ide", "IDE"),
                                                         ("6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c22", "ide", "IDE")],
                                              [40 * GIB, 100 * GIB], [("ovirtmgmt", "2")], None, "windows_2022",
                                              0, []),
}


@pytest.mark.parametrize("path", list(EXPECTED), ids=lambda p: p.name)
def test_sample_is_read_as_the_xml_says(path):
    cpus, mem, disks, caps, nics, os_id, os_type, nprops, families = EXPECTED[path]
    summary = summarize(path)
    assert len(summary.systems) == 1
    system = summary.systems[0]
    assert system.cpus == cpus
    assert system.memory_mib == mem
    assert [(d.disk_id, d.controller, d.controller_model) for d in system.disks] == disks
    assert [d.capacity_bytes for d in summary.disks] == caps
    assert [(n.network, n.model) for n in system.nics] == nics
    assert system.os.cim_id == os_id
    assert system.os.vendor_type == os_type
    assert len(system.properties) == nprops
    assert system.hardware_family == families


def test_every_sample_has_an_expectation():
    from tests.conftest import ALL_SAMPLES

    assert set(ALL_SAMPLES) == set(EXPECTED)


def test_profiles_of_csr1000v():
    system = summarize(COT / "csr1000v.ovf").systems[0]
    assert [(p.id, p.label, p.default, p.cpus, p.memory_mib) for p in system.profiles] == [
        ("1CPU-4GB", "Small", True, 1, 4096), ("2CPU-4GB", "Medium", False, 2, 4096),
        ("4CPU-4GB", "Large", False, 4, 4096), ("4CPU-8GB", "Large + DRAM Upgrade", False, 4, 8192)]


def test_profiles_bind_nics_in_iosv():
    system = summarize(COT / "iosv.ovf").systems[0]
    assert [(p.id, p.nics) for p in system.profiles] == [
        ("1CPU-384MB-2NIC", 2), ("1CPU-1GB-8NIC", 8), ("1CPU-3GB-10NIC", 10), ("1CPU-3GB-16NIC", 16)]
    assert len(summarize(COT / "iosv.ovf").networks) == 16


def test_input_ovf_default_profile_and_properties():
    system = summarize(COT / "input.ovf").systems[0]
    assert [p.id for p in system.profiles if p.default] == ["4CPU-4GB-3NIC"]
    props = {p.key: p for p in system.properties}
    assert props["login-password"].password is True
    assert props["login-username"].qualifiers == "MaxLen(64)"
    assert props["login-username"].category == "1. Bootstrap Properties"
    assert props["enable-ssh-server"].type == "boolean"
    assert props["enable-ssh-server"].value == "false"
    assert props["domain-name"].user_configurable is True


def test_csr1000v_property_keys_use_class_and_instance():
    system = summarize(COT / "csr1000v.ovf").systems[0]
    keys = [p.full_key for p in system.properties]
    assert "com.cisco.csr1000v.hostname.1" in keys
    hostname = next(p for p in system.properties if p.key == "hostname")
    assert hostname.label == "Router Name"


def test_vmware_property_and_files():
    summary = summarize(COT / "vmware.ovf")
    prop = summary.systems[0].properties[0]
    assert (prop.key, prop.type, prop.value) == ("custom-property", "string", "custom-value")
    assert [(f.id, f.href, f.size) for f in summary.files] == [("file1", "input.vmdk", 152576)]
    assert summary.disks[0].format == "vmdk-stream"


def test_ubuntu_file_without_size_and_vbox_namespace_findings():
    summary = summarize(COT / "ubuntu.2.0.ovf")
    assert summary.ovf_version == "2.x"
    assert summary.files[0].size is None
    rules = [f.rule for f in summary.findings]
    assert rules.count("VMF-OVF-003") == 2  # sasd/epasd URIs end in .xsd


def test_v09_typed_sections_and_versions():
    summary = summarize(COT / "v0.9.ovf")
    assert summary.ovf_version == "0.9"
    assert summary.systems[0].id == "v0.9"
    assert summary.networks[0].description == "The bridged network"


def test_two_disks_of_virt_v2v_with_large_sizes():
    summary = summarize(V2V / "test-i-ova-two-disks.ovf")
    assert [f.size for f in summary.files] == [7804077568, 178523318784]


CSR_KEYS = ["config-version", "hostname", "login-username", "login-password", "mgmt-interface", "mgmt-vlan",
            "mgmt-ipv4-addr", "mgmt-ipv4-gateway", "mgmt-ipv4-network", "pnsc-ipv4-addr", "pnsc-agent-local-port",
            "pnsc-shared-secret-key", "remote-mgmt-ipv4-addr", "enable-scp-server", "enable-ssh-server",
            "privilege-password", "domain-name", "license", "console", "resource-template", "Mode", "MGMT_KEY",
            "CONTROL_PORT", "TUNNEL_PORT", "ic-tunnel-header-size", "ic-tunnel-ipv4-addr", "ic-tunnel-ipv4-gateway"]
CSR_VALUES = {"config-version": "1.0", "mgmt-interface": "GigabitEthernet1", "enable-scp-server": "false",
              "enable-ssh-server": "false", "license": "ax", "resource-template": "default",
              "ic-tunnel-header-size": "148"}

# path: (keys in order, non-empty default values, number of password properties, user-configurable count)
PROPERTIES = {
    COT / "vmware.ovf": (["custom-property"], {"custom-property": "custom-value"}, 0, None),
    COT / "input.ovf": (["login-username", "login-password", "mgmt-ipv4-addr", "mgmt-ipv4-gateway", "hostname",
                         "enable-ssh-server", "enable-http-server", "enable-https-server", "privilege-password",
                         "domain-name"],
                        {"enable-ssh-server": "false", "enable-http-server": "false", "enable-https-server": "false"},
                        2, 10),
    COT / "csr1000v.ovf": (CSR_KEYS, CSR_VALUES, 4, 26),
    COT / "csr1000v_2017.ovf": ([k for k in CSR_KEYS if k != "console"], CSR_VALUES, 4, 25),
    COT / "invalid.ovf": (["jabberwock", "frobozz-is-a-magic-word-I-think"],
                          {"jabberwock": "supercalifragilisticexpialidocious",
                           "frobozz-is-a-magic-word-I-think": "xyzzy"}, 0, None),
}


@pytest.mark.parametrize("path", list(PROPERTIES), ids=lambda p: p.name)
def test_properties_are_read_as_the_xml_says(path):
    keys, values, passwords, configurable = PROPERTIES[path]
    props = summarize(path).systems[0].properties
    assert [p.key for p in props] == keys
    assert {p.key: p.value for p in props if p.value} == values
    assert sum(p.password for p in props) == passwords
    if configurable is not None:
        assert sum(p.user_configurable for p in props) == configurable
