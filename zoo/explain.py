"""Explanations: gradient saliency and integrated gradients for any differentiable model, permutation
feature importance (scikit-learn) for tabular models, and PNG plots of both."""

import numpy as np

from zoo._params import Int, Options, check_params
from zoo.errors import InvalidParameterError
from zoo.tasks import SUPERVISED_TASKS

CONSTRAINTS = {
    "steps": Int(2, 10000),
    "n_repeats": Int(1, 1000),
    "seed": Int(0),
    "task": Options(SUPERVISED_TASKS),
}


def _check_inputs(model, X, owner):
    X = np.asarray(X, dtype="float32")
    expected = tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else None
    if expected is not None and (X.ndim != len(expected) + 1 or any(
            e is not None and e != s for e, s in zip(expected, X.shape[1:]))):
        raise InvalidParameterError(
            f"`X` of `{owner}` must be a batch of inputs of shape {expected}. Received: X.shape={X.shape}"
        )
    return X


def _targets(model, X, target):
    """The output unit explained per sample: `target`, or the predicted class (unit 0 for one
    output: binary probability or regression value)."""
    outputs = np.asarray(model(X, training=False))
    units = outputs.shape[-1]
    if target is None:
        return np.argmax(outputs, axis=-1) if units > 1 else np.zeros(len(X), dtype="int64")
    target = np.broadcast_to(np.asarray(target, dtype="int64"), (len(X),))
    if target.min() < 0 or target.max() >= units:
        raise InvalidParameterError(
            f"`target` must be an output unit in [0, {units - 1}]. Received: target={target.max() if target.max() >= units else target.min()}"
        )
    return target


def _gradients(model, X, targets):
    import tensorflow as tf

    X = tf.convert_to_tensor(X)
    with tf.GradientTape() as tape:
        tape.watch(X)
        outputs = model(X, training=False)
        selected = tf.gather(outputs, targets, axis=-1, batch_dims=1)
    return tape.gradient(selected, X).numpy()


def saliency(model, X, *, target=None):
    """Vanilla gradient saliency: |∂ output[target] / ∂ input| per feature or pixel.

    Args:
        model: a differentiable Keras model.
        X: a batch of inputs.
        target: output unit to explain (int or one per sample); default the predicted class.

    Returns:
        Array shaped like `X`.
    """
    X = _check_inputs(model, X, "saliency")
    return np.abs(_gradients(model, X, _targets(model, X, target)))


def integrated_gradients(model, X, *, baseline=None, target=None, steps=64):
    """Integrated gradients (Sundararajan et al., 2017): (x − x′) · ∫₀¹ ∇f(x′ + α(x − x′)) dα,
    by the trapezoidal rule over `steps` intervals.

    The attributions of a sample sum to f(x) − f(x′) (completeness) up to the integration error.

    Args:
        baseline: x′, an input-shaped array (default all zeros, the mean of standardized data).
        target: output unit to explain; default the predicted class.
        steps: integration intervals; more is closer to exact.

    Returns:
        Array shaped like `X`.

    Example:
        >>> attributions = integrated_gradients(model, X_test[:8])
        >>> attributions.sum(axis=1)  # ≈ model(X)[target] − model(baseline)[target]
    """
    steps = check_params("integrated_gradients", CONSTRAINTS, {"steps": steps})["steps"]
    X = _check_inputs(model, X, "integrated_gradients")
    baseline = np.zeros_like(X[0]) if baseline is None else np.asarray(baseline, dtype="float32")
    if baseline.shape != X.shape[1:]:
        raise InvalidParameterError(
            f"`baseline` of `integrated_gradients` must have the shape of one input {X.shape[1:]}. "
            f"Received: baseline.shape={baseline.shape}"
        )
    targets = _targets(model, X, target)
    alphas = np.linspace(0.0, 1.0, steps + 1, dtype="float32")
    trapezoid = np.full(steps + 1, 1.0 / steps, dtype="float32")
    trapezoid[[0, -1]] /= 2.0
    total = np.zeros_like(X)
    for alpha, weight in zip(alphas, trapezoid):
        total += weight * _gradients(model, baseline + alpha * (X - baseline), targets)
    return (X - baseline) * total


