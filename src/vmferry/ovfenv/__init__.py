"""The OVF environment (DSP0243 §11): ``ovf-env.xml`` and the ``iso`` transport.

>>> from vmferry.ovfenv import EnvProperty, build_environment
>>> r = build_environment("vm", [EnvProperty("hostname", "hostname", "web1")])
>>> sorted(r.environment.properties)
['hostname', 'instance-id']

Modules: :mod:`~vmferry.ovfenv.document` (the XML), :mod:`~vmferry.ovfenv.iso` (the seed image),
:mod:`~vmferry.ovfenv.netcfg` (cloud-init network config), :mod:`~vmferry.ovfenv.build` (from
properties to environment), :mod:`~vmferry.ovfenv.source` (reading a package, ``--set``).
"""

from vmferry.ovfenv.build import EnvProperty, EnvResult, NicInfo, build_environment, instance_id
from vmferry.ovfenv.document import Adapter, Environment, Platform, parse_environment
from vmferry.ovfenv.iso import read_iso_file, volume_label, write_atomic, write_iso
from vmferry.ovfenv.source import SystemProperties, apply_sets, package_properties, parse_sets

__all__ = [
    "Adapter", "EnvProperty", "EnvResult", "Environment", "NicInfo", "Platform", "SystemProperties",
    "apply_sets", "build_environment", "instance_id", "package_properties", "parse_environment",
    "parse_sets", "read_iso_file", "volume_label", "write_atomic", "write_iso",
]
