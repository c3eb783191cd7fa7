"""Forecasting layers: gaps filled by carrying the last value forward, windows normalized each by its
own level and scale, and the forecast restored as a change from the naive value (a skip connection)."""

import keras
import numpy as np
from keras import ops


def _carry_scores(window):
    """(window, window) constants: for step t, source step s scores above 0, the highest wins; a
    step at or before t (the latest first) beats any later one (the nearest first), so a step is
    filled from the last observed value before it, or the first one after it at a window's start."""
    steps = np.arange(window)
    earlier = steps[None, :] <= steps[:, None]
    return np.where(earlier, steps[None, :] + 1 + window, window - steps[None, :]).astype("float32")


@keras.saving.register_keras_serializable(package="zoo")
class FillForward(keras.layers.Layer):
    """(batch, window, features) with NaN gaps -> the same windows, each NaN replaced by the last
    observed value of its feature before it in the window (the first one after it where the window
    starts with a gap; `fill_values` where a feature is missing in the whole window); with
    `indicator`, 0/1 features saying which steps were missing are appended.

    NaN is found with `x != x` and the carried value picked by a one-hot over the window's steps
    (a max and an equality, no gather or loop), so the layer converts to TFLite builtins and ONNX.
    """

    def __init__(self, fill_values, indicator=False, **kwargs):
        super().__init__(**kwargs)
        self.fill_values = [float(v) for v in fill_values]
        self.indicator = bool(indicator)

    def build(self, input_shape):
        if input_shape[-1] != len(self.fill_values) or input_shape[-2] is None:
            raise ValueError(f"FillForward needs a fixed window and {len(self.fill_values)} features. "
                             f"Received: input_shape={input_shape}")
        self.window = int(input_shape[-2])

    def call(self, inputs):
        missing = ops.not_equal(inputs, inputs)
        observed = ops.cast(ops.logical_not(missing), inputs.dtype)
        values = ops.where(missing, ops.zeros_like(inputs), inputs)
        scores = ops.convert_to_tensor(_carry_scores(self.window), dtype=inputs.dtype)
        # (batch, t, s, features): the score of source step s for step t, 0 where s is missing
        scores = ops.expand_dims(observed, 1) * ops.reshape(scores, (1, self.window, self.window, 1))
        best = ops.max(scores, axis=2, keepdims=True)
        pick = ops.cast(ops.equal(scores, best), inputs.dtype) * ops.expand_dims(observed, 1)
        carried = ops.sum(pick * ops.expand_dims(values, 1), axis=2)
        fill = ops.convert_to_tensor(np.asarray(self.fill_values, dtype="float32"), dtype=inputs.dtype)
        filled = ops.where(ops.squeeze(best, 2) > 0, carried, ops.zeros_like(carried) + fill)
        if not self.indicator:
            return filled
        return ops.concatenate([filled, ops.cast(missing, inputs.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] * (2 if self.indicator else 1))

    def get_config(self):
        config = super().get_config()
        config.update({"fill_values": self.fill_values, "indicator": self.indicator})
        return config


@keras.saving.register_keras_serializable(package="zoo")
class WindowNormalize(keras.layers.Layer):
    """(batch, window, features) -> `[normalized, anchor, scale]`: the first `num_values` features
    of each window minus their last value, over their standard deviation in the window (floored by
    `scale_floor`, one per feature: a typical step change, so a flat window is not blown up); the
    rest (missing indicators) pass through. `anchor` (batch, 1) is the target feature's value at
    step `anchor_step` (the naive or the seasonal-naive forecast) and `scale` (batch, 1) the target's
    scale in the window: what RestoreLevel puts the forecast back with."""

    def __init__(self, num_values, target_index, anchor_step, scale_floor, **kwargs):
        super().__init__(**kwargs)
        self.num_values = int(num_values)
        self.target_index = int(target_index)
        self.anchor_step = int(anchor_step)
        self.scale_floor = [float(v) for v in scale_floor]

    def build(self, input_shape):
        if len(self.scale_floor) != self.num_values or input_shape[-1] < self.num_values:
            raise ValueError(f"WindowNormalize has {len(self.scale_floor)} scale floors for "
                             f"{self.num_values} of {input_shape[-1]} features")

    def call(self, inputs):
        values = inputs[..., :self.num_values]
        level = values[:, -1:, :]
        floor = ops.convert_to_tensor(np.square(np.asarray(self.scale_floor, dtype="float32")), dtype=inputs.dtype)
        centered = values - ops.mean(values, axis=1, keepdims=True)
        scale = ops.sqrt(ops.mean(ops.square(centered), axis=1, keepdims=True) + floor)
        normalized = (values - level) / scale
        if inputs.shape[-1] > self.num_values:
            normalized = ops.concatenate([normalized, inputs[..., self.num_values:]], axis=-1)
        target = self.target_index
        anchor = values[:, self.anchor_step, target:target + 1]
        return [normalized, anchor, scale[:, 0, target:target + 1]]

    def compute_output_shape(self, input_shape):
        return [tuple(input_shape), (input_shape[0], 1), (input_shape[0], 1)]

    def get_config(self):
        config = super().get_config()
        config.update({"num_values": self.num_values, "target_index": self.target_index,
                       "anchor_step": self.anchor_step, "scale_floor": self.scale_floor})
        return config


@keras.saving.register_keras_serializable(package="zoo")
class RestoreLevel(keras.layers.Layer):
    """`[change, anchor, scale]` -> anchor + change * scale: the skip connection that makes the
    forecast the naive one plus what the model learned, in the target's units."""

    def build(self, input_shape):
        pass

    def call(self, inputs):
        change, anchor, scale = inputs
        return anchor + change * scale

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])
