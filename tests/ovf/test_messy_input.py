"""Real files are messy: template placeholders where numbers belong, elements missing, attributes
dropped, wrong namespaces. Every command's library call either works or raises a VmferryError (one
line for the user); none crashes. Mutations of every sample, with a fixed seed."""

from __future__ import annotations

import random

import pytest
from lxml import etree

from tests.conftest import ALL_SAMPLES
from vmferry.errors import VmferryError

MUTATIONS = 20
PLACEHOLDERS = ("${disk_size}", "TBD", "", "-1", "1e400", "0x10", "NaN", "  42  ", "999999999999999999999999")


def mutate(data: bytes, rng: random.Random) -> bytes:
    root = etree.fromstring(data)
    elements = [e for e in root.iter() if isinstance(e.tag, str)]
    for _ in range(rng.randint(1, 4)):
        el = rng.choice(elements)
        choice = rng.randrange(5)
        if choice == 0 and el.getparent() is not None:            # drop an element
            el.getparent().remove(el)
            elements = [e for e in root.iter() if isinstance(e.tag, str)]
        elif choice == 1 and el.attrib:                             # drop an attribute
            del el.attrib[rng.choice(list(el.attrib))]
        elif choice == 2 and el.attrib:                             # a placeholder in an attribute
            el.set(rng.choice(list(el.attrib)), rng.choice(PLACEHOLDERS))
        elif choice == 3 and el.text and el.text.strip():           # a placeholder in text
            el.text = rng.choice(PLACEHOLDERS)
        elif choice == 4:                                           # a wrong namespace on an element
            local = el.tag.rsplit("}", 1)[-1]
            el.tag = f"{{http://example.com/wrong/ns}}{local}"
    return etree.tostring(root)


@pytest.mark.parametrize("src", ALL_SAMPLES, ids=lambda p: p.name)
def test_mutated_samples_never_crash(tmp_path, src):
    from vmferry.check import check_package
    from vmferry.conversion import convert_package
    from vmferry.summary import summarize
    from vmferry.targets.kvm import convert_to_kvm
    from vmferry.validate import validate_package

    rng = random.Random(f"{src.name}-20261122")
    data = src.read_bytes()
    for n in range(MUTATIONS):
        path = tmp_path / f"m{n}.ovf"
        path.write_bytes(mutate(data, rng))
        calls = [
            (summarize, (path,), {}),
            (validate_package, (path,), {"descriptor_only": True}),
            (check_package, (path, "vmware"), {"descriptor_only": True, "guest": False}),
            (convert_package, (path, "dmtf", tmp_path / f"m{n}-dmtf.ovf"), {"descriptor_only": True}),
            (convert_package, (path, "virtualbox", tmp_path / f"m{n}-vbox.ovf"), {"descriptor_only": True}),
            (convert_to_kvm, (path, tmp_path / f"m{n}-kvm"), {"descriptor_only": True, "domain_type": "qemu"}),
        ]
        for call, args, kwargs in calls:
            try:
                call(*args, **kwargs)
            except VmferryError as exc:
                assert "\n" not in str(exc)
