"""OVF packages: an OVF directory or an OVA (tar), read safely and without unpacking.

>>> from vmferry.package import open_package
>>> pkg = open_package("tests/data/cot/input.ovf")
>>> pkg.container, pkg.descriptor_name
('ovf', 'input.ovf')
"""

from vmferry.package.base import Package, PackageMember, open_package

__all__ = ["Package", "PackageMember", "open_package"]
