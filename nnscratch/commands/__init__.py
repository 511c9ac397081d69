"""One module per command: ``HELP``, ``add_arguments(parser)``, ``run(args) -> exit code``.

A command with many options keeps them, and their checks, in a ``<command>_options`` module beside it.
"""
