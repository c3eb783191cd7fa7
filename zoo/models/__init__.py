"""The catalog's families; importing this package registers them (without importing Keras)."""

from zoo.models import (  # noqa: F401
    autoencoder,
    backbone,
    cnn,
    gan,
    gnn,
    mlp,
    perceptron,
    recurrent,
    resnet,
    siamese,
    transformer,
    vae,
)
