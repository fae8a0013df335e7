"""The OVF model: read descriptors of OVF 0.9, 1.x and 2.x losslessly and safely.

>>> from vmferry.ovf import Envelope
>>> env = Envelope.from_file("tests/data/cot/vmware.ovf")
>>> env.version, [s.id for s in env.systems]
('1.x', ['vm'])
"""

from vmferry.ovf.envelope import Envelope, VirtualSystem, VirtualSystemCollection

__all__ = ["Envelope", "VirtualSystem", "VirtualSystemCollection"]
