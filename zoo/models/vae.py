"""Variational autoencoder: Gaussian encoder, sampling layer, decoder, reconstruction + KL loss."""

from zoo._params import Real
from zoo._registry import register
from zoo.models.autoencoder import CONSTRAINTS as AUTOENCODER_CONSTRAINTS
from zoo.models.autoencoder import (
    architecture_space,
    build_decoder,
    check_reconstructable,
    encoder_features,
)


def space(hp, prefix="vae"):
    params = {
        "variant": hp.Choice(f"{prefix}_variant", ["dense", "conv"], default="dense"),
        "latent_dim": hp.Choice(f"{prefix}_latent_dim", [2, 4, 8, 16, 32], default=8),
        "kl_weight": hp.Float(f"{prefix}_kl_weight", 0.1, 4.0, sampling="log", default=1.0),
    }
    params.update(architecture_space(hp, prefix, params["variant"], units=(128, 64), filters=(16, 32)))
    return params


CONSTRAINTS = {**AUTOENCODER_CONSTRAINTS, "kl_weight": Real(0.0, None)}


@register("vae", tasks=("generation", "reconstruction"), input_kind="image", example_input_shape=(8, 8, 1),
          input_ranks=(1, 2, 3), space=space, constraints=CONSTRAINTS)
def vae(*, input_shape, num_outputs, task, variant="dense", hidden_units=(128, 64), filters=(16, 32),
        latent_dim=8, kl_weight=1.0, output_activation="sigmoid", batch_norm=False, activation="relu",
        initializer="auto", regularizer="none", regularization=0.0, max_norm=None):
    """Variational autoencoder with its own train step; `sample(n)` generates new data.

    Args:
        variant, hidden_units, filters, batch_norm: encoder/decoder as in `autoencoder`.
        latent_dim: size of the Gaussian latent space.
        kl_weight: weight β of the KL term (β-VAE; 1 is the evidence lower bound).
        output_activation: 'sigmoid' (binary cross-entropy, data in [0, 1]) or 'linear'/'tanh'
            (squared error).

    `model.encoder` maps inputs to `[z_mean, z_log_var]`, `model.decoder` latents to data;
    `loss`, `reconstruction_loss` and `kl_loss` are reported as metrics.
    """
    import keras

    from zoo.layers import VariationalAutoencoder

    params = locals()
    check_reconstructable("vae", input_shape, variant, filters)
    inputs = keras.Input(shape=input_shape, name="inputs")
    x = encoder_features(inputs, variant=variant, hidden_units=hidden_units, filters=filters,
                         params=params, batch_norm=batch_norm)
    z_mean = keras.layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = keras.layers.Dense(latent_dim, kernel_initializer="zeros", name="z_log_var")(x)
    encoder = keras.Model(inputs, [z_mean, z_log_var], name="encoder")
    decoder = build_decoder(latent_dim=latent_dim, output_shape=input_shape, variant=variant,
                            hidden_units=hidden_units, filters=filters, params=params,
                            batch_norm=batch_norm, output_activation=output_activation)
    reconstruction = "binary_crossentropy" if output_activation == "sigmoid" else "squared_error"
    return VariationalAutoencoder(encoder, decoder, reconstruction=reconstruction, kl_weight=kl_weight,
                                  name="vae")
