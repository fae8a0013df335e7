"""XML: entities, DTDs, size, element and attribute counts, nesting, encodings, truncation."""

from __future__ import annotations

from tests.hostile.kit import BASE_OVF, INPUT_FILES, INPUT_OVF, Work, base_members, case, variants

NS = b'xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"'
HEAD = b'<?xml version="1.0" encoding="UTF-8"?>\n'
CLOSE = b"</ovf:Envelope>"


def _inside_envelope(extra: bytes, where: bytes = b"<ovf:References>") -> bytes:
    """The VMware sample with ``extra`` inserted right after ``where``."""
    return Work.sub(BASE_OVF, where, where + extra)


def _references(extra: bytes) -> bytes:
    return _inside_envelope(extra)


def _with_doctype(doctype: bytes, body_ref: bytes = b"") -> bytes:
    head, _, rest = BASE_OVF.partition(b"?>")
    return head + b"?>\n" + doctype + rest.replace(b"<ovf:Info>", b"<ovf:Info>" + body_ref, 1)


def _folder(ovf: bytes, **kw):
    return lambda w: w.folder(ovf, **kw)


def _ova(ovf: bytes):
    return lambda w: w.ova(base_members(ovf))


LAUGHS = (b'<!DOCTYPE ovf:Envelope [<!ENTITY l0 "lol">'
          + b"".join(b'<!ENTITY l%d "%s">' % (i, b"".join(b"&l%d;" % (i - 1) for _ in range(10))) for i in range(1, 10))
          + b"]>\n")
QUADRATIC = b'<!DOCTYPE ovf:Envelope [<!ENTITY big "' + b"x" * 100_000 + b'">]>\n'


@case("xml", "descriptor")
def external_entity_host_file(w: Work):
    return w.folder(_with_doctype(b'<!DOCTYPE ovf:Envelope [<!ENTITY xxe SYSTEM "file://%s">]>\n'
                                  % str(w.host_file).encode(), b"&xxe;"), host=True)


@case("xml", "descriptor")
def external_entity_in_ova(w: Work):
    return w.ova(base_members(_with_doctype(b'<!DOCTYPE ovf:Envelope [<!ENTITY xxe SYSTEM "%s">]>\n'
                                            % str(w.host_file).encode(), b"&xxe;")), host=True)


@case("xml", "descriptor")
def parameter_entity_external_dtd(w: Work):
    return w.folder(_with_doctype(b'<!DOCTYPE ovf:Envelope [<!ENTITY %% p SYSTEM "file://%s"> %%p;]>\n'
                                  % str(w.host_file).encode()), host=True)


@case("xml", "descriptor")
def doctype_system_dtd(w: Work):
    return w.folder(_with_doctype(b'<!DOCTYPE ovf:Envelope SYSTEM "%s">\n' % str(w.host_file).encode()),
                    host=True)


@case("xml", "descriptor")
def doctype_after_long_comment(w: Work):
    """The DOCTYPE comes after 100 KB of comment, past any look at the first bytes."""
    pad = b"<!--" + b"-x" * 50_000 + b"-->\n"
    return w.folder(_with_doctype(pad + b'<!DOCTYPE ovf:Envelope [<!ENTITY xxe SYSTEM "file://%s">]>\n'
                                  % str(w.host_file).encode(), b"&xxe;"), host=True)


