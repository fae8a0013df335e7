"""Checks over packages and descriptors. Each module holds the rules of one topic; every rule has a
stable id documented in ``docs/rules.md``."""
