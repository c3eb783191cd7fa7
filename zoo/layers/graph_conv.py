"""Graph convolution in the Kipf & Welling form, on dense adjacency matrices."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class NormalizedAdjacency(keras.layers.Layer):
    """`D^-1/2 (A + I) D^-1/2` for a batch of dense adjacency matrices `(batch, nodes, nodes)`.

    Self-loops keep each node's own features; the symmetric normalization keeps the scale of
    features independent of node degree.
    """

    def call(self, adjacency):
        num_nodes = ops.shape(adjacency)[-1]
        with_loops = adjacency + ops.eye(num_nodes, dtype=adjacency.dtype)
        degree = ops.sum(with_loops, axis=-1)
        inv_sqrt = ops.where(degree > 0, ops.rsqrt(ops.maximum(degree, 1e-12)), 0.0)
        return with_loops * ops.expand_dims(inv_sqrt, -1) * ops.expand_dims(inv_sqrt, -2)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="zoo")
class GraphConv(keras.layers.Layer):
    """`activation(Â X W + b)` from `[features (batch, nodes, in), adjacency (batch, nodes, nodes)]`.

    The adjacency is used as given: normalize it first (`NormalizedAdjacency`) for the Kipf &
    Welling propagation rule.
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 kernel_regularizer=None, kernel_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)

    def build(self, input_shape):
        features_shape, _ = input_shape
        self.kernel = self.add_weight(
            name="kernel", shape=(features_shape[-1], self.units), initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
        )
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros") if self.use_bias else None

    def call(self, inputs):
        features, adjacency = inputs
        x = ops.matmul(adjacency, ops.matmul(features, self.kernel))
        if self.bias is not None:
            x = x + self.bias
        return self.activation(x)

    def compute_output_shape(self, input_shape):
        features_shape, _ = input_shape
        return (*features_shape[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
        })
        return config
