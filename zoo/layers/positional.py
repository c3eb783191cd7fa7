"""Positional encodings for sequence models: learned embeddings and fixed sinusoids."""

import math

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class LearnedPositionalEmbedding(keras.layers.Layer):
    """Adds a trainable vector per position to `(batch, length, depth)` inputs."""

    def __init__(self, max_length, **kwargs):
        super().__init__(**kwargs)
        self.max_length = max_length
        self.supports_masking = True

    def build(self, input_shape):
        self.position_embeddings = self.add_weight(
            name="position_embeddings",
            shape=(self.max_length, input_shape[-1]),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
        )

    def call(self, inputs):
        length = ops.shape(inputs)[1]
        return inputs + ops.cast(self.position_embeddings[:length], inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"max_length": self.max_length})
        return config


@keras.saving.register_keras_serializable(package="zoo")
class SinusoidalPositionalEncoding(keras.layers.Layer):
    """Adds the fixed sine/cosine encoding of "Attention Is All You Need" (no weights)."""

    def __init__(self, max_length, **kwargs):
        super().__init__(**kwargs)
        self.max_length = max_length
        self.supports_masking = True

    def build(self, input_shape):
        depth = input_shape[-1]
        positions = np.arange(self.max_length)[:, None]
        rates = np.exp(-math.log(10000.0) * (2 * (np.arange(depth) // 2)) / depth)[None, :]
        angles = positions * rates
        table = np.where(np.arange(depth) % 2 == 0, np.sin(angles), np.cos(angles))
        self.table = table.astype("float32")

    def call(self, inputs):
        length = ops.shape(inputs)[1]
        return inputs + ops.cast(ops.convert_to_tensor(self.table)[:length], inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"max_length": self.max_length})
        return config
