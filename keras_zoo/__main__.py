"""`python -m keras_zoo` runs the CLI."""

from keras_zoo.cli import entry_point

entry_point()
