"""Models that own their losses: autoencoder, variational autoencoder, generative adversarial
network. Each holds its parts as Functional sub-models, so they can be used and exported alone."""

import keras
import tensorflow as tf
from keras import ops

from zoo.layers.sampling import Sampling


def _serialize(**parts):
    return {name: keras.saving.serialize_keras_object(part) for name, part in parts.items()}


def _deserialize(config, *names):
    config = dict(config)
    for name in names:
        config[name] = keras.saving.deserialize_keras_object(config[name])
    return config


def _inputs_of(data):
    x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
    return x


def _compile_from_config(model, config):
    """What Keras does for models whose `compile` is not overridden: compile, build the optimizer."""
    model.compile(**keras.saving.deserialize_keras_object(config))
    if model.built:
        model.optimizer.build(model.trainable_variables)


def _per_sample_sum(values):
    return ops.sum(ops.reshape(values, (ops.shape(values)[0], -1)), axis=-1)


@keras.saving.register_keras_serializable(package="zoo")
class Autoencoder(keras.Model):
    """`decoder(encoder(x))`, trained to reproduce its input (mean squared error by default).

    `fit(x)` and `fit(x, x)` are the same; `fit(noisy, clean)` trains a denoising autoencoder.
    """

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.build(encoder.inputs[0].shape)

    def build(self, input_shape):
        """Nothing to create: the parts are built Functional models (marks the model built)."""

    def call(self, inputs, training=False):
        return self.decoder(self.encoder(inputs, training=training), training=training)

    def compile(self, optimizer="adam", loss="mean_squared_error", **kwargs):
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    def compile_from_config(self, config):
        _compile_from_config(self, config)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return super().compute_loss(x=x, y=x if y is None else y, y_pred=y_pred,
                                    sample_weight=sample_weight, training=training)

    def get_config(self):
        config = super().get_config()
        config.update(_serialize(encoder=self.encoder, decoder=self.decoder))
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**_deserialize(config, "encoder", "decoder"))