variants("xml", "descriptor", {
    "billion-laughs": _folder(_with_doctype(LAUGHS, b"&l9;")),
    "billion-laughs-in-ova": _ova(_with_doctype(LAUGHS, b"&l9;")),
    "quadratic-blowup": _folder(_with_doctype(QUADRATIC, b"&big;" * 20_000)),
    "laughs-in-attribute": _folder(_with_doctype(LAUGHS).replace(b'ovf:id="file1"', b'ovf:id="&l9;"', 1)),
    "laughs-after-comment": _folder(_with_doctype(b"<!--" + b"y" * 70_000 + b"-->" + LAUGHS, b"&l9;")),
    "undeclared-entity": _folder(_inside_envelope(b"&nothere;")),
    "nul-character-reference": _folder(_inside_envelope(b"&#0;", b"<ovf:Info>")),
    "surrogate-character-reference": _folder(_inside_envelope(b"&#xD800;", b"<ovf:Info>")),
    "raw-control-byte": _folder(_inside_envelope(b"\x01\x02", b"<ovf:Info>")),
    "non-utf8-bytes": _folder(_inside_envelope(b"caf\xe9 \xff\xfe", b"<ovf:Info>")),
    "non-utf8-in-ova": _ova(_inside_envelope(b"\xc3\x28\xa0\xa1", b"<ovf:Info>")),
    "unknown-encoding": _folder(BASE_OVF.replace(b'encoding="UTF-8"', b'encoding="x-vmferry-evil"', 1)
                                if b'encoding="UTF-8"' in BASE_OVF else
                                b'<?xml version="1.0" encoding="x-vmferry-evil"?>\n' + BASE_OVF.split(b"?>", 1)[1]),
    "utf16-declared-utf8-bytes": _folder(b'<?xml version="1.0" encoding="UTF-16"?>\n' + BASE_OVF.split(b"?>", 1)[1]),
    "truncated-half": _folder(BASE_OVF[: len(BASE_OVF) // 2]),
    "truncated-in-tag": _folder(BASE_OVF[: BASE_OVF.index(b"<ovf:DiskSection") + 9]),
    "truncated-in-ova": _ova(BASE_OVF[:4000]),
    "only-declaration": _folder(HEAD),
    "empty-descriptor": _folder(b""),
    "whitespace-and-bom": _folder(b"\xef\xbb\xbf   \n\n"),
    "two-roots": _folder(BASE_OVF + b"<ovf:Envelope " + NS + b"/>"),
    "duplicate-attribute": _folder(BASE_OVF.replace(b'ovf:id="file1"', b'ovf:id="file1" ovf:id="file2"', 1)),
    "undefined-prefix": _folder(_inside_envelope(b"<evil:File evil:href='x'/>")),
    "unclosed-cdata": _folder(_inside_envelope(b"<![CDATA[ never closed", b"<ovf:Info>")),
    "not-an-envelope": _folder(HEAD + b"<html><body>not OVF</body></html>"),
    "envelope-in-foreign-namespace": _folder(HEAD + b'<Envelope xmlns="urn:evil"><References/></Envelope>'),
    "huge-element-name": _folder(_inside_envelope(b"<" + b"n" * 60_000 + b"/>")),
    "text-node-past-10mb": _folder(_inside_envelope(b"t" * 10_500_000, b"<ovf:Info>")),
    "descriptor-of-20mb": _folder(_inside_envelope(b"<!--" + b"c" * 20_000_000 + b"-->")),
    "deep-nesting-10000": _folder(_inside_envelope(b"<x>" * 10_000 + b"</x>" * 10_000)),
    "deep-nesting-100": _folder(_inside_envelope(b"<ovf:Info>" * 100 + b"</ovf:Info>" * 100,
                                                 b"<ovf:DiskSection>")),
    "deep-nesting-300": _folder(_inside_envelope(b"<ovf:Info>" * 300 + b"</ovf:Info>" * 300,
                                                 b"<ovf:DiskSection>")),
    "attributes-200000": _folder(BASE_OVF.replace(b"<ovf:References>", b"<ovf:References "
                                                  + b" ".join(b'a%d="1"' % i for i in range(200_000)) + b">", 1)),
    "namespace-declarations-50000": _folder(BASE_OVF.replace(b"<ovf:References>", b"<ovf:References "
                                            + b" ".join(b'xmlns:p%d="urn:p%d"' % (i, i) for i in range(50_000))
                                            + b">", 1)),
    "elements-1000000": _folder(_inside_envelope(b"<x/>" * 1_000_000, b"<ovf:Info>")),
    "files-50000": _folder(_references(b"".join(b'<ovf:File ovf:href="f%d.vmdk" ovf:id="f%d" ovf:size="1"/>'
                                                 % (i, i) for i in range(50_000)))),
    "disks-50000": _folder(_inside_envelope(
        b"".join(b'<ovf:Disk ovf:capacity="1" ovf:diskId="d%d" ovf:format="http://www.vmware.com/interfaces/'
                 b'specifications/vmdk.html#streamOptimized"/>' % i for i in range(50_000)),
        b"</ovf:Info>")),
    "files-and-disks-50000": _folder(_references(
        b"".join(b'<ovf:File ovf:href="f%d.vmdk" ovf:id="f%d" ovf:size="1"/>' % (i, i) for i in range(50_000)))
        .replace(b"</ovf:DiskSection>", b"".join(
            b'<ovf:Disk ovf:capacity="1" ovf:diskId="d%d" ovf:fileRef="f%d" ovf:format="http://www.vmware.com/'
            b'interfaces/specifications/vmdk.html#streamOptimized"/>' % (i, i) for i in range(50_000))
            + b"</ovf:DiskSection>", 1)),
    "networks-50000": _folder(BASE_OVF.replace(b"</ovf:NetworkSection>", b"".join(
        b'<ovf:Network ovf:name="n%d"><ovf:Description>x</ovf:Description></ovf:Network>' % i
        for i in range(50_000)) + b"</ovf:NetworkSection>", 1)),
    "items-50000": _folder(BASE_OVF.replace(b"</ovf:VirtualHardwareSection>", b"".join(
        b"<ovf:Item><rasd:ElementName>x</rasd:ElementName><rasd:InstanceID>%d</rasd:InstanceID>"
        b"<rasd:ResourceType>10</rasd:ResourceType></ovf:Item>" % (100 + i) for i in range(50_000))
        + b"</ovf:VirtualHardwareSection>", 1)),
    "properties-50000": _folder(INPUT_OVF.replace(b"</ovf:ProductSection>", b"".join(
        b'<ovf:Property ovf:key="k%d" ovf:type="string" ovf:value="v"/>' % i for i in range(50_000))
        + b"</ovf:ProductSection>", 1), files=INPUT_FILES),
})
