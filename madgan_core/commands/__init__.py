"""Subcommands of the ``madgan`` CLI, one module each."""
