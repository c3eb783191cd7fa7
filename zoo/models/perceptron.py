"""Single-layer perceptron: the inputs connect straight to the output units (no hidden layer)."""

from zoo import training
from zoo._params import Real
from zoo._registry import register
from zoo.tasks import SUPERVISED_TASKS


def space(hp, prefix="perceptron"):
    return {
        "regularizer": hp.Choice(f"{prefix}_regularizer", ["none", "l1", "l2"], default="none"),
        "regularization": hp.Float(f"{prefix}_regularization", 0.0, 0.01, step=0.0025, default=0.0),
    }


CONSTRAINTS = {
    "initializer": training.LAYER_CONSTRAINTS["initializer"],
    "regularizer": training.LAYER_CONSTRAINTS["regularizer"],
    "regularization": Real(0.0, 1.0),
}


@register("perceptron", tasks=SUPERVISED_TASKS, input_kind="tabular",
          example_input_shape=(4,), space=space, constraints=CONSTRAINTS)
def perceptron(*, input_shape, num_outputs, task, initializer="glorot", regularizer="none",
               regularization=0.0):
    """Single-layer perceptron: a linear decision boundary, no hidden layer.

    Args:
        initializer: weight initializer name.
        regularizer: 'none', 'l1', 'l2' or 'l1_l2' on the weights, with `regularization` strength.
    """
    import keras

    inputs = keras.Input(shape=input_shape, name="inputs")
    kwargs = training.dense_kwargs(activation="sigmoid", initializer=initializer,
                                   regularizer=regularizer, regularization=regularization,
                                   max_norm=None)
    activation = {"binary": "sigmoid", "multiclass": "softmax", "regression": None}[task]
    outputs = keras.layers.Dense(num_outputs, activation=activation, name="head", **kwargs)(inputs)
    return keras.Model(inputs, outputs, name="perceptron")


