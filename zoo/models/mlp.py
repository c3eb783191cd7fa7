"""Multi-layer perceptron: stacked dense blocks with the guide's regularizers."""

from zoo import training
from zoo._params import Bool, IntSeq, Real
from zoo._registry import register
from zoo._space import int_list
from zoo.models._blocks import dense_block
from zoo.tasks import CLASSIFICATION_TASKS

# The default point of a search on a table (a search over the same space): RealMLP's tuned defaults
# (Holzmüller et al. 2024, "Better by Default") as far as the catalog's options reach: three
# 256-wide layers with dropout, AdamW with weight decay, a flat-then-cosine learning rate, label
# smoothing 0.1 (table_training_space), and zoo.preprocessing.feature_space's defaults before them.
# Chosen on the tables oj, carseats and anes96 (benchmarks/tabular_quality.py TUNING; 2 seeds, the
# default point alone, 10 epochs): swish, RealMLP's regression activation (mish) nearly, for every
# task (SELU with alpha dropout, its classification one, fell to R² 0.44-0.59 on carseats against
# 0.78-0.81), learning rate 1e-3 (2e-3: mean gap to HistGradientBoosting +5.2 points, 1e-3: +6.5).
TABLE_DEFAULTS = {
    "mlp_units_count": 3, "mlp_units_0": 256, "mlp_units_1": 256, "mlp_units_2": 256, "mlp_units_3": 256,
    "mlp_activation": "swish", "mlp_dropout_rate": 0.1,
    "train_optimizer": "adamw", "train_learning_rate": 1e-3,
}
ANNEALS = ("none", "cosine", "flat_cosine")  # the learning rate over a fit's epochs
CLASS_WEIGHTS = ("none", "balanced")


def space(hp, prefix="mlp"):
    return {
        "hidden_units": int_list(hp, f"{prefix}_units", default=(64, 64), max_len=4,
                                 min_value=16, max_value=256, step=16),
        "activation": hp.Choice(f"{prefix}_activation", ["relu", "elu", "selu", "swish", "tanh"],
                                default="relu"),
        "dropout_rate": hp.Float(f"{prefix}_dropout_rate", 0.0, 0.5, step=0.1, default=0.0),
        "batch_norm": hp.Boolean(f"{prefix}_batch_norm", default=False),
    }


CONSTRAINTS = {
    "hidden_units": IntSeq(low=1, high=65536, max_len=64),
    "dropout_rate": Real(0.0, 1.0, closed="left"),
    "batch_norm": Bool(),
    **training.LAYER_CONSTRAINTS,
}


@register("mlp", tasks=("multiclass", "binary", "regression"), input_kind="tabular",
          example_input_shape=(16,), input_ranks=(1, 2, 3), space=space, constraints=CONSTRAINTS)
def mlp(*, input_shape, num_outputs, task, hidden_units=(64, 64), dropout_rate=0.0,
        batch_norm=False, activation="relu", initializer="auto", regularizer="none",
        regularization=0.0, max_norm=None):
    """Multi-layer perceptron; images and sequences are flattened first.

    Args:
        hidden_units: width of each hidden layer (its length is the depth).
        dropout_rate: dropout after each hidden layer (AlphaDropout with SELU).
        batch_norm: batch normalization before each activation.
        activation: hidden activation; initializer 'auto' picks He, LeCun (SELU) or Glorot.
        regularizer, regularization: L1, L2 or elastic-net (l1_l2) weight penalty.
        max_norm: max-norm constraint on each unit's incoming weights.
    """
    import keras

    params = locals()
    inputs = keras.Input(shape=input_shape, name="inputs")
    x = keras.layers.Flatten(name="flatten")(inputs) if len(input_shape) > 1 else inputs
    for index, units in enumerate(hidden_units):
        x = dense_block(x, units, name=f"hidden_{index + 1}", params=params,
                        batch_norm=batch_norm, dropout_rate=dropout_rate)
    outputs = training.output_head(x, task=task, num_outputs=num_outputs)
    return keras.Model(inputs, outputs, name="mlp")


def table_training_space(hp, *, task, fixed=()):
    """The training side of the table recipe, beside `training.training_space`: decoupled weight
    decay, the learning rate's anneal over the epochs, and for classification label smoothing and
    class weights (names in `fixed` are left to the user's values)."""
    params = {}
    if "weight_decay" not in fixed:
        params["weight_decay"] = hp.Choice("train_weight_decay", [0.0, 0.01, 0.1, 0.3], default=0.1)
    if "schedule" not in fixed:
        params["anneal"] = hp.Choice("train_anneal", list(ANNEALS), default="flat_cosine")
    if task in CLASSIFICATION_TASKS:
        if "label_smoothing" not in fixed:
            params["label_smoothing"] = hp.Choice("train_label_smoothing", [0.0, 0.1, 0.2], default=0.1)
        if "class_weight" not in fixed:
            params["class_weight"] = hp.Choice("train_class_weight", list(CLASS_WEIGHTS), default="none")
    return params
