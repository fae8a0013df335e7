"""Names: ids and names from the descriptor that would make bad file names or bad output lines (300
characters, slashes, NUL, newlines, control characters, unicode direction and invisible characters)."""

from __future__ import annotations

from tests.hostile.kit import BASE_OVF, INPUT_FILES, INPUT_OVF, Work, base_members, variants

SYSTEM = b'<ovf:VirtualSystem ovf:id="vmw">'


def _system_id(value: str) -> bytes:
    return Work.sub(BASE_OVF, SYSTEM, f'<ovf:VirtualSystem ovf:id="{value}">'.encode())


def _attr(old: bytes, new: str, base: bytes = BASE_OVF) -> bytes:
    return Work.sub(base, old, new.encode())


def _folder(ovf: bytes):
    return lambda w: w.folder(ovf)


def _ova(ovf: bytes):
    return lambda w: w.ova(base_members(ovf))


def _input(ovf: bytes):
    return lambda w: w.folder(ovf, files=INPUT_FILES)


LONG = "v" * 300
TRICKS = {
    "newline": "&#10;", "carriage-return": "&#13;", "tab": "&#9;", "escape": "&#27;[31m", "del": "&#127;",
    "c1-control": "&#133;", "rtl-override": "&#x202E;", "zero-width-space": "&#x200B;",
    "bom-inside": "&#xFEFF;", "line-separator": "&#x2028;",
}

CASES = {
    "system-id-300-chars": _folder(_system_id(LONG)),
    "system-id-300-chars-ova": _ova(_system_id(LONG)),
    "system-id-300-multibyte": _folder(_system_id("é" * 200)),
    "system-id-slash": _folder(_system_id("a/b")),
    "system-id-dotdot-slash": _folder(_system_id("../../host/evil")),
    "system-id-absolute": _folder(_system_id("/tmp/vmferry-evil")),
    "system-id-backslash": _folder(_system_id("..\\evil")),
    "system-id-dot": _folder(_system_id(".")),
    "system-id-dotdot": _folder(_system_id("..")),
    "system-name-newline": _folder(_attr(b"<ovf:Name>vmw</ovf:Name>", "<ovf:Name>vmw&#10;vmferry: error: forged</ovf:Name>")),
    "disk-id-300-chars": _folder(_attr(b'ovf:diskId="vmdisk1"', f'ovf:diskId="{LONG}"')
                                 .replace(b"ovf:/disk/vmdisk1", f"ovf:/disk/{LONG}".encode())),
    "file-id-newline": _folder(_attr(b'ovf:id="file1"', 'ovf:id="file&#10;1"')
                               .replace(b'ovf:fileRef="file1"', b'ovf:fileRef="file&#10;1"')),
    "network-name-newline": _folder(_attr(b'ovf:name="lanethernet0"', 'ovf:name="lan&#10;vmferry: error: x"')),
    "network-name-300": _folder(_attr(b'ovf:name="lanethernet0"', f'ovf:name="{LONG}"')),
    "property-key-newline": _input(_attr(b'ovf:key="hostname"', 'ovf:key="host&#10;name"', INPUT_OVF)),
    "property-key-300": _input(_attr(b'ovf:key="hostname"', f'ovf:key="{LONG}"', INPUT_OVF)),
    "element-name-5000": _folder(_attr(b"<rasd:ElementName>Hard disk 1</rasd:ElementName>",
                                       f"<rasd:ElementName>{'h' * 5000}</rasd:ElementName>")),
}
for key, text in TRICKS.items():
    CASES[f"system-id-{key}"] = _folder(_system_id(f"vm{text}x"))
    CASES[f"element-name-{key}"] = _folder(_attr(b"<rasd:ElementName>Hard disk 1</rasd:ElementName>",
                                                 f"<rasd:ElementName>Hard{text}disk</rasd:ElementName>"))

variants("names", "descriptor", CASES)
