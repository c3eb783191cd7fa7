"""Recurrent networks: SimpleRNN, LSTM and GRU, stacked and optionally bidirectional."""

from zoo import training
from zoo._params import Bool, IntSeq, Real
from zoo._registry import register
from zoo._space import int_list
from zoo.errors import InvalidParameterError
from zoo.models._blocks import dense_head

CELLS = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}


def make_space(cell):
    def space(hp, prefix=cell):
        return {
            "units": int_list(hp, f"{prefix}_units", default=(64,), max_len=3, min_value=16,
                              max_value=256, step=16),
            "bidirectional": hp.Boolean(f"{prefix}_bidirectional", default=False),
            "dropout_rate": hp.Float(f"{prefix}_dropout_rate", 0.0, 0.5, step=0.1, default=0.0),
        }

    return space


CONSTRAINTS = {
    "units": IntSeq(low=1, high=8192, max_len=16),
    "bidirectional": Bool(),
    "dropout_rate": Real(0.0, 1.0, closed="left"),
    "dense_units": IntSeq(low=1, high=65536, min_len=0, max_len=8),
    "unroll": Bool(),
    "activation": training.LAYER_CONSTRAINTS["activation"],
}


def build_recurrent(cell, *, input_shape, num_outputs, task, units, bidirectional, dropout_rate,
                    dense_units, unroll, activation):
    import keras

    if unroll and input_shape[0] is None:
        raise InvalidParameterError(
            f"`unroll` of `{cell}` needs a fixed sequence length. Received: input_shape={input_shape}"
        )
    layer_class = getattr(keras.layers, CELLS[cell])
    inputs = keras.Input(shape=input_shape, name="inputs")
    x = inputs
    for index, width in enumerate(units, start=1):
        last = index == len(units)
        layer = layer_class(width, return_sequences=not last, unroll=unroll, name=f"{cell}_{index}")
        if bidirectional:
            layer = keras.layers.Bidirectional(layer, name=f"bidirectional_{index}")
        x = layer(x)
        if dropout_rate:
            x = keras.layers.Dropout(dropout_rate, name=f"{cell}_{index}_drop")(x)
    params = {"activation": activation, "initializer": "auto", "regularizer": "none",
              "regularization": 0.0, "max_norm": None}
    outputs = dense_head(x, units=dense_units, task=task, num_outputs=num_outputs, params=params)
    return keras.Model(inputs, outputs, name=cell)


def _register(cell, title):
    def builder(*, input_shape, num_outputs, task, units=(64,), bidirectional=False,
                dropout_rate=0.0, dense_units=(), unroll=False, activation="relu"):
        return build_recurrent(cell, input_shape=input_shape, num_outputs=num_outputs, task=task,
                               units=units, bidirectional=bidirectional, dropout_rate=dropout_rate,
                               dense_units=dense_units, unroll=unroll, activation=activation)

    builder.__doc__ = f"""{title} for sequences (timesteps, features): classification, regression
    and one-step forecasting (regression with `num_outputs` = horizon).

    Args:
        units: units of each stacked recurrent layer; all but the last return sequences.
        bidirectional: wrap each layer in `Bidirectional`.
        dropout_rate: dropout after each recurrent layer.
        dense_units: hidden widths of the dense head (activation `activation`).
        unroll: unroll the loop (fixed length only) so the model converts to TFLite builtins.
    """
    builder.__name__ = builder.__qualname__ = cell
    return register(cell, tasks=("multiclass", "binary", "regression"), input_kind="sequence",
                    example_input_shape=(12, 3), space=make_space(cell),
                    constraints=CONSTRAINTS)(builder)


simple_rnn = _register("simple_rnn", "Stacked SimpleRNN")
lstm = _register("lstm", "Stacked LSTM")
gru = _register("gru", "Stacked GRU")
