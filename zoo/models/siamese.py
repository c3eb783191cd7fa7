"""Siamese network: a shared catalog backbone producing L2-normalized embeddings, trained on pairs
(contrastive loss) or triplets (triplet loss); pair and triplet generation from labelled data."""

from zoo._params import Int, Options, Real
from zoo._registry import get_spec, register
from zoo.errors import InvalidParameterError

BACKBONES = ("mlp", "cnn", "resnet", "simple_rnn", "lstm", "gru", "transformer")
DISTANCES = ("euclidean", "cosine")


def space(hp, prefix="siamese"):
    return {
        "embedding_dim": hp.Choice(f"{prefix}_embedding_dim", [8, 16, 32, 64, 128], default=32),
        "distance": hp.Choice(f"{prefix}_distance", list(DISTANCES), default="euclidean"),
        "margin": hp.Float(f"{prefix}_margin", 0.25, 1.5, step=0.25, default=1.0),
    }


CONSTRAINTS = {
    "backbone": Options(BACKBONES),
    "embedding_dim": Int(1, 65536),
    "distance": Options(DISTANCES, aliases={"l2": "euclidean"}),
    "loss": Options(("contrastive", "triplet")),
    "margin": Real(0.0, None, closed="neither"),
}


@register("siamese", tasks=("verification",), input_kind="any", example_input_shape=(8, 8, 1),
          input_ranks=(1, 2, 3), space=space, constraints=CONSTRAINTS)
def siamese(*, input_shape, num_outputs, task, backbone="mlp", embedding_dim=32, distance="euclidean",
            loss="contrastive", margin=1.0):
    """Siamese network: one shared encoder, distances between L2-normalized embeddings.

    Args:
        backbone: a catalog model (default parameters) whose head becomes the embedding; it
            must accept the input's rank (`cnn`/`resnet` images, `lstm` sequences, `mlp` any).
        embedding_dim: size of the embedding.
        distance: 'euclidean' or 'cosine' (1 - cosine similarity).
        loss: 'contrastive' (fit on `(left, right), same`) or 'triplet' (fit on
            `(anchor, positive, negative)`); `make_pairs` / `make_triplets` build them.
        margin: how far apart different-class embeddings are pushed.

    `model.embed` is the embedding sub-model; `model((left, right))` gives pair distances.
    """
    import keras

    from zoo._registry import create_model
    from zoo.layers import L2Normalize, SiameseNetwork

    ranks = get_spec(backbone).input_ranks
    if len(input_shape) not in ranks:
        raise InvalidParameterError(
            f"`backbone` of `siamese` must accept rank-{len(input_shape)} inputs; '{backbone}' takes "
            f"rank {' or '.join(map(str, ranks))}. Received: backbone={backbone!r}, "
            f"input_shape={tuple(input_shape)}")
    network = create_model(backbone, input_shape=input_shape, num_outputs=embedding_dim,
                           task="regression", compile=False)
    inputs = keras.Input(shape=input_shape, name="inputs")
    embedding = L2Normalize(name="l2_normalize")(network(inputs))
    embed = keras.Model(inputs, embedding, name="embed")
    return SiameseNetwork(embed, distance=distance, loss=loss, margin=margin, name="siamese")


def _check_labelled(x, y):
    import numpy as np

    x, y = np.asarray(x), np.asarray(y)
    if y.ndim != 1 or len(y) != len(x):
        raise InvalidParameterError(
            f"`y` must be one label per sample of `x` ({len(x)}). Received: y of shape {y.shape}")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise InvalidParameterError(
            f"`y` must hold at least 2 classes to make different-class pairs. "
            f"Received: {len(classes)} class ({', '.join(map(str, classes))})")
    if counts.max() < 2:
        raise InvalidParameterError(
            "`y` must have a class with at least 2 samples to make same-class pairs. "
            "Received: every class has 1 sample")
    return x, y


def make_pairs(x, y, *, num_pairs=None, seed=0):
    """Balanced pairs from labelled samples: half same-class, half different-class.

    Returns `((left, right), same)` with `same` 1.0 for same-class pairs, ready for
    `model.fit` of a contrastive `siamese` model. `num_pairs` defaults to `len(x)`.
    """
    import numpy as np

    x, y = _check_labelled(x, y)
    rng = np.random.default_rng(seed)
    num_pairs = len(x) if num_pairs is None else int(num_pairs)
    by_class = {label: np.flatnonzero(y == label) for label in np.unique(y)}
    pairable = [label for label, members in by_class.items() if len(members) >= 2]
    left, right, same = [], [], []
    for index in range(num_pairs):
        if index % 2 == 0:
            label = pairable[rng.integers(len(pairable))]
            first, second = rng.choice(by_class[label], size=2, replace=False)
        else:
            first = rng.integers(len(x))
            second = rng.choice(np.flatnonzero(y != y[first]))
        left.append(first)
        right.append(second)
        same.append(float(index % 2 == 0))
    return (x[left], x[right]), np.asarray(same, dtype="float32")


def make_triplets(x, y, *, num_triplets=None, seed=0):
    """(anchor, positive, negative) samples for a triplet `siamese` model; `num_triplets`
    defaults to `len(x)`."""
    import numpy as np

    x, y = _check_labelled(x, y)
    rng = np.random.default_rng(seed)
    num_triplets = len(x) if num_triplets is None else int(num_triplets)
    by_class = {label: np.flatnonzero(y == label) for label in np.unique(y)}
    anchors_pool = np.flatnonzero([len(by_class[label]) >= 2 for label in y])
    anchors = rng.choice(anchors_pool, size=num_triplets)
    positives = [rng.choice(by_class[y[a]][by_class[y[a]] != a]) for a in anchors]
    negatives = [rng.choice(np.flatnonzero(y != y[a])) for a in anchors]
    return x[anchors], x[positives], x[negatives]
