"""Pretrained backbones: keras.applications architectures (MobileNetV3 Small/Large, EfficientNetB0,
ResNet50) from scratch or from a local weights file, with a new head; a pretrained one is trained
frozen, then fine-tuned (`zoo.transfer.fine_tune_in_fit`)."""

import os

import numpy as np

from zoo import training
from zoo._params import Constraint, Int, IntSeq, Options, Real, _fmt
from zoo._registry import register
from zoo.errors import InvalidParameterError
from zoo.models._blocks import dense_head
from zoo.models.cnn import AUGMENTATION_CONSTRAINTS, augmentation, augmentation_space

# name -> (keras.applications class, its keyword arguments). Each takes raw 0-255 RGB pixels: the
# MobileNetV3s and EfficientNetB0 rescale inside themselves; ResNet50 gets caffe's BGR, mean-
# subtracted pixels from a ChannelAffine in front of it.
ARCHITECTURES = {
    "mobilenet_v3_small": ("MobileNetV3Small", {"include_preprocessing": True}),
    "mobilenet_v3_large": ("MobileNetV3Large", {"include_preprocessing": True}),
    "efficientnet_b0": ("EfficientNetB0", {}),
    "resnet50": ("ResNet50", {}),
}
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
MIN_SIDE = 32  # keras.applications' smallest input side; smaller images are resized up inside
WEIGHTS_SUFFIX = ".weights.h5"
NAME = "backbone"


class WeightsFile(Constraint):
    """None (from scratch), or the path of a local `.weights.h5` file (nothing is downloaded)."""

    description = f"None or the path of a local {WEIGHTS_SUFFIX} file (nothing is downloaded)"
    invalid_examples = ("imagenet", 3, "model.keras")

    def check(self, value, *, param, owner):
        if value is None:
            return None
        if not isinstance(value, (str, os.PathLike)) or not os.fspath(value).endswith(WEIGHTS_SUFFIX):
            raise self.fail(value, param=param, owner=owner)
        return os.fspath(value)


def space(hp, prefix=NAME):
    return {
        "dropout_rate": hp.Float(f"{prefix}_dropout_rate", 0.0, 0.5, step=0.1, default=0.2),
        "fine_tune_layers": hp.Choice(f"{prefix}_fine_tune_layers", [0, 10, 20, 40], default=20),
        **augmentation_space(hp, prefix),
    }


CONSTRAINTS = {
    "architecture": Options(tuple(ARCHITECTURES)),
    "weights": WeightsFile(),
    "head_units": IntSeq(low=1, high=65536, min_len=0, max_len=4),
    "dropout_rate": Real(0.0, 1.0, closed="left"),
    "fine_tune_layers": Int(0),
    "fine_tune_factor": Real(0.0, 1.0, closed="right"),
    **AUGMENTATION_CONSTRAINTS,
    **training.LAYER_CONSTRAINTS,
}


def takes_pixels(model):
    """True for a model that takes raw 0-255 pixels (a backbone): what an image dataset puts in
    front of it is a cast, not its standardization."""
    return model.name == NAME


@register(NAME, tasks=("multiclass", "binary", "regression"), input_kind="image",
          example_input_shape=(32, 32, 3), space=space, constraints=CONSTRAINTS)
