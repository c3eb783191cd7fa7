"""Metric learning: pair distances, contrastive and triplet losses, and the Siamese network."""

import keras
from keras import ops

from zoo.errors import InvalidParameterError

DISTANCES = ("euclidean", "cosine")


def pair_distance(left, right, distance="euclidean"):
    """Distance between rows of two embedding batches: euclidean, or cosine (1 - cosine similarity)."""
    if distance == "euclidean":
        return ops.sqrt(ops.maximum(ops.sum(ops.square(left - right), axis=-1), 1e-12))
    if distance == "cosine":
        return 1.0 - ops.sum(left * right, axis=-1) / ops.maximum(
            ops.norm(left, axis=-1) * ops.norm(right, axis=-1), 1e-12)
    raise InvalidParameterError(f"`distance` must be one of {DISTANCES}. Received: distance={distance!r}")


def contrastive_loss(same, distances, margin=1.0):
    """Hadsell et al.: same-class pairs pulled together (d²), others pushed past `margin`."""
    same = ops.cast(ops.reshape(same, ops.shape(distances)), distances.dtype)
    return same * ops.square(distances) + (1.0 - same) * ops.square(ops.relu(margin - distances))


def triplet_loss(positive_distances, negative_distances, margin=1.0):
    """Schroff et al.: the anchor closer to its positive than to its negative by `margin`."""
    return ops.relu(positive_distances - negative_distances + margin)


@keras.saving.register_keras_serializable(package="zoo")
class ContrastiveLoss(keras.losses.Loss):
    """`contrastive_loss` as a Keras loss: `y_true` is 1 for same-class pairs, `y_pred` distances."""

    def __init__(self, margin=1.0, name="contrastive_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.margin = margin

    def call(self, y_true, y_pred):
        return contrastive_loss(y_true, y_pred, self.margin)

    def get_config(self):
        config = super().get_config()
        config.update({"margin": self.margin})
        return config


@keras.saving.register_keras_serializable(package="zoo")
class TripletLoss(keras.losses.Loss):
    """`triplet_loss` as a Keras loss: `y_pred` holds (anchor–positive, anchor–negative) distances."""

    def __init__(self, margin=1.0, name="triplet_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.margin = margin

    def call(self, y_true, y_pred):
        return triplet_loss(y_pred[..., 0], y_pred[..., 1], self.margin)

    def get_config(self):
        config = super().get_config()
        config.update({"margin": self.margin})
        return config


@keras.saving.register_keras_serializable(package="zoo")
class SiameseNetwork(keras.Model):
    """One shared `embed` model applied to each input; outputs distances between embeddings.

    `call([left, right])` returns the distance of each pair, shape (batch,);
    `call([anchor, positive, negative])` returns (batch, 2): anchor–positive, anchor–negative.
    Trained with `loss='contrastive'` on `fit((left, right), same)` or `loss='triplet'` on
    `fit((anchor, positive, negative))`; the loss is reported as `loss`.
    """

    def __init__(self, embed, distance="euclidean", loss="contrastive", margin=1.0, **kwargs):
        super().__init__(**kwargs)
        self.embed = embed
        self.distance = distance
        self.loss_kind = loss
        self.margin = margin
        self.build([embed.inputs[0].shape, embed.inputs[0].shape])

    def build(self, input_shape):
        """Nothing to create: `embed` is a built Functional model (marks the model built)."""

    def call(self, inputs, training=False):
        embeddings = [self.embed(x, training=training) for x in inputs]
        if len(embeddings) == 2:
            return pair_distance(embeddings[0], embeddings[1], self.distance)
        anchor, positive, negative = embeddings
        return ops.stack([pair_distance(anchor, positive, self.distance),
                          pair_distance(anchor, negative, self.distance)], axis=-1)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if self.loss_kind == "contrastive":
            if len(x) != 2 or y is None:
                raise InvalidParameterError(
                    "`x` of a contrastive `siamese` model must be a pair (left, right) with `y` = 1 "
                    f"for same-class pairs. Received: {len(x)} inputs, y={'None' if y is None else 'given'}")
            per_example = contrastive_loss(y, y_pred, self.margin)
        else:
            if len(x) != 3:
                raise InvalidParameterError(
                    "`x` of a triplet `siamese` model must be (anchor, positive, negative). "
                    f"Received: {len(x)} inputs")
            per_example = triplet_loss(y_pred[:, 0], y_pred[:, 1], self.margin)
        if sample_weight is not None:
            per_example = per_example * ops.cast(ops.reshape(sample_weight, ops.shape(per_example)), per_example.dtype)
        loss = ops.mean(per_example)
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return loss

    def get_config(self):
        config = super().get_config()
        config.update({"embed": keras.saving.serialize_keras_object(self.embed),
                       "distance": self.distance, "loss": self.loss_kind, "margin": self.margin})
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["embed"] = keras.saving.deserialize_keras_object(config["embed"])
        return cls(**config)
