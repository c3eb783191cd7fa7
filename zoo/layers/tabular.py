"""Layers of the tabular deep-learning techniques: quantile and robust scaling, periodic
embeddings of numbers (Gorishniy et al. 2022), each with TFLite builtins and ONNX standard ops only."""

import math

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class SmoothClip(keras.layers.Layer):
    """x / sqrt(1 + (x / limit)^2): the identity near 0, bounded by ±`limit`, smooth everywhere
    (RealMLP's clipping after robust scaling, so an outlier cannot dominate a unit)."""

    def __init__(self, limit=3.0, **kwargs):
        super().__init__(**kwargs)
        self.limit = float(limit)

    def build(self, input_shape):
        pass

    def call(self, inputs):
        return inputs / ops.sqrt(1.0 + ops.square(inputs / self.limit))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"limit": self.limit})
        return config


@keras.saving.register_keras_serializable(package="zoo")
class PiecewiseLinear(keras.layers.Layer):
    """Per column of the last axis, the piecewise-linear function through the points
    (`knots[i][j]`, `values[i][j]`) (knots increasing), constant beyond the first and last knot.

    With a column's training quantiles as knots and their levels (j / m, or the normal scores of
    those levels) as values it is scikit-learn's QuantileTransformer as a layer. Computed as a sum
    of clipped ramps (subtract, maximum, minimum, multiply, sum): TFLite builtins and ONNX.
    """

    def __init__(self, knots, values, **kwargs):
        super().__init__(**kwargs)
        self.knots = [[float(k) for k in column] for column in knots]
        self.values = [[float(v) for v in column] for column in values]
        if any(len(k) != len(v) or not k for k, v in zip(self.knots, self.values)) or len(self.knots) != len(self.values):
            raise ValueError("PiecewiseLinear needs as many values as knots, at least one per column")
        self._starts, self._widths, self._slopes, self._base = _ramps(self.knots, self.values)

    def build(self, input_shape):
        if input_shape[-1] != len(self.knots):
            raise ValueError(f"PiecewiseLinear has knots for {len(self.knots)} columns, got {input_shape[-1]}")

    def call(self, inputs):
        inputs = ops.cast(inputs, self.compute_dtype)
        starts = ops.convert_to_tensor(self._starts, dtype=inputs.dtype)
        widths = ops.convert_to_tensor(self._widths, dtype=inputs.dtype)
        slopes = ops.convert_to_tensor(self._slopes, dtype=inputs.dtype)
        base = ops.convert_to_tensor(self._base, dtype=inputs.dtype)
        distance = ops.expand_dims(inputs, -1) - starts  # (batch, columns, segments)
        covered = ops.minimum(ops.maximum(distance, 0.0), widths)
        return base + ops.sum(covered * slopes, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"knots": self.knots, "values": self.values})
        return config


def _ramps(knots, values):
    """(starts, widths, slopes) of shape (columns, segments) and the base (columns,): every column
    padded to the same number of segments with zero-width, zero-slope ones."""
    segments = max(1, max(len(k) for k in knots) - 1)
    starts = np.zeros((len(knots), segments), "float32")
    widths = np.zeros_like(starts)
    slopes = np.zeros_like(starts)
    for i, (k, v) in enumerate(zip(knots, values)):
        k, v = np.asarray(k, "float64"), np.asarray(v, "float64")
        count = len(k) - 1
        starts[i, :] = k[-1]
        if count:
            starts[i, :count] = k[:-1]
            widths[i, :count] = np.diff(k)
            slopes[i, :count] = np.diff(v) / np.maximum(np.diff(k), 1e-30)
    return starts, widths, slopes, np.asarray([v[0] for v in values], "float32")


@keras.saving.register_keras_serializable(package="zoo")
class PeriodicEmbedding(keras.layers.Layer):
    """(batch, n) numbers -> (batch, n * dim): each column x becomes cos(2π·f·x + φ) over
    `frequencies` learned frequencies f (initialized N(0, `sigma`)) and phases φ (uniform in
    [-π, π]), projected by a per-column linear map to `dim` - 1 values, then x itself appended.

    Gorishniy et al. 2022's periodic embeddings in RealMLP's "PBLD" form (periodic, bias, linear,
    densenet); a per-column map is a broadcast multiply and a sum, so TFLite builtins and ONNX.
    """

    def __init__(self, frequencies=16, sigma=0.1, dim=4, **kwargs):
        super().__init__(**kwargs)
        self.frequencies = int(frequencies)
        self.sigma = float(sigma)
        self.dim = int(dim)
        if self.frequencies < 1 or self.dim < 2 or self.sigma <= 0:
            raise ValueError("PeriodicEmbedding needs frequencies >= 1, dim >= 2 and sigma > 0")

    def build(self, input_shape):
        columns = int(input_shape[-1])
        self.frequency = self.add_weight(shape=(columns, self.frequencies), name="frequency",
                                         initializer=keras.initializers.RandomNormal(stddev=self.sigma))
        self.phase = self.add_weight(shape=(columns, self.frequencies), name="phase",
                                     initializer=keras.initializers.RandomUniform(-math.pi, math.pi))
        limit = 1.0 / math.sqrt(self.frequencies)
        self.kernel = self.add_weight(shape=(columns, self.frequencies, self.dim - 1), name="kernel",
                                      initializer=keras.initializers.RandomUniform(-limit, limit))
        self.bias = self.add_weight(shape=(columns, self.dim - 1), name="bias",
                                    initializer=keras.initializers.RandomUniform(-limit, limit))

    def call(self, inputs):
        x = ops.expand_dims(ops.cast(inputs, self.compute_dtype), -1)  # (batch, n, 1)
        waves = ops.cos(2.0 * math.pi * x * self.frequency + self.phase)  # (batch, n, k)
        projected = ops.sum(ops.expand_dims(waves, -1) * self.kernel, axis=-2) + self.bias
        embedded = ops.concatenate([projected, x], axis=-1)  # (batch, n, dim)
        return ops.reshape(embedded, (-1, inputs.shape[-1] * self.dim))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1] * self.dim)

    def get_config(self):
        config = super().get_config()
        config.update({"frequencies": self.frequencies, "sigma": self.sigma, "dim": self.dim})
        return config
