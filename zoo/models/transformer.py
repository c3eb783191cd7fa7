"""Transformer encoder for sequence classification and regression; on images (height, width,
channels) a vision transformer: the image cut into square patches, each a token."""

from zoo import training
from zoo._params import Int, Options, Real
from zoo._registry import register
from zoo.errors import InvalidParameterError
from zoo.models._blocks import dense_head

PATCH_SIZES = (2, 4, 8)  # the patch sizes searched on images, beside the default, where they fit
MAX_PATCHES_A_SIDE = 8  # the default patch size cuts the longer side into at most this many
MAX_SEARCHED_PATCHES_A_SIDE = 16  # and a searched one into at most this many (256 tokens a square)


def space(hp, prefix="transformer", *, input_shape=None):
    """The searched parameters; on an image `input_shape` (height, width, channels) also the
    patch size: the default (`default_patch_size`), and 2, 4 and 8 where they fit the image and
    cut its longer side into at most MAX_SEARCHED_PATCHES_A_SIDE patches."""
    values = {
        "model_dim": hp.Choice(f"{prefix}_model_dim", [32, 64, 128], default=64),
        "num_heads": hp.Choice(f"{prefix}_num_heads", [2, 4, 8], default=4),
        "ff_dim": hp.Choice(f"{prefix}_ff_dim", [64, 128, 256], default=128),
        "num_blocks": hp.Int(f"{prefix}_num_blocks", 1, 4, default=2),
        "dropout_rate": hp.Float(f"{prefix}_dropout_rate", 0.0, 0.3, step=0.05, default=0.1),
        "positional": hp.Choice(f"{prefix}_positional", ["learned", "sinusoidal"], default="learned"),
    }
    if input_shape is not None and len(input_shape) == 3 and None not in input_shape[:2]:
        default = default_patch_size(input_shape)
        shorter, longer = min(input_shape[:2]), max(input_shape[:2])
        choices = sorted({default, *(size for size in PATCH_SIZES if size <= shorter
                                     and -(-longer // size) <= MAX_SEARCHED_PATCHES_A_SIDE)})
        values["patch_size"] = hp.Choice(f"{prefix}_patch_size", choices, default=default)
    return values


def default_patch_size(input_shape):
    """The smallest power of two that cuts the image's longer side into at most
    MAX_PATCHES_A_SIDE patches (2 on 16x16 images, 4 on 32x32, 16 on 128x128), at most its
    shorter side."""
    height, width = input_shape[:2]
    size = 1
    while -(-max(height, width) // size) > MAX_PATCHES_A_SIDE:
        size *= 2
    return min(size, height, width)


CONSTRAINTS = {
    "vocab_size": Int(2, 10_000_000, allow_none=True),
    "patch_size": Int(1, 4096, allow_none=True),
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
          example_input_shape=(12, 3), input_ranks=(1, 2, 3), space=space, constraints=CONSTRAINTS)
def transformer(*, input_shape, num_outputs, task, vocab_size=None, patch_size=None, model_dim=64,
                num_heads=4, ff_dim=128, num_blocks=2, dropout_rate=0.1, positional="learned",
                pooling="average", activation="relu"):
    """Transformer encoder over token ids, numeric sequences or image patches (a ViT).

    Takes token ids (length,) with `vocab_size`, numeric sequences (length, features), or images
    (height, width, channels): each square `patch_size` patch projected to a token (a side the
    patch size does not divide is zero-padded to whole patches), the patches in rows.

    Args:
        vocab_size: token vocabulary for integer inputs; None for numeric sequences and images.
        patch_size: for images, the side of the square patches (at most the image's shorter
            side); None picks `default_patch_size`. Only for images.
        model_dim, num_heads, ff_dim: width, attention heads (must divide model_dim), FFN width.
        num_blocks: encoder blocks.
        positional: 'learned' position embeddings or fixed 'sinusoidal' encoding.
        pooling: pooling over positions (tokens or patches) before the head.
    """
    import keras

    from zoo.layers import LearnedPositionalEmbedding, SinusoidalPositionalEncoding

    if model_dim % num_heads:
        raise InvalidParameterError(
            f"`num_heads` of `transformer` must divide model_dim={model_dim}. Received: num_heads={num_heads}"
        )
    tokens, image = len(input_shape) == 1, len(input_shape) == 3
    if vocab_size is not None and not tokens:
        raise InvalidParameterError(
            f"`vocab_size` of `transformer` applies to token ids of shape (length,). "
            f"Received: vocab_size={vocab_size} with input_shape={tuple(input_shape)}"
        )
    if tokens and vocab_size is None:
        raise InvalidParameterError(
            f"`input_shape` of `transformer` must be (length, features) for numeric sequences, or "
            f"(length,) token ids with a vocab_size. Received: input_shape={tuple(input_shape)}"
        )
    if patch_size is not None and not image:
        raise InvalidParameterError(
            f"`patch_size` of `transformer` applies to images (height, width, channels). "
            f"Received: patch_size={patch_size} with input_shape={tuple(input_shape)}"
        )
    if None in input_shape[:2 if image else 1]:
        raise InvalidParameterError(
            f"`input_shape` of `transformer` needs a fixed {'image size' if image else 'length'} for "
            f"positional encoding. Received: input_shape={tuple(input_shape)}"
        )
    inputs = keras.Input(shape=input_shape, dtype="int32" if tokens else "float32", name="inputs")
    if image:
        patch_size = check_patch_size(patch_size, input_shape)
        x = patch_embedding(inputs, patch_size=patch_size, model_dim=model_dim)
    elif tokens:
        x = keras.layers.Embedding(vocab_size, model_dim, name="token_embedding")(inputs)
    else:
        x = keras.layers.Dense(model_dim, name="input_projection")(inputs)
    position_layer = LearnedPositionalEmbedding if positional == "learned" else SinusoidalPositionalEncoding
    x = position_layer(x.shape[1], name="positional")(x)
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


def check_patch_size(patch_size, input_shape):
    """The patch size for `input_shape` images: `default_patch_size` for None; one larger than
    the image's shorter side is refused."""
    height, width = input_shape[:2]
    if patch_size is None:
        return default_patch_size(input_shape)
    if patch_size > min(height, width):
        raise InvalidParameterError(
            f"`patch_size` of `transformer` must be at most {min(height, width)}, the shorter side of "
            f"{height}x{width} images. Received: patch_size={patch_size}"
        )
    return patch_size


def patch_count(input_shape, patch_size):
    """How many patches (tokens) `patch_size` cuts an image of `input_shape` into."""
    height, width = input_shape[:2]
    return -(-height // patch_size) * -(-width // patch_size)


def patch_embedding(x, *, patch_size, model_dim):
    """Images (batch, height, width, channels) to patch tokens (batch, patches, model_dim): a
    convolution with kernel and stride `patch_size` projects each patch ('same' padding: a side
    the patch size does not divide is zero-padded to whole patches), then a reshape flattens the
    grid row by row. Both are TFLite and ONNX builtins."""
    import keras

    x = keras.layers.Conv2D(model_dim, patch_size, strides=patch_size, padding="same",
                            name="patch_embedding")(x)
    rows, columns = x.shape[1], x.shape[2]
    return keras.layers.Reshape((rows * columns, model_dim), name="patch_tokens")(x)
