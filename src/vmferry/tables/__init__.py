"""Translation tables: data, not code paths.

* :mod:`vmferry.tables.os` — guest OS ids: CIM OSType ↔ VMware guestId ↔ VirtualBox OSType ↔ libosinfo.
* :mod:`vmferry.tables.nics` — NIC ResourceSubType spellings ↔ portable NIC models, per target.
* :mod:`vmferry.tables.controllers` — (ResourceType, ResourceSubType) ↔ (kind, portable model), per target.
* :mod:`vmferry.tables.families` — virtual hardware families (vmx-NN, virtualbox-2.2, xen, Hyper-V) and
  :func:`~vmferry.tables.families.family_for`.

Every table is a tuple of frozen dataclasses; the modules hold small lookup functions only. Every
mapping that is not one-to-one is documented in ``docs/tables.md``.
"""
