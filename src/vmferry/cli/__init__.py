"""The ``vmferry`` command: thin sub-commands over the library."""
