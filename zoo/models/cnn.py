"""Convolutional network: conv blocks with pooling, optional augmentation, dense head; and the
image families' shared augmentation (its searched options, its block of Keras layers)."""

from zoo import training
from zoo._params import Bool, Int, IntSeq, Options, Real
from zoo._registry import register
from zoo._space import int_list
from zoo.errors import InvalidParameterError
from zoo.models._blocks import conv_block, dense_head


FLIPS = ("none", "horizontal", "vertical", "horizontal_and_vertical")
AUGMENTATION_CONSTRAINTS = {
    "flip": Options(FLIPS),
    "rotation": Real(0.0, 0.5),
    "zoom": Real(0.0, 0.9, closed="left"),
    "contrast": Real(0.0, 1.0, closed="left"),
    "translation": Real(0.0, 0.5),
}
NO_AUGMENTATION = {"flip": "none", "rotation": 0.0, "zoom": 0.0, "contrast": 0.0, "translation": 0.0}


def augmentation_space(hp, prefix):
    """Whether to augment (default: no), then how: the guide's flip, rotation, zoom, contrast and
    translation, in a conditional scope on `{prefix}_augment`."""
    augment = hp.Boolean(f"{prefix}_augment", default=False)
    with hp.conditional_scope(f"{prefix}_augment", [True]):
        chosen = {
            "flip": hp.Choice(f"{prefix}_flip", ["none", "horizontal"], default="horizontal"),
            "rotation": hp.Float(f"{prefix}_rotation", 0.0, 0.2, step=0.05, default=0.05),
            "zoom": hp.Float(f"{prefix}_zoom", 0.0, 0.3, step=0.1, default=0.1),
            "contrast": hp.Float(f"{prefix}_contrast", 0.0, 0.3, step=0.1, default=0.1),
            "translation": hp.Float(f"{prefix}_translation", 0.0, 0.2, step=0.05, default=0.1),
        }
    return dict(chosen) if augment else dict(NO_AUGMENTATION)


def space(hp, prefix="cnn"):
    return {
        "filters": int_list(hp, f"{prefix}_filters", default=(32, 64), max_len=3,
                            min_value=16, max_value=128, step=16),
        "kernel_size": hp.Choice(f"{prefix}_kernel_size", [3, 5], default=3),
        "dense_units": int_list(hp, f"{prefix}_dense_units", default=(64,), max_len=2,
                                min_value=32, max_value=256, step=32),
        "dropout_rate": hp.Float(f"{prefix}_dropout_rate", 0.0, 0.5, step=0.05, default=0.25),
        "batch_norm": hp.Boolean(f"{prefix}_batch_norm", default=True),
        **augmentation_space(hp, prefix),
    }


CONSTRAINTS = {
    "filters": IntSeq(low=1, high=4096, max_len=16),
    "kernel_size": Int(1, 15),
    "convs_per_block": Int(1, 4),
    "pooling": Options(("max", "average", "none"), aliases={"avg": "average"}),
    "dense_units": IntSeq(low=1, high=65536, min_len=0, max_len=8),
    "dropout_rate": Real(0.0, 1.0, closed="left"),
    "batch_norm": Bool(),
    **AUGMENTATION_CONSTRAINTS,
    **training.LAYER_CONSTRAINTS,
}


def augmentation(x, *, flip="none", rotation=0.0, zoom=0.0, contrast=0.0, translation=0.0,
                 value_range=None):
    """`x` through an `Augmentation` layer (Keras's random flip/rotation/zoom/translation/contrast,
    in training only) when any option asks for one; `value_range` bounds the contrast (pixels)."""
    options = {"flip": flip, "rotation": rotation, "zoom": zoom, "contrast": contrast,
               "translation": translation}
    if options == NO_AUGMENTATION:
        return x
    from zoo.layers.images import Augmentation

    return Augmentation(**options, value_range=value_range, name="augmentation")(x)


def check_poolable(name, input_shape, num_pools):
    smallest = min(input_shape[0] or 2**num_pools, input_shape[1] or 2**num_pools)
    if 2**num_pools > smallest:
        raise InvalidParameterError(
            f"`filters` of `{name}` asks for {num_pools} downsampling blocks, too many for "
            f"{input_shape[0]}x{input_shape[1]} images (at most {smallest.bit_length() - 1}). "
            f"Received: input_shape={tuple(input_shape)}"
        )


@register("cnn", tasks=("multiclass", "binary", "regression"), input_kind="image",
          example_input_shape=(8, 8, 1), space=space, constraints=CONSTRAINTS)
def cnn(*, input_shape, num_outputs, task, filters=(32, 64), kernel_size=3, convs_per_block=1,
        pooling="max", dense_units=(64,), dropout_rate=0.25, batch_norm=True, flip="none",
        rotation=0.0, zoom=0.0, contrast=0.0, translation=0.0, activation="relu", initializer="auto", regularizer="none",
        regularization=0.0, max_norm=None):
    """Convolutional network for images (height, width, channels).

    Args:
        filters: filters of each conv block; each block ends with 2×2 pooling.
        kernel_size, convs_per_block: convolution size and count per block.
        pooling: 'max', 'average' or 'none' (then the block downsamples with stride 2).
        dense_units: hidden widths of the dense head, after global average pooling.
        dropout_rate: dropout in the head.
        flip, rotation, zoom, contrast, translation: augmentation layers, active only in
            training (`augmentation`).
    """
    import keras

    params = locals()
    check_poolable("cnn", input_shape, len(filters))
    inputs = keras.Input(shape=input_shape, name="inputs")
    x = augmentation(inputs, flip=flip, rotation=rotation, zoom=zoom, contrast=contrast,
                     translation=translation)
    for block, width in enumerate(filters, start=1):
        for conv in range(1, convs_per_block + 1):
            last = conv == convs_per_block
            strides = 2 if last and pooling == "none" else 1
            x = conv_block(x, width, name=f"block{block}_{conv}", params=params,
                           kernel_size=kernel_size, strides=strides, batch_norm=batch_norm)
        if pooling == "max":
            x = keras.layers.MaxPooling2D(2, padding="same", name=f"block{block}_pool")(x)
        elif pooling == "average":
            x = keras.layers.AveragePooling2D(2, padding="same", name=f"block{block}_pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    outputs = dense_head(x, units=dense_units, task=task, num_outputs=num_outputs, params=params,
                         dropout_rate=dropout_rate)
    return keras.Model(inputs, outputs, name="cnn")