def backbone(*, input_shape, num_outputs, task, architecture="mobilenet_v3_small", weights=None,
             head_units=(), dropout_rate=0.2, fine_tune_layers=20, fine_tune_factor=0.1, flip="none",
             rotation=0.0, zoom=0.0, contrast=0.0, translation=0.0, activation="relu",
             initializer="auto", regularizer="none", regularization=0.0, max_norm=None):
    """A keras.applications architecture on raw 0-255 pixels (1 or 3 channels), then a new head.

    Args:
        architecture: 'mobilenet_v3_small', 'mobilenet_v3_large', 'efficientnet_b0', 'resnet50'.
        weights: None trains the whole network from scratch; a local `.weights.h5` file saved from
            the same architecture without its top (`include_top=False`) starts from it: the base
            runs in inference mode, is frozen for the first half of each fit's epochs, then its top
            `fine_tune_layers` weighted layers train at `fine_tune_factor` x the learning rate.
        head_units, dropout_rate: hidden widths of the new head and the dropout before its output.
        flip, rotation, zoom, contrast, translation: augmentation of the pixels, in training only.
    """
    import keras

    params = locals()
    height, width, channels = input_shape
    if channels not in (1, 3):
        raise InvalidParameterError(
            f"`input_shape` of `backbone` must have 1 or 3 channels. Received: input_shape={tuple(input_shape)}")
    inputs = keras.Input(shape=input_shape, name="inputs")
    x = augmentation(inputs, flip=flip, rotation=rotation, zoom=zoom, contrast=contrast,
                     translation=translation, value_range=(0.0, 255.0))
    if channels == 1:
        x = keras.layers.Concatenate(name="grey_to_rgb")([x, x, x])
    size = (max(height, MIN_SIDE), max(width, MIN_SIDE))
    if size != (height, width):
        x = keras.layers.Resizing(*size, interpolation="bilinear", name="resize_up")(x)
    if architecture == "resnet50":
        from zoo.layers.images import ChannelAffine

        x = ChannelAffine([1.0, 1.0, 1.0], [-m for m in CAFFE_MEAN_BGR], order=[2, 1, 0], name="caffe_pixels")(x)
    base = _application(architecture, (*size, 3), weights)
    x = base(x, training=False) if weights else base(x)
    x = keras.layers.GlobalAveragePooling2D(name="backbone_pool")(x)
    outputs = dense_head(x, units=head_units, task=task, num_outputs=num_outputs, params=params,
                         dropout_rate=dropout_rate)
    model = keras.Model(inputs, outputs, name=NAME)
    if weights and fine_tune_layers:
        from zoo.transfer import fine_tune_in_fit

        fine_tune_in_fit(model, fine_tune_layers=fine_tune_layers, fine_tune_factor=fine_tune_factor)
    return model


def _application(architecture, input_shape, weights):
    """The architecture without its top, named `transfer_base`, from `weights` (frozen) or fresh."""
    import warnings

    import keras

    class_name, options = ARCHITECTURES[architecture]
    base = getattr(keras.applications, class_name)(input_shape=input_shape, include_top=False,
                                                   weights=None, **options)
    if weights is None:
        return _with_constant_normalization(base)
    if not os.path.isfile(weights):
        raise InvalidParameterError(
            f"`weights` of `backbone` must be an existing local {WEIGHTS_SUFFIX} file. Received: weights={_fmt(weights)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            base.load_weights(weights)
    except (ValueError, OSError, KeyError) as error:
        # Keras's first line, without the example it goes on to quote ("A total of 74 objects
        # could not be loaded. Example error message for object <Conv2D ...>:")
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0].split(". Example")[0].rstrip(".:")
        raise InvalidParameterError(
            f"`weights` of `backbone` does not fit architecture {architecture!r} without its top "
            f"({reason}). Received: weights={_fmt(weights)}") from None
    base = _with_constant_normalization(base)
    base.trainable = False
    return base


def _with_constant_normalization(base):
    """`base` named `transfer_base`, its Keras `Normalization` layers (EfficientNetB0's input
    normalization) replaced by `Standardize` with the same statistics, the other layers' weights
    copied: Keras's layer holds its statistics as tensors the traced function captures, which an
    ONNX export turns into extra model inputs; Standardize makes them graph constants."""
    import keras

    from zoo.layers.preprocessing import Standardize
    from zoo.transfer import BASE_NAME

    if not any(isinstance(layer, keras.layers.Normalization) for layer in base.layers):
        base.name = BASE_NAME
        return base

    def clone(layer):
        if isinstance(layer, keras.layers.Normalization):
            return Standardize(np.ravel(layer.mean), np.ravel(layer.variance), name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(base, clone_function=clone)
    for layer in copy.layers:
        if layer.weights:
            layer.set_weights(base.get_layer(layer.name).get_weights())
    copy.name = BASE_NAME
    return copy
