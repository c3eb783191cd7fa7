"""Transformer encoder for sequence classification and regression."""

from zoo import training
from zoo._params import Int, Options, Real
from zoo._registry import register
from zoo.errors import InvalidParameterError
from zoo.models._blocks import dense_head


def space(hp, prefix="transformer"):
    return {
        "model_dim": hp.Choice(f"{prefix}_model_dim", [32, 64, 128], default=64),
        "num_heads": hp.Choice(f"{prefix}_num_heads", [2, 4, 8], default=4),
        "ff_dim": hp.Choice(f"{prefix}_ff_dim", [64, 128, 256], default=128),
        "num_blocks": hp.Int(f"{prefix}_num_blocks", 1, 4, default=2),
        "dropout_rate": hp.Float(f"{prefix}_dropout_rate", 0.0, 0.3, step=0.05, default=0.1),
        "positional": hp.Choice(f"{prefix}_positional", ["learned", "sinusoidal"], default="learned"),
    }


CONSTRAINTS = {
    "vocab_size": Int(2, 10_000_000, allow_none=True),
    "model_dim": Int(2, 8192),
    "num_heads": Int(1, 128),
    "ff_dim": Int(1, 65536),
    "num_blocks": Int(1, 64),
    "dropout_rate": Real(0.0, 1.0, closed="left"),
    "positional": Options(("learned", "sinusoidal")),
    "pooling": Options(("average", "max")),
    "activation": training.LAYER_CONSTRAINTS["activation"],
}


def encoder_block(x, *, name, model_dim, num_heads, ff_dim, dropout_rate, activation):
    """Self-attention and feed-forward sublayers, each residual and layer-normalized (post-norm)."""
    import keras

    from zoo.layers import MultiHeadSelfAttention

    attended = MultiHeadSelfAttention(num_heads, model_dim // num_heads, dropout_rate=dropout_rate,
                                      name=f"{name}_attention")(x)
    attended = keras.layers.Dropout(dropout_rate, name=f"{name}_attention_drop")(attended)
    x = keras.layers.LayerNormalization(epsilon=1e-6, name=f"{name}_attention_norm")(
        keras.layers.Add(name=f"{name}_attention_add")([x, attended]))
    hidden = keras.layers.Dense(ff_dim, name=f"{name}_ff_1")(x)
    hidden = training.activation_layer(activation, layer_name=f"{name}_ff_act")(hidden)
    hidden = keras.layers.Dense(model_dim, name=f"{name}_ff_2")(hidden)
    hidden = keras.layers.Dropout(dropout_rate, name=f"{name}_ff_drop")(hidden)
    return keras.layers.LayerNormalization(epsilon=1e-6, name=f"{name}_ff_norm")(
        keras.layers.Add(name=f"{name}_ff_add")([x, hidden]))


@register("transformer", tasks=("multiclass", "binary", "regression"), input_kind="sequence",
          example_input_shape=(12, 3), input_ranks=(1, 2), space=space, constraints=CONSTRAINTS)
def transformer(*, input_shape, num_outputs, task, vocab_size=None, model_dim=64, num_heads=4,
                ff_dim=128, num_blocks=2, dropout_rate=0.1, positional="learned",
                pooling="average", activation="relu"):
    """Transformer encoder over token ids (length,) with `vocab_size`, or numeric sequences
    (length, features).

    Args:
        vocab_size: token vocabulary for integer inputs; None for numeric sequences.
        model_dim, num_heads, ff_dim: width, attention heads (must divide model_dim), FFN width.
        num_blocks: encoder blocks.
        positional: 'learned' position embeddings or fixed 'sinusoidal' encoding.
        pooling: pooling over positions before the head.
    """
    import keras

    from zoo.layers import LearnedPositionalEmbedding, SinusoidalPositionalEncoding

    if model_dim % num_heads:
        raise InvalidParameterError(
            f"`num_heads` of `transformer` must divide model_dim={model_dim}. Received: num_heads={num_heads}"
        )
    tokens = len(input_shape) == 1
    if tokens != (vocab_size is not None):
        expected = "token ids of shape (length,)" if vocab_size else "(length, features)"
        raise InvalidParameterError(
            f"`input_shape` of `transformer` must be {expected} with vocab_size={vocab_size}. "
            f"Received: input_shape={tuple(input_shape)}"
        )
    if input_shape[0] is None:
        raise InvalidParameterError(
            f"`input_shape` of `transformer` needs a fixed length for positional encoding. "
            f"Received: input_shape={tuple(input_shape)}"
        )
    inputs = keras.Input(shape=input_shape, dtype="int32" if tokens else "float32", name="inputs")
    if tokens:
        x = keras.layers.Embedding(vocab_size, model_dim, name="token_embedding")(inputs)
    else:
        x = keras.layers.Dense(model_dim, name="input_projection")(inputs)
    position_layer = LearnedPositionalEmbedding if positional == "learned" else SinusoidalPositionalEncoding
    x = position_layer(input_shape[0], name="positional")(x)
    x = keras.layers.Dropout(dropout_rate, name="embedding_drop")(x)
    for block in range(1, num_blocks + 1):
        x = encoder_block(x, name=f"encoder{block}", model_dim=model_dim, num_heads=num_heads,
                          ff_dim=ff_dim, dropout_rate=dropout_rate, activation=activation)
    pool = keras.layers.GlobalAveragePooling1D if pooling == "average" else keras.layers.GlobalMaxPooling1D
    x = pool(name="pool")(x)
    params = {"activation": activation, "initializer": "auto", "regularizer": "none",
              "regularization": 0.0, "max_norm": None}
    outputs = dense_head(x, units=(), task=task, num_outputs=num_outputs, params=params)
    return keras.Model(inputs, outputs, name="transformer")
