"""Resources and numbers: unit exponents, integers past Python's digit limit, negative, NaN and
huge quantities, capacities bound to properties that loop."""

from __future__ import annotations

from tests.hostile.kit import BASE_OVF, INPUT_FILES, INPUT_OVF, Work, base_members, variants

CAP = b'ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^30"'
MEM = b"<rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>"
MEM_QTY = b"<rasd:VirtualQuantity>1536</rasd:VirtualQuantity>"
CPU_QTY = b"<rasd:VirtualQuantity>2</rasd:VirtualQuantity>"
DIGITS = "9" * 5000


def _cap(value: str, units: str = "byte * 2^30"):
    return Work.sub(BASE_OVF, CAP, f'ovf:capacity="{value}" ovf:capacityAllocationUnits="{units}"'.encode())


def _mem(qty: str = "1536", units: str = "byte * 2^20"):
    ovf = Work.sub(BASE_OVF, MEM, f"<rasd:AllocationUnits>{units}</rasd:AllocationUnits>".encode())
    return Work.sub(ovf, MEM_QTY, f"<rasd:VirtualQuantity>{qty}</rasd:VirtualQuantity>".encode())


def _folder(ovf: bytes):
    return lambda w: w.folder(ovf)


def _ova(ovf: bytes):
    return lambda w: w.ova(base_members(ovf))


def _input(ovf: bytes):
    return lambda w: w.folder(ovf, files=INPUT_FILES)


def _prop_cap(value_a: str, value_b: str):
    """capacity="${a}" with properties a and b whose values refer to each other."""
    ovf = Work.sub(INPUT_OVF, b'ovf:capacity="1"', b'ovf:capacity="${disk_a}"')
    return Work.sub(ovf, b"</ovf:ProductSection>",
                    f'<ovf:Property ovf:key="disk_a" ovf:type="uint64" ovf:value="{value_a}"/>'
                    f'<ovf:Property ovf:key="disk_b" ovf:type="uint64" ovf:value="{value_b}"/>'
                    "</ovf:ProductSection>".encode())


CHAIN = " * ".join(["byte"] + ["2^80"] * 40)

