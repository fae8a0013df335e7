"""libvirt adapter over the libvirt Python binding: connect, define, start, read the serial console,
stop and remove. Every ``libvirt.libvirtError`` becomes a :class:`~vmferry.errors.TargetError` whose
one line names the URI, the step and libvirt's own message.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from lxml import etree

from vmferry.errors import TargetError, ToolMissing, XmlError

STATES = {0: "nostate", 1: "running", 2: "blocked", 3: "paused", 4: "shutdown", 5: "shutoff", 6: "crashed",
          7: "pmsuspended"}


def _libvirt():
    try:
        import libvirt
    except ImportError as exc:
        raise ToolMissing("the libvirt Python binding is not installed (pip install 'vmferry[kvm]')") from exc
    # libvirt's default handler prints every error on stderr as well; vmferry reports it once, itself.
    libvirt.registerErrorHandler(_ignore_error, None)
    return libvirt


def binding():
    """The libvirt Python module (for adapters that need calls :class:`Connection` does not wrap)."""
    return _libvirt()


def message(exc: Exception) -> str:
    """libvirt's own message of ``exc`` on one line."""
    return _message(exc)


def _ignore_error(_ctx, _err) -> None:
    return None


def _message(exc: Exception) -> str:
    get = getattr(exc, "get_error_message", None)
    text = get() if get else None
    return " ".join(str(text or exc).split())


@dataclass(frozen=True)
class DomainInfo:
    name: str
    uuid: str
    state: str
    active: bool
    persistent: bool


