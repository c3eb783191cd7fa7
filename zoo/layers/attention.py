"""Scaled dot-product attention and multi-head self-attention built on it."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class ScaledDotProductAttention(keras.layers.Layer):
    """softmax(Q Kᵀ / √d_k) V over the last two axes; an optional boolean key mask.

    Inputs are `[query, key, value]`, each `(..., length, depth)`; `attention_mask` is
    `(batch, key_length)` with True for positions to attend to.
    """

    def __init__(self, dropout_rate=0.0, **kwargs):
        super().__init__(**kwargs)
        self.dropout_rate = dropout_rate
        self.dropout = keras.layers.Dropout(dropout_rate)

    def call(self, inputs, attention_mask=None, training=None):
        query, key, value = inputs
        mask = attention_mask
        depth = ops.cast(ops.shape(key)[-1], query.dtype)
        scores = ops.matmul(query, ops.swapaxes(key, -1, -2)) / ops.sqrt(depth)
        if mask is not None:
            # (batch, key_length) -> broadcast over heads and query positions
            while len(mask.shape) < len(scores.shape):
                mask = ops.expand_dims(mask, axis=-2)
            scores = ops.where(mask, scores, ops.full_like(scores, -1e9))
        weights = ops.softmax(scores, axis=-1)
        weights = self.dropout(weights, training=training)
        return ops.matmul(weights, value)

    def compute_output_shape(self, input_shapes):
        query_shape, _, value_shape = input_shapes
        return tuple(query_shape[:-1]) + (value_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update({"dropout_rate": self.dropout_rate})
        return config


@keras.saving.register_keras_serializable(package="zoo")
class MultiHeadSelfAttention(keras.layers.Layer):
    """Multi-head self-attention: project to heads, attend with `ScaledDotProductAttention`, merge."""

    def __init__(self, num_heads, key_dim, dropout_rate=0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.dropout_rate = dropout_rate
        self.supports_masking = True

    def build(self, input_shape):
        model_dim = input_shape[-1]
        inner = self.num_heads * self.key_dim
        self.query_dense = keras.layers.Dense(inner, name="query")
        self.key_dense = keras.layers.Dense(inner, name="key")
        self.value_dense = keras.layers.Dense(inner, name="value")
        self.output_dense = keras.layers.Dense(model_dim, name="output")
        self.attention = ScaledDotProductAttention(self.dropout_rate, name="attention")
        for dense in (self.query_dense, self.key_dense, self.value_dense):
            dense.build(input_shape)
        self.output_dense.build(tuple(input_shape[:-1]) + (inner,))

    def _split_heads(self, x):
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        x = ops.reshape(x, (batch, length, self.num_heads, self.key_dim))
        return ops.transpose(x, (0, 2, 1, 3))

    def call(self, inputs, mask=None, training=None):
        query = self._split_heads(self.query_dense(inputs))
        key = self._split_heads(self.key_dense(inputs))
        value = self._split_heads(self.value_dense(inputs))
        attended = self.attention([query, key, value], attention_mask=mask, training=training)
        attended = ops.transpose(attended, (0, 2, 1, 3))
        batch, length = ops.shape(attended)[0], ops.shape(attended)[1]
        merged = ops.reshape(attended, (batch, length, self.num_heads * self.key_dim))
        return self.output_dense(merged)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {"num_heads": self.num_heads, "key_dim": self.key_dim, "dropout_rate": self.dropout_rate}
        )
        return config
