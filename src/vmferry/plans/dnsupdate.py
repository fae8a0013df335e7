"""RFC 2136 dynamic updates signed with TSIG: make one rrset of a zone hold exactly the planned values."""

from __future__ import annotations

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import dns.update

from vmferry.errors import PlanError
from vmferry.plans.model import SiteDns


def current(server: SiteDns, name: str, rtype: str) -> list[str]:
    """The values the server holds now for ``name``/``rtype`` (TCP query, sorted)."""
    query = dns.message.make_query(name + ".", rtype)
    try:
        reply = dns.query.tcp(query, server.server, port=server.port, timeout=5)
    except (dns.exception.DNSException, OSError) as exc:
        raise PlanError(f"cannot query DNS server {server.server}:{server.port}: {exc}") from exc
    values = []
    for rrset in reply.answer:
        if rrset.rdtype == dns.rdatatype.from_text(rtype) and rrset.name == dns.name.from_text(name + "."):
            values += [r.to_text() for r in rrset]
    return sorted(values)


def ensure_rrset(server: SiteDns, zone: str, name: str, rtype: str, values: list[str], ttl: int) -> str:
    """Replace (or delete) the rrset unless it already holds ``values``. Returns what was done."""
    if current(server, name, rtype) == sorted(values):
        return "already in place"
    if server.tsig is None:
        raise PlanError(f"DNS server {server.server}:{server.port} has no TSIG key configured for updates")
    try:
        keyring = dns.tsigkeyring.from_text({server.tsig.name: server.tsig.secret})
        update = dns.update.Update(zone + ".", keyring=keyring, keyname=dns.name.from_text(server.tsig.name),
                                   keyalgorithm=dns.name.from_text(server.tsig.algorithm))
        owner = dns.name.from_text(name + ".")
        if values:
            update.replace(owner, ttl, rtype, *values)
        else:
            update.delete(owner, rtype)
        reply = dns.query.tcp(update, server.server, port=server.port, timeout=5)
    except (dns.exception.DNSException, OSError, ValueError) as exc:
        raise PlanError(f"DNS update of {name} {rtype} at {server.server}:{server.port} failed: {exc}") from exc
    if reply.rcode() != dns.rcode.NOERROR:
        raise PlanError(f"DNS server {server.server}:{server.port} refused the update of {name} {rtype}: "
                        f"{dns.rcode.to_text(reply.rcode())}")
    return "replaced" if values else "deleted"