class Connection:
    """An open libvirt connection. Use :func:`connect`."""

    def __init__(self, uri: str, conn) -> None:
        self.uri = uri
        self._conn = conn

    def _fail(self, step: str, exc: Exception, name: str | None = None) -> TargetError:
        what = f" domain {name}" if name else ""
        return TargetError(f"libvirt {self.uri}: {step}{what} failed: {_message(exc)}")

    def _lookup(self, name: str):
        libvirt = _libvirt()
        try:
            return self._conn.lookupByName(name)
        except libvirt.libvirtError as exc:
            raise self._fail("lookup of", exc, name) from exc

    def domain(self, name: str):
        """The raw ``virDomain`` named ``name`` (a :class:`TargetError` when there is none)."""
        return self._lookup(name)

    def info(self, name: str) -> DomainInfo:
        libvirt = _libvirt()
        dom = self._lookup(name)
        try:
            state = dom.state()[0]
            return DomainInfo(dom.name(), dom.UUIDString(), STATES.get(state, str(state)), bool(dom.isActive()),
                              bool(dom.isPersistent()))
        except libvirt.libvirtError as exc:
            raise self._fail("reading state of", exc, name) from exc

    def define(self, xml: str) -> DomainInfo:
        """Define (persistently) the domain described by ``xml``; return its info."""
        libvirt = _libvirt()
        try:
            dom = self._conn.defineXML(xml)
        except libvirt.libvirtError as exc:
            raise self._fail("define", exc) from exc
        return self.info(dom.name())

    def start(self, name: str, *, paused: bool = False) -> DomainInfo:
        """Start ``name``; ``paused``: its vCPUs wait for ``resume`` (QEMU and its devices are up)."""
        libvirt = _libvirt()
        dom = self._lookup(name)
        try:
            dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED if paused else 0)
        except libvirt.libvirtError as exc:
            raise self._fail("start of", exc, name) from exc
        return self.info(name)

    @staticmethod
    def _stop(dom) -> None:
        """Destroy ``dom`` if it runs; a guest that powers off between the check and the call is fine."""
        libvirt = _libvirt()
        try:
            if dom.isActive():
                dom.destroy()
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID or dom.isActive():
                raise

    def destroy(self, name: str) -> None:
        """Stop a running domain at once (no error when it is not running)."""
        libvirt = _libvirt()
        dom = self._lookup(name)
        try:
            self._stop(dom)
        except libvirt.libvirtError as exc:
            raise self._fail("destroy of", exc, name) from exc

    def undefine(self, name: str) -> None:
        libvirt = _libvirt()
        dom = self._lookup(name)
        try:
            self._stop(dom)
            # checkpoints (change tracking of replication) go with the domain: libvirt's records only
            keep_out = getattr(libvirt, "VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA", 0)
            flags = getattr(libvirt, "VIR_DOMAIN_UNDEFINE_NVRAM", 0) | keep_out
            try:
                dom.undefineFlags(flags)
            except libvirt.libvirtError:
                try:
                    dom.undefineFlags(keep_out)   # drivers without NVRAM support refuse that flag
                except libvirt.libvirtError:
                    dom.undefine()
        except libvirt.libvirtError as exc:
            raise self._fail("undefine of", exc, name) from exc

    def names(self) -> list[str]:
        libvirt = _libvirt()
        try:
            return sorted(d.name() for d in self._conn.listAllDomains())
        except libvirt.libvirtError as exc:
            raise self._fail("listing domains", exc) from exc

    def capabilities(self) -> str:
        """The host's capabilities XML (``virConnectGetCapabilities``)."""
        libvirt = _libvirt()
        try:
            return self._conn.getCapabilities()
        except libvirt.libvirtError as exc:
            raise self._fail("reading host capabilities", exc) from exc

    def domain_capabilities(self, arch: str, virttype: str, *, emulator: str | None = None,
                            machine: str | None = None) -> str | None:
        """``virConnectGetDomainCapabilities`` for ``virttype`` on ``arch``; None when the driver has no
        such call (the test driver); a :class:`TargetError` when it refuses this type (e.g. no KVM)."""
        libvirt = _libvirt()
        try:
            return self._conn.getDomainCapabilities(emulator, arch, machine, virttype, 0)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT:
                return None
            raise self._fail(f"reading domain capabilities for {virttype}", exc) from exc

    def networks(self) -> dict[str, bool]:
        """Network name -> active."""
        libvirt = _libvirt()
        try:
            return {n.name(): bool(n.isActive()) for n in self._conn.listAllNetworks()}
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT:
                return {}
            raise self._fail("listing networks", exc) from exc

    # ---- networks (define, start, read back, remove) and the guest agent ----------------------------

    def define_network(self, xml: str, *, start: bool = True) -> str:
        """Define the network described by ``xml`` (persistently) and start it; return its name."""
        libvirt = _libvirt()
        try:
            net = self._conn.networkDefineXML(xml)
            if start:
                net.create()
            return net.name()
        except libvirt.libvirtError as exc:
            raise TargetError(f"libvirt {self.uri}: defining network failed: {_message(exc)}") from exc

    def network_xml(self, name: str) -> str:
        libvirt = _libvirt()
        try:
            return self._conn.networkLookupByName(name).XMLDesc(0)
        except libvirt.libvirtError as exc:
            raise TargetError(f"libvirt {self.uri}: reading network {name} failed: {_message(exc)}") from exc

    def remove_network(self, name: str) -> bool:
        """Stop and undefine network ``name``; False when there is no such network."""
        libvirt = _libvirt()
        try:
            net = self._conn.networkLookupByName(name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_NETWORK:
                return False
            raise TargetError(f"libvirt {self.uri}: lookup of network {name} failed: {_message(exc)}") from exc
        try:
            if net.isActive():
                net.destroy()
            if net.isPersistent():
                net.undefine()
        except libvirt.libvirtError as exc:
            raise TargetError(f"libvirt {self.uri}: removing network {name} failed: {_message(exc)}") from exc
        return True

    def agent_command(self, name: str, command: str, timeout: int = 5) -> str:
        """Send ``command`` (a qemu-ga JSON command) to the guest agent of domain ``name``; its answer."""
        libvirt = _libvirt()
        try:
            import libvirt_qemu
        except ImportError as exc:
            raise ToolMissing("the libvirt_qemu Python module is not installed (pip install 'vmferry[kvm]')") \
                from exc
        dom = self._lookup(name)
        try:
            return libvirt_qemu.qemuAgentCommand(dom, command, timeout, 0)
        except libvirt.libvirtError as exc:
            raise self._fail("guest agent command to", exc, name) from exc

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()


@contextmanager
def connect(uri: str) -> Iterator[Connection]:
    """Open ``uri`` (e.g. ``qemu:///system``, ``test:///default``) for the ``with`` block."""
    libvirt = _libvirt()
    try:
        raw = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise TargetError(f"libvirt: cannot connect to {uri}: {_message(exc)}") from exc
    conn = Connection(uri, raw)
    try:
        yield conn
    finally:
        conn.close()


def domain_name(xml: str, path: str | None = None) -> str:
    """The ``<name>`` of a domain XML document (parsed safely)."""
    try:
        root = etree.fromstring(xml.encode(), etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        raise XmlError(f"domain XML is not well-formed: {exc}", path=path) from exc
    if root.tag != "domain":
        raise XmlError(f"not a libvirt domain XML (root element <{root.tag}>)", path=path)
    name = root.findtext("name")
    if not name:
        raise XmlError("domain XML has no <name>", path=path)
    return name.strip()


@dataclass(frozen=True)
class ConsoleResult:
    found: str | None      # the first marker that appeared, or None on timeout
    text: str              # everything read from the console log
    seconds: float


def wait_console(log: str | os.PathLike, markers: Sequence[str], timeout: float, *,
                 poll: float = 0.25, stop_when=None) -> ConsoleResult:
    """Read a serial console log (``<serial type='file'>``) until one of ``markers`` appears.

    ``stop_when`` is an optional callable returning true when waiting is pointless (e.g. the domain has
    shut off); the log is read one last time before giving up.
    """
    start = time.monotonic()
    text = ""
    while True:
        try:
            with open(log, "rb") as fh:
                text = fh.read().decode("utf-8", "replace")
        except FileNotFoundError:
            text = ""
        hits = [(text.find(m), m) for m in markers if m in text]
        if hits:
            return ConsoleResult(min(hits)[1], text, time.monotonic() - start)
        elapsed = time.monotonic() - start
        if elapsed >= timeout:
            return ConsoleResult(None, text, elapsed)
        if stop_when is not None and stop_when():
            with open(log, "rb") if os.path.exists(log) else _empty() as fh:
                text = fh.read().decode("utf-8", "replace")
            hits = [(text.find(m), m) for m in markers if m in text]
            return ConsoleResult(min(hits)[1] if hits else None, text, time.monotonic() - start)
        time.sleep(poll)


@contextmanager
def _empty():
    import io

    yield io.BytesIO(b"")
