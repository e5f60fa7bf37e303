"""The ``pbl`` command line: schema, keys, server, import, verify and the demo."""
