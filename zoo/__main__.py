"""`python -m zoo` runs the CLI."""

from zoo.cli import entry_point

entry_point()
