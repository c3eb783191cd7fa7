"""Image layers: `Augmentation` (Keras's random layers, in training only) and `ChannelAffine`, a
per-channel reorder-scale-shift of image inputs (a pretrained backbone's own input convention,
e.g. ResNet50's BGR mean-subtracted pixels) that converts to TFLite and ONNX builtins."""

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class ChannelAffine(keras.layers.Layer):
    """`x[..., order] * scale + offset` per channel: e.g. RGB pixels to the BGR, mean-subtracted
    input ("caffe") that Keras's ResNet50 weights expect. A gather, a multiply and an add."""

    def __init__(self, scale, offset, order=None, **kwargs):
        super().__init__(**kwargs)
        self.scale = [float(s) for s in scale]
        self.offset = [float(o) for o in offset]
        self.order = None if order is None else [int(i) for i in order]

    def build(self, input_shape):
        self.built = True

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.order is not None:
            x = ops.take(x, self.order, axis=-1)
        scale = ops.convert_to_tensor(np.asarray(self.scale, dtype=self.compute_dtype))
        offset = ops.convert_to_tensor(np.asarray(self.offset, dtype=self.compute_dtype))
        return x * scale + offset

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale, "offset": self.offset, "order": self.order})
        return config


@keras.saving.register_keras_serializable(package="zoo")
class Augmentation(keras.layers.Layer):
    """Keras's random flip, rotation, zoom, translation and contrast layers, in that order, applied
    only when called with `training=True`. Keras's random layers default to `training=True`, so a
    model called without the argument (as an export traces it) would augment; here the default is
    False, as Dropout's is, and an exported model holds none of their random ops.

    `value_range` bounds the contrast's output (pixels: (0, 255)); None leaves standardized inputs
    unbounded."""

    def __init__(self, flip="none", rotation=0.0, zoom=0.0, contrast=0.0, translation=0.0,
                 value_range=None, **kwargs):
        super().__init__(**kwargs)
        self.flip, self.rotation, self.zoom = flip, float(rotation), float(zoom)
        self.contrast, self.translation = float(contrast), float(translation)
        self.value_range = None if value_range is None else [float(v) for v in value_range]
        layers = keras.layers
        bounds = tuple(self.value_range) if self.value_range else (-3.0e38, 3.0e38)
        self.steps = [step for step in (
            layers.RandomFlip(flip, name="flip") if flip != "none" else None,
            layers.RandomRotation(self.rotation, name="rotation") if self.rotation else None,
            layers.RandomZoom(self.zoom, name="zoom") if self.zoom else None,
            layers.RandomTranslation(self.translation, self.translation, name="translation")
            if self.translation else None,
            layers.RandomContrast(self.contrast, value_range=bounds, name="contrast") if self.contrast else None,
        ) if step is not None]

    def build(self, input_shape):
        for step in self.steps:
            step.build(input_shape)
        self.built = True

    def call(self, inputs, training=False):
        if not training:
            return inputs
        x = inputs
        for step in self.steps:
            x = step(x, training=True)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"flip": self.flip, "rotation": self.rotation, "zoom": self.zoom,
                       "contrast": self.contrast, "translation": self.translation,
                       "value_range": self.value_range})
        return config
