"""The DNS front: answers A, AAAA and SRV queries for name EIDs from the current locators.

* ``A`` / ``AAAA`` for a name EID: its usable locators of that address family, best priority only,
  in weighted random order, with the mapping's record TTL.
* ``SRV`` for a name EID such as ``_http._tcp.app.example.com``: one record per usable locator that
  has a port (priority and weight from the locator). The targets are synthetic names under the
  queried name (``ip4-192-0-2-7.<name>``, ``ip6-<32 hex>.<name>``), answered here too, and their
  addresses are given in the additional section.
* A name with no registration gets NXDOMAIN; a registered name with nothing of the asked type gets
  an empty NOERROR answer. The server is authoritative (AA) for what it answers and recurses for
  nothing. UDP answers that do not fit 512 bytes (or the client's EDNS size) are truncated (TC);
  the same port answers over TCP, where they fit.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import socket
import struct
import threading

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from vmferry.errors import LocatorError
from vmferry.locator.model import Locator, Mapping, weighted_choice
from vmferry.locator.service import LocatorService

log = logging.getLogger("vmferry.locator.dns")


def target_label(loc: Locator) -> str:
    addr = ipaddress.ip_address(loc.address)
    if addr.version == 4:
        return "ip4-" + loc.address.replace(".", "-")
    return "ip6-" + addr.packed.hex()


def _label_address(label: str) -> str | None:
    try:
        if label.startswith("ip4-"):
            return str(ipaddress.IPv4Address(label[4:].replace("-", ".")))
        if label.startswith("ip6-") and len(label) == 36:
            return str(ipaddress.IPv6Address(bytes.fromhex(label[4:])))
    except ValueError:
        return None
    return None


def _read_exactly(conn: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def weighted_order(locators: list[Locator], rng: random.Random) -> list[Locator]:
    pool, out = list(locators), []
    while pool:
        chosen = weighted_choice(pool, rng)
        pool.remove(chosen)
        out.append(chosen)
    return out


class DnsFront:
    """A UDP DNS server on ``host:port`` in a background thread. ``port=0`` picks a free port."""

    def __init__(self, service: LocatorService, host: str = "127.0.0.1", port: int = 0, *,
                 instance_id: int = 0) -> None:
        self.service = service
        self.instance_id = instance_id
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.tcp = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.sock.bind((host, port))
            self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.tcp.bind((host, self.sock.getsockname()[1]))
            self.tcp.listen(64)
        except OSError as exc:
            self.sock.close()
            self.tcp.close()
            raise LocatorError(f"DNS front cannot listen on {host}:{port}: {exc.strerror}") from exc
        self.sock.settimeout(0.5)
        self.tcp.settimeout(0.5)
        self.address = self.sock.getsockname()[:2]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._rng = random.Random()

    def start(self) -> DnsFront:
        for target, name in ((self._serve, "locator-dns-udp"), (self._serve_tcp, "locator-dns-tcp")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self.sock.close()
        self.tcp.close()

    def _serve_tcp(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _peer = self.tcp.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._tcp_connection, args=(conn,), daemon=True).start()

    def _tcp_connection(self, conn: socket.socket) -> None:
        """Length-prefixed messages (RFC 1035 4.2.2) until the client closes or idles 10 s."""
        conn.settimeout(10)
        with conn:
            try:
                while not self._stop.is_set():
                    head = _read_exactly(conn, 2)
                    if head is None:
                        return
                    wire = _read_exactly(conn, struct.unpack("!H", head)[0])
                    if wire is None:
                        return
                    reply = self.answer(wire, max_size=65535)
                    if reply is None:
                        return
                    conn.sendall(struct.pack("!H", len(reply)) + reply)
            except OSError:
                return

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            reply = self.answer(wire)
            if reply is not None:
                try:
                    self.sock.sendto(reply, peer)
                except OSError as exc:
                    log.debug("cannot answer %s: %s", peer, exc)

    # -- answering -------------------------------------------------------------------------------
    def answer(self, wire: bytes, max_size: int | None = None) -> bytes | None:
        """The wire reply to one query (None when the query cannot even be parsed).

        ``max_size`` is the largest reply allowed (TCP: 65535); by default the UDP limit: 512
        bytes or the size the client announces with EDNS."""
        fast = self._fast_answer(wire, max_size)
        if fast is not None:
            return fast
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        response.flags &= ~dns.flags.RA
        if query.opcode() != dns.opcode.QUERY or len(query.question) != 1:
            response.set_rcode(dns.rcode.NOTIMP if query.opcode() != dns.opcode.QUERY else dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        if question.rdclass != dns.rdataclass.IN:
            response.set_rcode(dns.rcode.REFUSED)
            return response.to_wire()
        self._fill(response, question.name, question.rdtype)
        limit = max_size or max(512, query.payload if query.edns >= 0 else 512)
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            response.flags |= dns.flags.TC
            del response.answer[:]
            del response.additional[:]
            return response.to_wire()

    def _fast_answer(self, wire: bytes, max_size: int | None = None) -> bytes | None:
        """Plain A/AAAA queries answered without building message objects; None means "use the
        general path" (anything unusual: other types, EDNS options we would have to echo, SRV
        targets, answers that would be truncated)."""
        if len(wire) < 17:
            return None
        qid, flags, qdcount, ancount, nscount, arcount = struct.unpack_from("!HHHHHH", wire)
        if flags & 0xF800 or qdcount != 1 or ancount or nscount or arcount > 1:
            return None  # a response, not a standard query, or more than one question
        pos, labels = 12, []
        while True:
            if pos >= len(wire):
                return None
            length = wire[pos]
            if length == 0:
                pos += 1
                break
            if length & 0xC0:
                return None
            labels.append(wire[pos + 1:pos + 1 + length])
            pos += 1 + length
        if pos + 4 > len(wire):
            return None
        qtype, qclass = struct.unpack_from("!HH", wire, pos)
        qend = pos + 4
        if qclass != 1 or qtype not in (1, 28):
            return None
        edns = False
        if arcount:
            # an OPT record (root name, type 41, version 0); its options (e.g. a cookie) are ignored
            if len(wire) < qend + 11 or wire[qend] != 0 or struct.unpack_from("!H", wire, qend + 1)[0] != 41:
                return None
            if wire[qend + 6] != 0:  # EDNS version
                return None
            edns = True
        try:
            name = b".".join(labels).decode("ascii").lower()
        except UnicodeDecodeError:
            return None
        if name.startswith(("ip4-", "ip6-")):
            return None
        mapping = self._mapping(name)
        rcode = 3 if mapping is None else 0
        records = b""
        count = 0
        if mapping is not None:
            family = 4 if qtype == 1 else 6
            candidates = [loc for loc in mapping.locators if loc.usable and loc.family == family]
            if candidates:
                best = min(loc.priority for loc in candidates)
                chosen = weighted_order([loc for loc in candidates if loc.priority == best], self._rng)
                af = socket.AF_INET if family == 4 else socket.AF_INET6
                parts = []
                for loc in chosen:
                    raw = socket.inet_pton(af, loc.address)
                    parts.append(struct.pack("!HHHIH", 0xC00C, qtype, 1, mapping.ttl, len(raw)) + raw)
                records, count = b"".join(parts), len(parts)
        out_flags = 0x8000 | 0x0400 | (flags & 0x0100) | rcode  # QR, AA, RD copied, no RA
        reply = (struct.pack("!HHHHHH", qid, out_flags, 1, count, 0, 1 if edns else 0)
                 + wire[12:qend] + records
                 + (b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0) if edns else b""))
        limit = max_size or 512
        if edns and not max_size:
            limit = max(512, struct.unpack_from("!H", wire, qend + 3)[0])
        return reply if len(reply) <= limit else None

    def _mapping(self, name: str) -> Mapping | None:
        mapping = self.service.index.lookup_name(name, self.instance_id)
        if mapping is None or mapping.expired(self.service.clock()):
            return None
        return mapping

    def _fill(self, response: dns.message.Message, qname: dns.name.Name, rdtype: int) -> None:
        name = qname.to_text(omit_final_dot=True).lower()
        mapping = self._mapping(name)
        if mapping is None:
            label, _, parent = name.partition(".")
            parent_mapping = self._mapping(parent) if parent else None
            address = _label_address(label)
            if parent_mapping is not None and address is not None and any(
                    loc.address == address and loc.usable for loc in parent_mapping.locators):
                self._addresses(response.answer, qname, [Locator(address)], parent_mapping.ttl, rdtype)
                return
            response.set_rcode(dns.rcode.NXDOMAIN)
            return
        usable = [loc for loc in mapping.locators if loc.usable]
        if rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.ANY):
            self._addresses(response.answer, qname, usable, mapping.ttl, rdtype)
        if rdtype in (dns.rdatatype.SRV, dns.rdatatype.ANY):
            with_port = [loc for loc in usable if loc.port]
            if with_port:
                rrset = response.find_rrset(response.answer, qname, dns.rdataclass.IN, dns.rdatatype.SRV,
                                            create=True)
                rrset.update_ttl(mapping.ttl)
                for loc in sorted(with_port, key=lambda x: (x.priority, -x.weight)):
                    target = dns.name.Name((target_label(loc).encode(),) + qname.labels)
                    rrset.add(dns.rdata.from_text("IN", "SRV", f"{loc.priority} {loc.weight} {loc.port} {target}"))
                    self._addresses(response.additional, target, [loc], mapping.ttl, dns.rdatatype.ANY)

    def _addresses(self, section: list, owner: dns.name.Name, locators: list[Locator], ttl: int,
                   rdtype: int) -> None:
        for family, rtype in ((4, dns.rdatatype.A), (6, dns.rdatatype.AAAA)):
            if rdtype not in (rtype, dns.rdatatype.ANY):
                continue
            candidates = [loc for loc in locators if loc.family == family]
            if not candidates:
                continue
            best = min(loc.priority for loc in candidates)
            chosen = weighted_order([loc for loc in candidates if loc.priority == best], self._rng)
            rrset = dns.rrset.from_text_list(owner, ttl, "IN", dns.rdatatype.to_text(rtype),
                                             [loc.address for loc in chosen])
            section.append(rrset)
