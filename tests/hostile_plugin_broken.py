"""A `deepsz compare` plug-in module that fails while it is imported (tests/hostile_commands.py)."""
raise RuntimeError("this plug-in module is broken")
