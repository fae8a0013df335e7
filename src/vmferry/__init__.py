"""vmferry: move virtual machines, and what they depend on, between hypervisors and clouds.

The package is a library first; the ``vmferry`` command is a thin layer over it. Imports here are kept
minimal so that the command starts fast: import the sub-packages you need (``vmferry.ovf``,
``vmferry.package``, ...).
"""

__version__ = "0.1.0"
