"""The catalog's families; importing this package registers them (without importing Keras)."""

from zoo.models import cnn, mlp, perceptron, recurrent, resnet, transformer  # noqa: F401
