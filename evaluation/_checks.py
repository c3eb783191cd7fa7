"""Running a model on arrays and refusing what cannot be evaluated, in the catalog's message format."""

import numpy as np

from zoo.errors import InvalidParameterError, InvalidTypeError, unknown_name
from zoo.tasks import SUPERVISED_TASKS

TASKS = (*SUPERVISED_TASKS, "reconstruction", "verification")
# softmax rows sum to 1 up to float32 rounding; anything further off is not a distribution
PROBABILITY_TOLERANCE = 1e-3


def check_task(task):
    if task is not None and task not in TASKS:
        raise unknown_name("task", task, TASKS)
    return task


def as_array(values, name):
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as error:
        raise InvalidTypeError(f"`{name}` must be an array. Received: {type(values).__name__} ({error})") from None
    if array.dtype == object:
        raise InvalidTypeError(f"`{name}` must be a numeric array. Received: an array of Python objects")
    return array


def check_samples(X, name="X", *, allow_missing=False):
    """An array with at least one sample and only finite numbers (NaN too with `allow_missing`:
    missing values that the model imputes itself)."""
    X = as_array(X, name)
    if X.ndim == 0 or len(X) == 0:
        raise InvalidParameterError(f"`{name}` must hold at least one sample. Received: {name} of shape {X.shape}")
    if np.issubdtype(X.dtype, np.number):
        bad = ~np.isfinite(X)
        if allow_missing:
            bad &= ~np.isnan(X)
        if bad.any():
            allowed = "finite values or NaN" if allow_missing else "only finite values"
            raise InvalidParameterError(
                f"`{name}` must contain {allowed}. Received: {int(bad.sum())} NaN/inf values"
            )
    return X


def check_input_shape(model, X, name="X"):
    """X's per-sample shape against a Keras model's declared input (None matches anything)."""
    inputs = getattr(model, "inputs", None)
    if not inputs or len(inputs) != 1:
        return
    expected = tuple(inputs[0].shape)[1:]
    received = tuple(X.shape[1:])
    if len(expected) != len(received) or any(e is not None and e != r for e, r in zip(expected, received)):
        shape = "(None, " + ", ".join("None" if e is None else str(e) for e in expected) + ")"
        raise InvalidParameterError(
            f"`{name}` must have shape {shape} to match the model's input. Received: {name} of shape {X.shape}"
        )


def predict(model, X, *, batch_size=256):
    """A model's outputs on X: `model.predict` for Keras models, a plain call for any other callable."""
    if hasattr(model, "predict"):
        check_input_shape(model, X)
        return model.predict(X, batch_size=batch_size, verbose=0)
    if callable(model):
        return model(X)
    raise InvalidTypeError(f"`model` must be a Keras model or a callable. Received: model of type {type(model).__name__}")


def check_outputs(outputs, num_samples, name="predictions"):
    """Model outputs as a 2-D float array with one finite row per sample."""
    if isinstance(outputs, (list, tuple)) and len(outputs) == 1:
        outputs = outputs[0]
    if isinstance(outputs, (list, tuple, dict)):
        raise InvalidParameterError(
            f"`model` must have a single output for this report. Received: {len(outputs)} outputs"
        )
    outputs = np.asarray(outputs, dtype="float64")
    if outputs.ndim == 1:
        outputs = outputs[:, None]
    if outputs.ndim != 2:
        raise InvalidParameterError(
            f"`{name}` must be one row of outputs per sample. Received: {name} of shape {outputs.shape}"
        )
    if len(outputs) != num_samples:
        raise InvalidParameterError(
            f"`{name}` must have one row per label. Received: {len(outputs)} rows for {num_samples} labels"
        )
    if not np.isfinite(outputs).all():
        raise InvalidParameterError(
            f"`{name}` must be finite. Received: {int((~np.isfinite(outputs)).sum())} NaN/inf model outputs"
        )
    return outputs


def _integer_labels(y):
    if np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_):
        return True
    return np.issubdtype(y.dtype, np.floating) and bool(np.all(np.mod(y, 1) == 0))