class _Predictor:
    """A Keras model as the estimator scikit-learn's scorers call: `predict` gives labels or
    values (through `model(x)`, ~20× faster than `model.predict` on small batches)."""

    def __init__(self, model, task):
        self.model, self.task = model, task

    def fit(self, X, y):
        return self

    def predict(self, X):
        outputs = np.asarray(self.model(np.asarray(X, dtype="float32"), training=False))
        if self.task == "multiclass":
            return outputs.argmax(axis=-1)
        if self.task == "binary":
            return (outputs[:, 0] > 0.5).astype("int64")
        return outputs[:, 0] if outputs.shape[-1] == 1 else outputs

    def score(self, X, y):
        from sklearn.metrics import accuracy_score, r2_score

        predicted = self.predict(X)
        return r2_score(y, predicted) if self.task == "regression" else accuracy_score(y, predicted)


def permutation_importance(model, X, y, *, task, n_repeats=5, seed=0):
    """How much the score drops when one feature's column is shuffled (scikit-learn's
    `permutation_importance`); accuracy for classification, R² for regression.

    Tabular inputs only: (samples, features).

    Returns:
        scikit-learn's Bunch with `importances_mean`, `importances_std`, `importances`.
    """
    from sklearn.inspection import permutation_importance as sklearn_permutation_importance

    options = check_params("permutation_importance", CONSTRAINTS,
                           {"task": task, "n_repeats": n_repeats, "seed": seed})
    X = _check_inputs(model, X, "permutation_importance")
    if X.ndim != 2:
        raise InvalidParameterError(
            f"`X` of `permutation_importance` must be tabular (samples, features); use "
            f"integrated_gradients for images and sequences. Received: X.shape={X.shape}"
        )
    if len(X) != len(y):
        raise InvalidParameterError(
            f"`y` of `permutation_importance` must have one label per sample. "
            f"Received: len(X)={len(X)}, len(y)={len(y)}"
        )
    # a plain object with `score` is what scikit-learn's default scoring calls
    return sklearn_permutation_importance(_Predictor(model, options["task"]), X, np.asarray(y),
                                          n_repeats=options["n_repeats"], random_state=options["seed"])


def _figure(size):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def plot_attributions(attributions, path, *, inputs=None, feature_names=None, title="Attributions",
                      max_features=20):
    """Write a PNG: per-pixel heatmaps (next to the inputs when given) for images, or a bar chart of
    the mean attribution per feature (largest |value| first) for tabular data."""
    attributions = np.asarray(attributions)
    if attributions.ndim >= 3:  # images (samples, height, width[, channels])
        maps = attributions.sum(axis=-1) if attributions.ndim == 4 else attributions
        shown = min(len(maps), 6)
        rows = 2 if inputs is not None else 1
        fig = _figure((2.2 * shown, 2.3 * rows))
        for index in range(shown):
            if inputs is not None:
                ax = fig.add_subplot(rows, shown, index + 1)
                image = np.asarray(inputs[index])
                ax.imshow(image[..., 0] if image.ndim == 3 else image, cmap="gray")
                ax.set_axis_off()
            ax = fig.add_subplot(rows, shown, index + 1 + (shown if inputs is not None else 0))
            limit = float(np.abs(maps[index]).max()) or 1.0
            ax.imshow(maps[index], cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_axis_off()
        fig.suptitle(title)
    else:
        values = attributions.mean(axis=0) if attributions.ndim == 2 else attributions
        _bar_chart(values, None, feature_names, title, "mean attribution", max_features, path)
        return path
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def plot_importance(result, path, *, feature_names=None, title="Permutation importance", max_features=20):
    """Write a PNG bar chart of permutation importances with their standard deviations."""
    return _bar_chart(result.importances_mean, result.importances_std, feature_names, title,
                      "score drop when shuffled", max_features, path)


def _bar_chart(values, errors, feature_names, title, xlabel, max_features, path):
    values = np.asarray(values, dtype="float64")
    names = list(feature_names) if feature_names is not None else [f"feature {i}" for i in range(len(values))]
    order = np.argsort(-np.abs(values))[:max_features][::-1]
    fig = _figure((6.0, 0.3 * len(order) + 1.5))
    ax = fig.add_subplot()
    ax.barh([names[i] for i in order], values[order],
            xerr=None if errors is None else np.asarray(errors)[order], color="tab:blue")
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path
