"""Autoencoder: dense or convolutional encoder → bottleneck → decoder; reconstruction-error
anomaly scores. The encoder and decoder builders here are shared with the VAE and the GAN."""

import math

from zoo import training
from zoo._params import Bool, Int, IntSeq, Options
from zoo._registry import register
from zoo._space import int_list
from zoo.errors import InvalidParameterError
from zoo.models._blocks import conv_block, dense_block, layer_options

VARIANTS = ("dense", "conv")
OUTPUT_ACTIVATIONS = ("sigmoid", "linear", "tanh")


def space(hp, prefix="autoencoder"):
    params = {
        "variant": hp.Choice(f"{prefix}_variant", list(VARIANTS), default="dense"),
        "latent_dim": hp.Choice(f"{prefix}_latent_dim", [2, 4, 8, 16, 32], default=8),
        "activation": hp.Choice(f"{prefix}_activation", ["relu", "elu", "swish", "tanh"], default="relu"),
    }
    params.update(architecture_space(hp, prefix, params["variant"], units=(64, 32), filters=(16, 32)))
    return params


def architecture_space(hp, prefix, variant, *, units, filters):
    """Dense widths or conv filters, each registered only under its variant."""
    if variant == "dense":
        with hp.conditional_scope(f"{prefix}_variant", ["dense"]):
            return {"hidden_units": int_list(hp, f"{prefix}_units", default=units, max_len=3,
                                             min_value=16, max_value=256, step=16)}
    with hp.conditional_scope(f"{prefix}_variant", ["conv"]):
        return {"filters": int_list(hp, f"{prefix}_filters", default=filters, max_len=3,
                                    min_value=8, max_value=128, step=8)}


CONSTRAINTS = {
    "variant": Options(VARIANTS, aliases={"convolutional": "conv", "mlp": "dense"}),
    "hidden_units": IntSeq(low=1, high=65536, min_len=0, max_len=16),
    "filters": IntSeq(low=1, high=4096, max_len=8),
    "latent_dim": Int(1, 65536),
    "output_activation": Options(OUTPUT_ACTIVATIONS),
    "batch_norm": Bool(),
    **training.LAYER_CONSTRAINTS,
}


def check_reconstructable(name, input_shape, variant, filters):
    """Refuse shapes the decoder cannot reproduce: unknown sizes, conv sizes not divisible by 2**blocks."""
    if any(d is None for d in input_shape):
        raise InvalidParameterError(
            f"`input_shape` of `{name}` must be fully known to reconstruct it. "
            f"Received: input_shape={tuple(input_shape)}")
    if variant != "conv":
        return
    if len(input_shape) != 3:
        raise InvalidParameterError(
            f"`input_shape` of `{name}` must be (height, width, channels) for variant 'conv'. "
            f"Received: input_shape={tuple(input_shape)}")
    factor = 2 ** len(filters)
    if input_shape[0] % factor or input_shape[1] % factor:
        raise InvalidParameterError(
            f"`input_shape` of `{name}` must have height and width divisible by {factor} "
            f"(2 ** len(filters)) for the conv variant to reconstruct it. "
            f"Received: input_shape={tuple(input_shape)}")


def encoder_features(inputs, *, variant, hidden_units, filters, params, batch_norm):
    """Flatten then dense blocks, or stride-2 conv blocks then flatten."""
    import keras

    if variant == "conv":
        x = inputs
        for index, width in enumerate(filters, start=1):
            x = conv_block(x, width, name=f"encoder_{index}", params=params, strides=2, batch_norm=batch_norm)
        return keras.layers.Flatten(name="encoder_flatten")(x)
    x = keras.layers.Flatten(name="encoder_flatten")(inputs) if len(inputs.shape) > 2 else inputs
    for index, width in enumerate(hidden_units, start=1):
        x = dense_block(x, width, name=f"encoder_{index}", params=params, batch_norm=batch_norm)
    return x