@keras.saving.register_keras_serializable(package="zoo")
class VariationalAutoencoder(keras.Model):
    """Encoder to `[z_mean, z_log_var]`, `Sampling`, decoder; loss = reconstruction + β·KL.

    `reconstruction` is 'binary_crossentropy' (data in [0, 1], sigmoid decoder) or
    'squared_error', summed over features and averaged over the batch. `loss`,
    `reconstruction_loss` and `kl_loss` are reported as metrics. `call` reconstructs from the
    mean at inference; `sample(n)` decodes draws from the standard normal prior.
    """

    def __init__(self, encoder, decoder, reconstruction="binary_crossentropy", kl_weight=1.0,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.reconstruction = reconstruction
        self.kl_weight = kl_weight
        self.seed = seed
        self.sampling = Sampling(seed=seed, name="sampling")
        self.sample_seed = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")
        self.build(encoder.inputs[0].shape)

    def build(self, input_shape):
        """Only the weightless sampling layer is left to build; the parts are built models."""
        latent_shape = self.encoder.outputs[0].shape
        self.sampling.build([latent_shape, latent_shape])

    @property
    def latent_dim(self):
        return self.decoder.inputs[0].shape[-1]

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]

    def call(self, inputs, training=False):
        z_mean, z_log_var = self.encoder(inputs, training=training)
        z = self.sampling([z_mean, z_log_var], training=training)
        return self.decoder(z, training=training)

    def _loss_terms(self, x, training):
        z_mean, z_log_var = self.encoder(x, training=training)
        reconstruction = self.decoder(self.sampling([z_mean, z_log_var], training=training), training=training)
        x = ops.cast(x, reconstruction.dtype)
        if self.reconstruction == "binary_crossentropy":
            errors = keras.losses.binary_crossentropy(ops.expand_dims(x, -1), ops.expand_dims(reconstruction, -1))
        else:
            errors = ops.square(x - reconstruction)
        reconstruction_loss = ops.mean(_per_sample_sum(errors))
        kl = -0.5 * (1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
        kl_loss = ops.mean(ops.sum(kl, axis=-1))
        total = reconstruction_loss + self.kl_weight * kl_loss
        if self.losses:
            total = total + ops.sum(self.losses)
        return total, reconstruction_loss, kl_loss

    def _report(self, total, reconstruction_loss, kl_loss):
        self.loss_tracker.update_state(total)
        self.reconstruction_tracker.update_state(reconstruction_loss)
        self.kl_tracker.update_state(kl_loss)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        x = _inputs_of(data)
        with tf.GradientTape() as tape:
            losses = self._loss_terms(x, training=True)
        gradients = tape.gradient(losses[0], self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return self._report(*losses)

    def test_step(self, data):
        return self._report(*self._loss_terms(_inputs_of(data), training=False))

    def sample(self, num_samples, seed=None):
        """Decode `num_samples` draws from the prior; a numpy array of the data's shape."""
        z = keras.random.normal((num_samples, self.latent_dim), seed=self.sample_seed if seed is None else seed)
        return ops.convert_to_numpy(self.decoder(z, training=False))

    def get_config(self):
        config = super().get_config()
        config.update(_serialize(encoder=self.encoder, decoder=self.decoder))
        config.update({"reconstruction": self.reconstruction, "kl_weight": self.kl_weight,
                       "seed": self.seed})
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**_deserialize(config, "encoder", "decoder"))


@keras.saving.register_keras_serializable(package="zoo")
class GenerativeAdversarialNetwork(keras.Model):
    """A generator (latent → data) and a discriminator (data → logit) trained against each other.

    Two optimizers: the compiled `optimizer` trains the discriminator, `generator_optimizer`
    (a copy of it unless given to `compile`) the generator. `label_smoothing` is one-sided: real
    samples get the target `1 - label_smoothing`. `discriminator_loss` and `generator_loss` are
    reported as metrics. `call(x)` is the discriminator's probability that `x` is real;
    `sample(n)` draws from the generator, which is also usable alone as `gan.generator`.
    """

    def __init__(self, generator, discriminator, label_smoothing=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.label_smoothing = label_smoothing
        self.seed = seed
        self.noise_seed = keras.random.SeedGenerator(seed)
        self.discriminator_tracker = keras.metrics.Mean(name="discriminator_loss")
        self.generator_tracker = keras.metrics.Mean(name="generator_loss")
        self.generator_optimizer = None
        self.build(discriminator.inputs[0].shape)

    def build(self, input_shape):
        """Nothing to create: the parts are built Functional models (marks the model built)."""

    @property
    def latent_dim(self):
        return self.generator.inputs[0].shape[-1]

    @property
    def metrics(self):
        return [self.discriminator_tracker, self.generator_tracker]

    def compile(self, optimizer="adam", generator_optimizer=None, **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        if generator_optimizer is None:
            generator_optimizer = self.optimizer.__class__.from_config(self.optimizer.get_config())
        self.generator_optimizer = keras.optimizers.get(generator_optimizer)
        # built now, so a saved model's optimizer state has variables to load into
        self.optimizer.build(self.discriminator.trainable_variables)
        self.generator_optimizer.build(self.generator.trainable_variables)

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))

    def call(self, inputs, training=False):
        return ops.sigmoid(self.discriminator(inputs, training=training))

    def _noise(self, batch_size):
        return keras.random.normal((batch_size, self.latent_dim), seed=self.noise_seed)

    def _discriminator_loss(self, real, fake, training):
        real_logits = self.discriminator(real, training=training)
        fake_logits = self.discriminator(fake, training=training)
        real_loss = keras.losses.binary_crossentropy(
            ops.full_like(real_logits, 1.0 - self.label_smoothing), real_logits, from_logits=True)
        fake_loss = keras.losses.binary_crossentropy(ops.zeros_like(fake_logits), fake_logits, from_logits=True)
        return ops.mean(real_loss) + ops.mean(fake_loss)

    def _generator_loss(self, fake, training):
        logits = self.discriminator(fake, training=training)
        return ops.mean(keras.losses.binary_crossentropy(ops.ones_like(logits), logits, from_logits=True))

    def _report(self, discriminator_loss, generator_loss):
        self.discriminator_tracker.update_state(discriminator_loss)
        self.generator_tracker.update_state(generator_loss)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        real = _inputs_of(data)
        batch_size = ops.shape(real)[0]
        fake = self.generator(self._noise(batch_size), training=True)
        with tf.GradientTape() as tape:
            discriminator_loss = self._discriminator_loss(real, fake, training=True)
        variables = self.discriminator.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(discriminator_loss, variables), variables))
        with tf.GradientTape() as tape:
            fake = self.generator(self._noise(batch_size), training=True)
            generator_loss = self._generator_loss(fake, training=True)
        variables = self.generator.trainable_variables
        self.generator_optimizer.apply_gradients(zip(tape.gradient(generator_loss, variables), variables))
        return self._report(discriminator_loss, generator_loss)

    def test_step(self, data):
        real = _inputs_of(data)
        fake = self.generator(self._noise(ops.shape(real)[0]), training=False)
        return self._report(self._discriminator_loss(real, fake, training=False),
                            self._generator_loss(fake, training=False))

    def sample(self, num_samples, seed=None):
        """Generate `num_samples` samples; a numpy array of the data's shape."""
        z = keras.random.normal((num_samples, self.latent_dim), seed=self.noise_seed if seed is None else seed)
        return ops.convert_to_numpy(self.generator(z, training=False))

    def get_config(self):
        config = super().get_config()
        config.update(_serialize(generator=self.generator, discriminator=self.discriminator))
        config.update({"label_smoothing": self.label_smoothing, "seed": self.seed})
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**_deserialize(config, "generator", "discriminator"))
