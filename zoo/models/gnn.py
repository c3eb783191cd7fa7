"""Graph convolutional network (Kipf & Welling) for node classification and regression, with
helpers that turn an edge list into an adjacency matrix and check a graph's arrays."""

from zoo import training
from zoo._params import Bool, IntSeq, Real
from zoo._registry import register
from zoo._space import int_list
from zoo.errors import InvalidParameterError
from zoo.models._blocks import layer_options


def space(hp, prefix="gnn"):
    return {
        "hidden_units": int_list(hp, f"{prefix}_units", default=(16,), max_len=3,
                                 min_value=8, max_value=128, step=8),
        "dropout_rate": hp.Float(f"{prefix}_dropout_rate", 0.0, 0.7, step=0.1, default=0.5),
        "activation": hp.Choice(f"{prefix}_activation", ["relu", "elu", "tanh"], default="relu"),
    }


CONSTRAINTS = {
    "hidden_units": IntSeq(low=1, high=65536, min_len=0, max_len=16),
    "dropout_rate": Real(0.0, 1.0, closed="left"),
    "normalize": Bool(),
    **training.LAYER_CONSTRAINTS,
}


@register("gnn", tasks=("multiclass", "binary", "regression"), input_kind="graph",
          example_input_shape=(10, 4), space=space, constraints=CONSTRAINTS)
def gnn(*, input_shape, num_outputs, task, hidden_units=(16,), dropout_rate=0.5, normalize=True,
        activation="relu", initializer="auto", regularizer="none", regularization=0.0, max_norm=None):
    """Graph convolutional network: per-node predictions from node features and adjacency.

    `input_shape` is (nodes, features), nodes may be None; the model takes
    `[features (batch, nodes, features), adjacency (batch, nodes, nodes)]` and returns
    (batch, nodes, outputs). Train on some nodes with `sample_weight` 1 on labelled nodes and 0
    elsewhere. Helpers in `zoo.models.gnn`: `adjacency_from_edges(edges, num_nodes=N)` turns an
    edge list of (source, target) pairs into the adjacency matrix; `graph_inputs(features,
    adjacency)` checks one graph and returns the model's two inputs.

    Args:
        hidden_units: widths of the hidden graph convolutions.
        dropout_rate: dropout on the features entering each graph convolution.
        normalize: add self-loops and normalize the adjacency symmetrically inside the model
            (pass the raw 0/1 or weighted adjacency); False to feed an already normalized one.
    """
    import keras

    from zoo.layers import GraphConv, NormalizedAdjacency

    params = locals()
    features = keras.Input(shape=input_shape, name="features")
    adjacency = keras.Input(shape=(input_shape[0], input_shape[0]), name="adjacency")
    propagation = NormalizedAdjacency(name="normalized_adjacency")(adjacency) if normalize else adjacency
    x = features
    for index, units in enumerate(hidden_units, start=1):
        if dropout_rate:
            x = keras.layers.Dropout(dropout_rate, name=f"graph_{index}_drop")(x)
        x = GraphConv(units, name=f"graph_{index}_conv", **layer_options(params))([x, propagation])
        x = training.activation_layer(activation, layer_name=f"graph_{index}_act")(x)
    if dropout_rate:
        x = keras.layers.Dropout(dropout_rate, name="head_drop")(x)
    # the output layer is a graph convolution too (Kipf & Welling), so labels spread one more hop
    head_activation = {"binary": "sigmoid", "multiclass": "softmax"}.get(task)
    outputs = GraphConv(num_outputs, activation=head_activation, name="head")([x, propagation])
    return keras.Model([features, adjacency], outputs, name="gnn")

def adjacency_from_edges(edges, *, num_nodes, symmetric=True, weights=None):
    """A dense (num_nodes, num_nodes) float32 adjacency matrix from (source, target) pairs.

    `symmetric` adds each edge both ways (an undirected graph). Self-loops need not be listed:
    the model adds them.
    """
    import numpy as np

    edges = np.asarray(edges)
    if edges.size == 0:
        edges = edges.reshape(0, 2)
    if edges.ndim != 2 or edges.shape[1] != 2 or not np.issubdtype(edges.dtype, np.integer):
        raise InvalidParameterError(
            f"`edges` must be integer (source, target) pairs of shape (num_edges, 2). "
            f"Received: edges of shape {edges.shape} and dtype {edges.dtype}")
    if edges.size and (edges.min() < 0 or edges.max() >= num_nodes):
        raise InvalidParameterError(
            f"`edges` must index nodes in [0, {num_nodes - 1}] (num_nodes={num_nodes}). "
            f"Received: node ids from {edges.min()} to {edges.max()}")
    weights = np.ones(len(edges), dtype="float32") if weights is None else np.asarray(weights, dtype="float32")
    adjacency = np.zeros((num_nodes, num_nodes), dtype="float32")
    np.add.at(adjacency, (edges[:, 0], edges[:, 1]), weights)
    if symmetric:
        mirrored = adjacency.T.copy()
        np.fill_diagonal(mirrored, 0.0)
        adjacency += mirrored
    return adjacency


def normalize_adjacency(adjacency):
    """`D^-1/2 (A + I) D^-1/2` in numpy: what the model computes with `normalize=True`."""
    import numpy as np

    adjacency = np.asarray(adjacency, dtype="float32")
    with_loops = adjacency + np.eye(adjacency.shape[-1], dtype="float32")
    degree = with_loops.sum(axis=-1)
    inv_sqrt = np.where(degree > 0, 1.0 / np.sqrt(np.maximum(degree, 1e-12)), 0.0).astype("float32")
    return with_loops * inv_sqrt[..., :, None] * inv_sqrt[..., None, :]


def graph_inputs(features, adjacency):
    """Check one graph's `features` (nodes, features) and `adjacency` (nodes, nodes); return
    the model's inputs `[features[None], adjacency[None]]` as float32."""
    import numpy as np

    features = np.asarray(features, dtype="float32")
    adjacency = np.asarray(adjacency, dtype="float32")
    if features.ndim != 2:
        raise InvalidParameterError(
            f"`features` must be a (nodes, features) matrix. Received: features of shape {features.shape}")
    if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
        raise InvalidParameterError(
            f"`adjacency` must be a square (nodes, nodes) matrix. Received: adjacency of shape {adjacency.shape}")
    if adjacency.shape[0] != features.shape[0]:
        raise InvalidParameterError(
            f"`adjacency` must have one row per node of `features` ({features.shape[0]}). "
            f"Received: adjacency of shape {adjacency.shape}")
    if not (np.all(np.isfinite(adjacency)) and np.all(adjacency >= 0)):
        raise InvalidParameterError("`adjacency` must hold finite, non-negative edge weights. "
                                    "Received: negative or non-finite entries")
    return [features[None], adjacency[None]]
