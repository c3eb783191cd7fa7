"""Residual network: stages of basic residual blocks with projection shortcuts."""

from zoo import training
from zoo._params import Bool, Int, IntSeq, Real
from zoo._registry import register
from zoo._space import int_list
from zoo.errors import InvalidParameterError
from zoo.models._blocks import conv_block, dense_head, residual_block
from zoo.models.cnn import AUGMENTATION_CONSTRAINTS, augmentation, augmentation_space, check_poolable


def space(hp, prefix="resnet"):
    return {
        "stage_filters": int_list(hp, f"{prefix}_stage_filters", default=(16, 32), max_len=3,
                                  min_value=16, max_value=128, step=16),
        "blocks_per_stage": hp.Int(f"{prefix}_blocks_per_stage", 1, 3, default=2),
        "dropout_rate": hp.Float(f"{prefix}_dropout_rate", 0.0, 0.5, step=0.1, default=0.0),
        **augmentation_space(hp, prefix),
    }


CONSTRAINTS = {
    "stage_filters": IntSeq(low=1, high=4096, max_len=8),
    "blocks_per_stage": IntSeq(low=1, high=64, max_len=8),
    "stem_filters": Int(1, 4096),
    "dropout_rate": Real(0.0, 1.0, closed="left"),
    "batch_norm": Bool(),
    **AUGMENTATION_CONSTRAINTS,
    **training.LAYER_CONSTRAINTS,
}


@register("resnet", tasks=("multiclass", "binary", "regression"), input_kind="image",
          example_input_shape=(8, 8, 1), space=space, constraints=CONSTRAINTS)
def resnet(*, input_shape, num_outputs, task, stage_filters=(16, 32), blocks_per_stage=2,
           stem_filters=16, dropout_rate=0.0, batch_norm=True, flip="none", rotation=0.0, zoom=0.0,
           contrast=0.0, translation=0.0, activation="relu",
           initializer="auto", regularizer="none", regularization=0.0, max_norm=None):
    """Residual network for small images: a 3×3 stem (no early downsampling), then stages.

    Args:
        stage_filters: filters of each stage; every stage after the first halves the resolution.
        blocks_per_stage: residual blocks per stage, one number for all or one per stage.
        stem_filters: filters of the stem convolution.
        dropout_rate: dropout before the output layer.
        flip, rotation, zoom, contrast, translation: augmentation layers, active only in
            training (`zoo.models.cnn.augmentation`).
    """
    import keras

    params = locals()
    if len(blocks_per_stage) == 1:
        blocks_per_stage = blocks_per_stage * len(stage_filters)
    if len(blocks_per_stage) != len(stage_filters):
        raise InvalidParameterError(
            f"`blocks_per_stage` of `resnet` must have one entry or one per stage "
            f"({len(stage_filters)}). Received: blocks_per_stage={blocks_per_stage}"
        )
    check_poolable("resnet", input_shape, len(stage_filters) - 1)
    inputs = keras.Input(shape=input_shape, name="inputs")
    x = augmentation(inputs, flip=flip, rotation=rotation, zoom=zoom, contrast=contrast,
                     translation=translation)
    x = conv_block(x, stem_filters, name="stem", params=params, batch_norm=batch_norm)
    for stage, (width, blocks) in enumerate(zip(stage_filters, blocks_per_stage), start=1):
        for block in range(1, blocks + 1):
            strides = 2 if stage > 1 and block == 1 else 1
            x = residual_block(x, width, name=f"stage{stage}_block{block}", params=params,
                               strides=strides, batch_norm=batch_norm)
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    outputs = dense_head(x, units=(), task=task, num_outputs=num_outputs, params=params,
                         dropout_rate=dropout_rate)
    return keras.Model(inputs, outputs, name="resnet")
