"""Which Functional models to export from a catalog model: itself, or its parts.

Models with their own `train_step` (GAN, VAE, autoencoder, Siamese) are subclassed and have no
static graph; what ships is their Functional parts: a generator, an encoder and a decoder, an
embedding model.
"""

from zoo.errors import InvalidTypeError
from zoo.saving import has_graph

PART_ATTRIBUTES = ("encoder", "decoder", "generator", "discriminator", "embed")


def exportable_parts(model):
    """[(part name or None, Functional model)]: the model itself when it has a graph, else its parts."""
    import keras

    if not isinstance(model, keras.Model):
        raise InvalidTypeError(f"`model` must be a Keras model. Received: model of type {type(model).__name__}")
    if has_graph(model):
        return [(None, model)]
    parts = [(name, getattr(model, name)) for name in PART_ATTRIBUTES
             if isinstance(getattr(model, name, None), keras.Model) and has_graph(getattr(model, name))]
    if not parts:
        raise InvalidTypeError(
            f"`model` must be a Functional or Sequential model, or a subclassed one with Functional "
            f"parts ({', '.join(PART_ATTRIBUTES)}). Received: {type(model).__name__} '{model.name}'"
        )
    return parts
