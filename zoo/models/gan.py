"""Generative adversarial network: generator and discriminator trained with two optimizers."""

from zoo import training
from zoo._params import Real
from zoo._registry import register
from zoo.models.autoencoder import CONSTRAINTS as AUTOENCODER_CONSTRAINTS
from zoo.models.autoencoder import (
    architecture_space,
    build_decoder,
    check_reconstructable,
    encoder_features,
)


def space(hp, prefix="gan"):
    params = {
        "variant": hp.Choice(f"{prefix}_variant", ["dense", "conv"], default="dense"),
        "latent_dim": hp.Choice(f"{prefix}_latent_dim", [8, 16, 32, 64], default=16),
        "label_smoothing": hp.Float(f"{prefix}_label_smoothing", 0.0, 0.3, step=0.1, default=0.1),
    }
    params.update(architecture_space(hp, prefix, params["variant"], units=(128, 64), filters=(32, 64)))
    return params


CONSTRAINTS = {
    **AUTOENCODER_CONSTRAINTS,
    "label_smoothing": Real(0.0, 1.0, closed="left"),
    "dropout_rate": Real(0.0, 1.0, closed="left"),
}


@register("gan", tasks=("generation",), input_kind="image", example_input_shape=(8, 8, 1),
          input_ranks=(1, 2, 3), space=space, constraints=CONSTRAINTS)
def gan(*, input_shape, num_outputs, task, variant="dense", hidden_units=(128, 64), filters=(32, 64),
        latent_dim=16, label_smoothing=0.1, dropout_rate=0.3, output_activation="sigmoid",
        batch_norm=False, activation="leaky_relu", initializer="auto", regularizer="none",
        regularization=0.0, max_norm=None):
    """Generative adversarial network with its own train step; `sample(n)` generates new data.

    Args:
        variant, hidden_units, filters: the discriminator as an `autoencoder` encoder, the
            generator as its decoder (the mirror image).
        latent_dim: size of the generator's noise input.
        label_smoothing: one-sided: real samples get the target 1 - label_smoothing.
        dropout_rate: dropout in the discriminator, before its logit.
        output_activation: the generator's last activation; 'sigmoid' for data in [0, 1].
        batch_norm: batch normalization in the generator's blocks.

    `model.generator` (latent → data) works alone; `model(x)` is the discriminator's
    probability that `x` is real. `discriminator_loss` and `generator_loss` are the metrics.
    """
    import keras

    from zoo.layers import GenerativeAdversarialNetwork

    params = locals()
    check_reconstructable("gan", input_shape, variant, filters)
    generator = build_decoder(latent_dim=latent_dim, output_shape=input_shape, variant=variant,
                              hidden_units=hidden_units, filters=filters, params=params,
                              batch_norm=batch_norm, output_activation=output_activation, name="generator")
    inputs = keras.Input(shape=input_shape, name="inputs")
    x = encoder_features(inputs, variant=variant, hidden_units=hidden_units, filters=filters,
                         params=params, batch_norm=False)
    if dropout_rate:
        x = training.dropout_layer(dropout_rate, activation=activation, layer_name="discriminator_drop")(x)
    logit = keras.layers.Dense(1, name="logit")(x)
    discriminator = keras.Model(inputs, logit, name="discriminator")
    return GenerativeAdversarialNetwork(generator, discriminator, label_smoothing=label_smoothing, name="gan")
