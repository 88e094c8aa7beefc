"""`python -m pseval.cli`: the command line."""

from pseval.cli.app import main

main()
