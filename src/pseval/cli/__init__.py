"""The `pseval` command line: `app` holds the group and its verbs, `types` the typed option parsers."""

from pseval.cli.app import main

__all__ = ["main"]
