"""The hostile cases, one module per class; importing this package registers them all."""

from tests.hostile.cases import disks, manifest, names, numbers, paths, tar, xml  # noqa: F401
