"""Load a Python binding that Debian ships as a system package (``python3-guestfs``, ``python3-libnbd``)
into an interpreter that does not see the system's site-packages (vmferry's virtualenv).

Such a binding is a pure-Python wrapper (``guestfs.py``, ``nbd.py``) over a C extension module
(``libguestfsmod``, ``libnbdmod``) in :data:`DEBIAN_DIR`. It is imported normally when it can be; otherwise
both files are loaded from that directory by path. The extension's ABI tag must match this interpreter,
which the import itself checks.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys

from vmferry.errors import VmferryError

DEBIAN_DIR = "/usr/lib/python3/dist-packages"


def load(module: str, extension: str, *, package: str, error: type[VmferryError], directory: str = DEBIAN_DIR):
    """The module ``module`` (whose C part is ``extension``): importable as is, or loaded from ``directory``.

    Raises ``error`` naming the Debian ``package`` when it is not installed or cannot be loaded.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        pass
    wrapper = os.path.join(directory, module + ".py")
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        ext = os.path.join(directory, extension + suffix)
        if os.path.exists(ext) and os.path.exists(wrapper):
            break
    else:
        raise error(f"the {module} Python binding is not installed (Debian package {package})")
    loaded = {}
    for name, path in ((extension, ext), (module, wrapper)):
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise error(f"cannot load the {module} Python binding", path=path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        try:
            spec.loader.exec_module(mod)
        except ImportError as exc:
            sys.modules.pop(name, None)
            raise error(f"cannot load the {module} Python binding: {exc}", path=path) from exc
        loaded[name] = mod
    return loaded[module]
