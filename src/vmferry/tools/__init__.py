"""Thin adapters over external tools. :mod:`vmferry.tools.proc` is the one subprocess runner."""
