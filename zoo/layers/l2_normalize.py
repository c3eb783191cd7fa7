"""L2 normalization of embeddings along the last axis (a layer, so models stay Lambda-free)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class L2Normalize(keras.layers.Layer):
    """Scales each vector to unit L2 norm along `axis`; `epsilon` guards the zero vector."""

    def __init__(self, axis=-1, epsilon=1e-12, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis
        self.epsilon = epsilon

    def call(self, inputs):
        squared = ops.sum(ops.square(inputs), axis=self.axis, keepdims=True)
        return inputs * ops.rsqrt(ops.maximum(squared, self.epsilon))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"axis": self.axis, "epsilon": self.epsilon})
        return config
