"""XSD validation against the DMTF envelope schemas shipped in ``vmferry/ovf/schemas`` (offline).

OVF 1.x descriptors are validated against DSP8023 1.1.1, OVF 2.x against DSP8023 2.0.1. There is no
DMTF schema for VMware's pre-standard 0.9. Schema loading takes a moment, so a loaded schema is kept
for the life of the process (a cache, not shared mutable state).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from lxml import etree

from vmferry.errors import SchemaInvalid
from vmferry.findings import Finding

SCHEMA_FILES = {"1.x": ("ovf-1.1", "dsp8023_1.1.1.xsd"), "2.x": ("ovf-2.x", "dsp8023_2.0.1.xsd")}


class _LocalOnly(etree.Resolver):
    """Map the DMTF/W3C schema URLs to the shipped copies; refuse every other fetch."""

    def __init__(self, folder: str) -> None:
        super().__init__()
        self.folder = folder

    def resolve(self, url, pubid, context):
        name = url.rsplit("/", 1)[-1]
        local = f"{self.folder}/{name}"
        import os

        if os.path.exists(local):
            return self.resolve_filename(local, context)
        return None


@lru_cache(maxsize=2)
def load_schema(version: str) -> etree.XMLSchema:
    if version not in SCHEMA_FILES:
        raise SchemaInvalid(f"no DMTF schema for OVF {version}")
    folder_name, main = SCHEMA_FILES[version]
    folder = str(resources.files("vmferry.ovf") / "schemas" / folder_name)
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(_LocalOnly(folder))
    doc = etree.parse(f"{folder}/{main}", parser)
    return etree.XMLSchema(doc)


def schema_findings(envelope, *, strict: bool = True) -> list[Finding]:
    """XSD violations of ``envelope`` as findings, or an info finding when the version has no schema.

    ``strict``: every violation is an error (rule VMF-XSD-001, DMTF conformance). Otherwise each is a
    warning of its class of deviation (:mod:`vmferry.ovf.deviations`)."""
    if envelope.version not in SCHEMA_FILES:
        return [Finding("VMF-XSD-002", "info", f"no DMTF schema exists for OVF {envelope.version}; XSD "
                        "validation skipped", envelope.path or "")]
    schema = load_schema(envelope.version)
    where = envelope.path or "<descriptor>"
    if not strict:
        from vmferry.ovf.deviations import deviation_findings, with_standard_namespaces

        # misspelt DMTF namespaces are reported by VMF-OVF-002/003; the schema judges the rest
        tree = with_standard_namespaces(envelope)
        if schema.validate(tree):
            return []
        return deviation_findings(envelope.version, tree.getroot(), schema.error_log, where, _shorten_ns)
    if schema.validate(envelope.tree):
        return []
    out = []
    for err in schema.error_log:
        msg = " ".join(err.message.split())
        msg = _shorten_ns(msg)
        out.append(Finding("VMF-XSD-001", "error", f"schema: {msg}", f"{where} (line {err.line})"))
    return out


def _shorten_ns(text: str) -> str:
    import re

    from vmferry.ovf.names import role_of

    def repl(m):
        role = role_of(m.group(1))
        return f"{role}:" if role else m.group(0)

    return re.sub(r"\{([^}]+)\}", repl, text)