variants("numbers", "descriptor", {
    "units-2-80-chained": _folder(_cap("1", CHAIN)),
    "units-2-80-chained-in-ova": _ova(_cap("1", CHAIN)),
    "units-exponent-huge": _folder(_cap("1", "byte * 2^99999999999")),
    "units-exponent-5000-digits": _folder(_cap("1", f"byte * 2^{DIGITS}")),
    "units-base-5000-digits": _folder(_cap("1", f"byte * {DIGITS}")),
    "units-base-5000-digits-exponent": _folder(_cap("1", f"byte * {DIGITS}^2")),
    "units-10-to-40": _folder(_cap("1", "byte * 10^40")),
    "units-negative-exponent": _folder(_cap("1", "byte * 2^-30")),
    "units-zero-factor": _folder(_cap("1", "byte * 0")),
    "units-many-factors": _folder(_cap("1", " * ".join(["byte"] + ["2"] * 100_000))),
    "capacity-5000-digits": _folder(_cap(DIGITS)),
    "capacity-5000-digits-in-ova": _ova(_cap(DIGITS)),
    "capacity-minus-one": _folder(_cap("-1")),
    "capacity-minus-one-bytes": _folder(_cap("-1", "byte")),
    "capacity-nan": _folder(_cap("NaN")),
    "capacity-infinity": _folder(_cap("inf")),
    "capacity-1e400": _folder(_cap("1e400")),
    "capacity-2-to-64-bytes": _folder(_cap(str(1 << 64), "byte")),
    "capacity-times-units-too-large": _folder(_cap("1099511627776", "byte * 2^40")),
    "capacity-leading-zeros-5000": _folder(_cap("0" * 5000 + "1")),
    "size-5000-digits": _folder(Work.sub(BASE_OVF, b'ovf:size="152576"', f'ovf:size="{DIGITS}"'.encode())),
    "size-negative": _folder(Work.sub(BASE_OVF, b'ovf:size="152576"', b'ovf:size="-152576"')),
    "populated-size-5000-digits": _folder(Work.sub(BASE_OVF, b'ovf:populatedSize="293011456"',
                                                   f'ovf:populatedSize="{DIGITS}"'.encode())),
    "chunk-size-zero": _folder(Work.sub(BASE_OVF, b'ovf:size="152576"', b'ovf:size="152576" ovf:chunkSize="0"')),
    "chunk-size-negative": _folder(Work.sub(BASE_OVF, b'ovf:size="152576"', b'ovf:size="152576" ovf:chunkSize="-1"')),
    "chunk-size-5000-digits": _folder(Work.sub(BASE_OVF, b'ovf:size="152576"',
                                               f'ovf:size="152576" ovf:chunkSize="{DIGITS}"'.encode())),
    "memory-units-2-80-chained": _folder(_mem("1", CHAIN)),
    "memory-5000-digits": _folder(_mem(DIGITS)),
    "memory-negative": _folder(_mem("-1536")),
    "memory-nan": _folder(_mem("nan")),
    "memory-exabytes": _folder(_mem("1", "byte * 2^70")),
    "memory-units-base-5000-digits": _folder(_mem("1", f"byte * {DIGITS}")),
    "cpus-5000-digits": _folder(Work.sub(BASE_OVF, CPU_QTY, f"<rasd:VirtualQuantity>{DIGITS}</rasd:VirtualQuantity>"
                                         .encode())),
    "cpus-ten-billion": _folder(Work.sub(BASE_OVF, CPU_QTY, b"<rasd:VirtualQuantity>10000000000</rasd:VirtualQuantity>")),
    "cpus-negative": _folder(Work.sub(BASE_OVF, CPU_QTY, b"<rasd:VirtualQuantity>-2</rasd:VirtualQuantity>")),
    "cores-per-socket-5000-digits": _folder(Work.sub(BASE_OVF, b'<vmw:CoresPerSocket ovf:required="false">2<',
                                                     f'<vmw:CoresPerSocket ovf:required="false">{DIGITS}<'.encode())),
    "reservation-5000-digits": _folder(Work.sub(BASE_OVF, MEM_QTY, MEM_QTY + f"<rasd:Reservation>{DIGITS}"
                                                "</rasd:Reservation>".encode())),
    "instance-id-5000-digits": _folder(Work.sub(BASE_OVF, b"<rasd:InstanceID>1</rasd:InstanceID>",
                                                f"<rasd:InstanceID>{DIGITS}</rasd:InstanceID>".encode())),
    "address-on-parent-5000-digits": _folder(Work.sub(BASE_OVF, b"<rasd:AddressOnParent>0</rasd:AddressOnParent>",
                                                      f"<rasd:AddressOnParent>{DIGITS}</rasd:AddressOnParent>"
                                                      .encode())),
    "os-id-5000-digits": _folder(Work.sub(BASE_OVF, b'<ovf:OperatingSystemSection ovf:id="80"',
                                          f'<ovf:OperatingSystemSection ovf:id="{DIGITS}"'.encode())),
    "hardware-family-5000-digits": _folder(Work.sub(BASE_OVF, b"vmx-08", f"vmx-{DIGITS}".encode())),
    "property-key-index-5000-digits": _input(Work.sub(INPUT_OVF, b"</ovf:ProductSection>",
                                             f'<ovf:Property ovf:key="vami.ip{DIGITS}.vm" ovf:type="string" '
                                             'ovf:value="10.0.0.1"/></ovf:ProductSection>'.encode())),
    "property-vmferry-net-index-5000-digits": _input(Work.sub(INPUT_OVF, b"</ovf:ProductSection>",
                                                     f'<ovf:Property ovf:key="vmferry.net.{DIGITS}.address" '
                                                     'ovf:type="string" ovf:value="10.0.0.1/24"/></ovf:ProductSection>'
                                                     .encode())),
    "property-uint-5000-digits": _input(Work.sub(INPUT_OVF, b"</ovf:ProductSection>",
                                        f'<ovf:Property ovf:key="n" ovf:type="uint64" ovf:value="{DIGITS}"/>'
                                        "</ovf:ProductSection>".encode())),
    "capacity-property-loop": _input(_prop_cap("${disk_b}", "${disk_a}")),
    "capacity-property-self": _input(_prop_cap("${disk_a}", "1")),
    "capacity-property-5000-digits": _input(_prop_cap(DIGITS, "1")),
    "capacity-property-negative": _input(_prop_cap("-1", "1")),
    "properties-20000": _input(Work.sub(INPUT_OVF, b"</ovf:ProductSection>", b"".join(
        b'<ovf:Property ovf:key="p%d" ovf:type="string" ovf:value="v"/>' % i for i in range(20_000))
        + b"</ovf:ProductSection>")),
    "profiles-20000": _input(Work.sub(INPUT_OVF, b"</ovf:DeploymentOptionSection>", b"".join(
        b'<ovf:Configuration ovf:id="c%d"><ovf:Label>c</ovf:Label><ovf:Description>c</ovf:Description>'
        b"</ovf:Configuration>" % i for i in range(20_000)) + b"</ovf:DeploymentOptionSection>")),
    "systems-5000": _folder(Work.sub(BASE_OVF, b'<ovf:VirtualSystem ovf:id="vmw">', b"".join(
        b'<ovf:VirtualSystem ovf:id="s%d"><ovf:Info>x</ovf:Info></ovf:VirtualSystem>' % i for i in range(5000))
        + b'<ovf:VirtualSystem ovf:id="vmw">')),
    "subtypes-100000": _folder(Work.sub(BASE_OVF, b"<rasd:ResourceSubType>virtio lsilogic</rasd:ResourceSubType>",
                                        b"<rasd:ResourceSubType>" + b"lsilogic " * 100_000 + b"</rasd:ResourceSubType>")),
})