def build_decoder(*, latent_dim, output_shape, variant, hidden_units, filters, params, batch_norm,
                  output_activation, name="decoder"):
    """The mirror of the encoder: latent vector → data of `output_shape`."""
    import keras

    latent = keras.Input(shape=(latent_dim,), name="latent")
    activation = None if output_activation == "linear" else output_activation
    if variant == "conv":
        factor = 2 ** len(filters)
        grid = (output_shape[0] // factor, output_shape[1] // factor, filters[-1])
        x = dense_block(latent, math.prod(grid), name="decoder_project", params=params, batch_norm=batch_norm)
        x = keras.layers.Reshape(grid, name="decoder_reshape")(x)
        for index, width in enumerate(reversed(filters), start=1):
            x = keras.layers.Conv2DTranspose(width, 3, strides=2, padding="same", use_bias=not batch_norm,
                                             name=f"decoder_{index}_deconv", **layer_options(params))(x)
            if batch_norm:
                x = keras.layers.BatchNormalization(name=f"decoder_{index}_bn")(x)
            x = training.activation_layer(params["activation"], layer_name=f"decoder_{index}_act")(x)
        outputs = keras.layers.Conv2D(output_shape[-1], 3, padding="same", activation=activation,
                                      name="reconstruction")(x)
    else:
        x = latent
        for index, width in enumerate(reversed(hidden_units), start=1):
            x = dense_block(x, width, name=f"decoder_{index}", params=params, batch_norm=batch_norm)
        x = keras.layers.Dense(math.prod(output_shape), activation=activation, name="reconstruction")(x)
        outputs = keras.layers.Reshape(output_shape, name="decoder_reshape")(x)
    return keras.Model(latent, outputs, name=name)


@register("autoencoder", tasks=("reconstruction",), input_kind="image", example_input_shape=(8, 8, 1),
          input_ranks=(1, 2, 3), space=space, constraints=CONSTRAINTS)
def autoencoder(*, input_shape, num_outputs, task, variant="dense", hidden_units=(64, 32),
                filters=(16, 32), latent_dim=8, output_activation="sigmoid", batch_norm=False,
                activation="relu", initializer="auto", regularizer="none", regularization=0.0,
                max_norm=None):
    """Autoencoder (dense or convolutional) that reconstructs its input through a bottleneck.

    Args:
        variant: 'dense' (any input, flattened) or 'conv' (images; height and width divisible
            by 2 ** len(filters)).
        hidden_units: encoder widths of the dense variant; the decoder mirrors them.
        filters: stride-2 conv blocks of the conv variant; the decoder mirrors them.
        latent_dim: size of the bottleneck (the code).
        output_activation: 'sigmoid' for data in [0, 1], 'linear' for standardized data.
        batch_norm: batch normalization in every block.

    `model.encoder` and `model.decoder` are Functional sub-models; `anomaly_score(model, x)`
    gives per-sample reconstruction errors.
    """
    import keras

    from zoo.layers import Autoencoder

    params = locals()
    check_reconstructable("autoencoder", input_shape, variant, filters)
    inputs = keras.Input(shape=input_shape, name="inputs")
    x = encoder_features(inputs, variant=variant, hidden_units=hidden_units, filters=filters,
                         params=params, batch_norm=batch_norm)
    code = keras.layers.Dense(latent_dim, name="code")(x)
    encoder = keras.Model(inputs, code, name="encoder")
    decoder = build_decoder(latent_dim=latent_dim, output_shape=input_shape, variant=variant,
                            hidden_units=hidden_units, filters=filters, params=params,
                            batch_norm=batch_norm, output_activation=output_activation)
    return Autoencoder(encoder, decoder, name="autoencoder")


def anomaly_score(model, x, *, batch_size=256):
    """Per-sample mean squared reconstruction error of `model` (an autoencoder or VAE) on `x`.

    Higher means less like the training data; rank or threshold it to flag anomalies.
    """
    import numpy as np

    x = np.asarray(x, dtype="float32")
    reconstruction = model.predict(x, batch_size=batch_size, verbose=0)
    return np.mean(np.square(x - reconstruction).reshape(len(x), -1), axis=1)
