"""The reparameterization-trick sampling layer of the variational autoencoder."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class Sampling(keras.layers.Layer):
    """Draws `z = mean + exp(log_var / 2) * noise` from `[mean, log_var]` while training.

    At inference it returns the mean, so a trained VAE maps an input to one reconstruction
    (deterministic predictions, reproducible anomaly scores, exports that match Keras).
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        mean, log_var = inputs
        if not training:
            return mean
        noise = keras.random.normal(ops.shape(mean), dtype=mean.dtype, seed=self.seed_generator)
        return mean + ops.exp(0.5 * log_var) * noise

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update({"seed": self.seed})
        return config