def infer_task(outputs, y):
    """binary (one column in [0, 1] and 0/1 labels, or two columns), multiclass (rows that are
    distributions over 3+ columns, integer labels), else regression."""
    y = np.asarray(y)
    columns = outputs.shape[1]
    if y.ndim == 1 and _integer_labels(y):
        in_unit = outputs.min() >= 0.0 and outputs.max() <= 1.0
        sums_to_one = np.allclose(outputs.sum(axis=1), 1.0, atol=PROBABILITY_TOLERANCE)
        if columns == 1 and in_unit and set(np.unique(y)) <= {0, 1}:
            return "binary"
        if columns >= 2 and in_unit and sums_to_one:
            return "binary" if columns == 2 else "multiclass"
    return "regression"


def class_probabilities(outputs, y, task):
    """(labels, probabilities of shape (n, classes)) for a classification task, or an error."""
    y = np.asarray(y)
    columns = outputs.shape[1]
    if y.ndim != 1:
        raise InvalidParameterError(
            f"`y` must be one class index per sample for task {task!r}. Received: y of shape {y.shape}"
        )
    if not _integer_labels(y) or y.size and y.min() < 0:
        raise InvalidParameterError(
            f"`y` must hold class indices 0..K-1 for task {task!r}. Received: labels such as {y[0]!r}"
        )
    if task == "binary" and columns not in (1, 2):
        raise InvalidParameterError(
            f"`task` 'binary' needs a model with 1 sigmoid or 2 softmax outputs. "
            f"Received: task='binary' with a model of {columns} outputs"
        )
    if task == "multiclass" and columns < 2:
        raise InvalidParameterError(
            "`task` 'multiclass' needs a model with one softmax output per class. "
            "Received: task='multiclass' with a model of 1 output"
        )
    if outputs.min() < 0.0 or outputs.max() > 1.0:
        raise InvalidParameterError(
            f"`predictions` must be probabilities in [0, 1] for task {task!r} (a sigmoid or softmax "
            f"head, not logits). Received: values in [{outputs.min():.3g}, {outputs.max():.3g}]"
        )
    if columns == 1:
        probabilities = np.hstack([1.0 - outputs, outputs])
    else:
        sums = outputs.sum(axis=1)
        worst = float(np.max(np.abs(sums - 1.0)))
        if worst > PROBABILITY_TOLERANCE:
            raise InvalidParameterError(
                f"`predictions` must sum to 1 per sample for a softmax task. Received: row sums off "
                f"by up to {worst:.3g}"
            )
        probabilities = outputs / sums[:, None]
    num_classes = probabilities.shape[1]
    y = y.astype("int64")
    if y.max() >= num_classes:
        raise InvalidParameterError(
            f"`y` has a class the model cannot emit: the model has {num_classes} classes "
            f"(0..{num_classes - 1}). Received: label {int(y.max())}"
        )
    return y, probabilities


def regression_targets(outputs, y):
    """(targets, predictions) with matching (n,) or (n, k) shapes, or an error."""
    y = as_array(y, "y")
    if not np.issubdtype(y.dtype, np.number):
        raise InvalidParameterError(f"`y` must be numeric for task 'regression'. Received: labels such as {y.flat[0]!r}")
    y = y.astype("float64")
    if not np.isfinite(y).all():
        raise InvalidParameterError(f"`y` must contain only finite values. Received: {int((~np.isfinite(y)).sum())} NaN/inf targets")
    targets = 1 if y.ndim == 1 else int(np.prod(y.shape[1:]))
    if outputs.shape[1] != targets:
        raise InvalidParameterError(
            f"`y` has {targets} target(s) per sample but the model emits {outputs.shape[1]} outputs. "
            f"Received: y of shape {y.shape}, predictions of shape {outputs.shape}"
        )
    if y.ndim == 1:
        return y, outputs[:, 0]
    return y.reshape(len(y), -1), outputs
