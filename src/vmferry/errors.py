"""The one error tree of vmferry.

Every error vmferry raises on purpose derives from :class:`VmferryError`. The command line turns any
of them into one line on standard error and exit status 2. Foreign errors (``OSError``,
``lxml.etree.XMLSyntaxError``, ``tarfile.TarError``, ...) are mapped with ``raise ... from exc``.

::

    VmferryError
    ├── PackageError                 a package (OVF directory or OVA) cannot be read safely
    │   ├── UnsafeArchive            absolute path, "..", link, device, tar bomb in an OVA
    │   ├── TruncatedArchive         the archive ends before a member does
    │   ├── MissingFile              a referenced file is not in the package
    │   ├── SizeMismatch             a file's size differs from its declared size
    │   ├── ManifestMismatch         a digest in the manifest does not match the file
    │   └── CertificateError         the certificate or its signature is invalid
    ├── OvfError                     the descriptor cannot be understood
    │   ├── XmlError                 not well-formed XML, or hostile XML (entities, DTD)
    │   ├── UnsupportedVersion       an OVF version vmferry does not know
    │   ├── LimitExceeded            past a documented limit (sizes, counts, numbers, names)
    │   └── SchemaInvalid            the descriptor does not validate against the DMTF XSD
    ├── DiskError                    a disk image cannot be read, converted or written
    │   ├── UnsafeImage              the image names a file outside its package (backing file, data
    │   │                            file, VMDK extent, parent disk), a json:/protocol name or a device
    │   └── DamagedImage             the image's header or tables point outside the file or contradict
    │                                each other (checked before qemu-img or vmferry reads the image)
    ├── ToolError                    an external tool
    │   ├── ToolMissing              is not installed
    │   └── ToolFailed               exited with an error (carries argv, exit code, stderr)
    ├── TargetError                  a target cannot take this VM
    ├── GuestError                   guest inspection failed
    ├── LocatorError                 the locator/ID mapping service
    │   ├── AuthError                a request is not authenticated (forged, replayed, stale)
    │   └── NotAllowed               a site may not register this EID
    ├── PlanError                    an application manifest or plan is invalid
    ├── ReplicationError             a protection group, replica or recovery point (issue 12)
    ├── WorkflowError                a durable workflow run (Temporal) failed or cannot be reached
    ├── RecoveryError                a recovery run (test failover, failover) cannot start or clean up
    └── UsageError                   the command was called with arguments that do not fit
"""

from __future__ import annotations

import os


def one_line(text: object) -> str:
    """``text`` as one printable line: runs of whitespace (newlines included) become one space, other
    control and invisible characters (escape sequences, direction overrides) become '?'."""
    folded = " ".join(str(text).split())
    if folded.isprintable():
        return folded
    return "".join(c if c.isprintable() else "?" for c in folded)


class VmferryError(Exception):
    """Base of every vmferry error. ``path`` names the file concerned, when there is one; ``rule`` the
    documented rule (docs/rules.md) whose error stops the command, when one does."""

    def __init__(self, message: str, *, path: str | os.PathLike | None = None, rule: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = os.fspath(path) if path is not None else None
        self.rule = rule

    def __str__(self) -> str:
        text = one_line(self.message)  # one line, always
        if self.path and self.path not in text:
            text = f"{one_line(self.path)}: {text}"
        if self.rule and self.rule not in text:
            text = f"{text} ({self.rule})"
        return text


class PackageError(VmferryError):
    """A package (OVF directory or OVA) cannot be read safely."""


class UnsafeArchive(PackageError):
    """An OVA member could escape the output directory or is not a regular file."""


class TruncatedArchive(PackageError):
    """The archive ends before a member does."""


class MissingFile(PackageError):
    """A file the descriptor or the manifest references is not in the package."""


class SizeMismatch(PackageError):
    """A file's size differs from its declared size."""


class ManifestMismatch(PackageError):
    """A digest listed in the manifest does not match the file."""


class CertificateError(PackageError):
    """The certificate cannot be read or its signature does not verify."""


class OvfError(VmferryError):
    """The OVF descriptor cannot be understood."""


class XmlError(OvfError):
    """The descriptor is not well-formed XML, or uses forbidden constructs (DTD, entities)."""


class UnsupportedVersion(OvfError):
    """The descriptor uses an OVF version vmferry does not know."""


class LimitExceeded(OvfError):
    """The descriptor passes one of the documented limits (docs/limits.md): size, element or attribute
    counts, nesting, numbers out of range, ids and names that cannot be names."""


class SchemaInvalid(OvfError):
    """The descriptor does not validate against the DMTF schema."""


class DiskError(VmferryError):
    """A disk image cannot be read, converted or written."""


class UnsafeImage(DiskError):
    """A disk image names a file outside its package (qcow2 backing or data file, VMDK extent, VHD/VHDX
    parent), a ``json:`` or protocol file name, or a device: it is refused before anything opens it."""


class DamagedImage(DiskError):
    """A disk image's header or tables (qcow2 L1/L2, VMDK grain directory and tables, VHD/VHDX block
    tables) point outside the file or contradict each other."""


class ToolError(VmferryError):
    """An external tool could not be used."""


class ToolMissing(ToolError):
    """An external tool is not installed."""


class ToolFailed(ToolError):
    """An external tool exited with an error."""

    def __init__(self, message: str, *, argv: list[str] | None = None, returncode: int | None = None,
                 stdout: str = "", stderr: str = "", path: str | os.PathLike | None = None) -> None:
        super().__init__(message, path=path)
        self.argv = list(argv or [])
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


class TargetError(VmferryError):
    """A target cannot take this VM."""


class GuestError(VmferryError):
    """Guest inspection failed."""


class LocatorError(VmferryError):
    """An error of the locator/ID mapping service."""


class AuthError(LocatorError):
    """A locator request is not authenticated: forged, replayed, stale or from an unknown key."""


class NotAllowed(LocatorError):
    """A site may not register this EID."""


class PlanError(VmferryError):
    """An application manifest or a migration plan is invalid."""


class ReplicationError(VmferryError):
    """A protection group, replica or recovery point cannot be created, synchronised or verified."""


class WorkflowError(VmferryError):
    """A durable workflow run failed, or the workflow service cannot be reached."""


class RecoveryError(VmferryError):
    """A recovery run (test failover, failover) cannot be prepared, run or cleaned up."""


class BurstError(VmferryError):
    """Copies of a component cannot be added at a burst site, registered, drained or removed."""


class UsageError(VmferryError):
    """The command was called with arguments that do not fit together."""
