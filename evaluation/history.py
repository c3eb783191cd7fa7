"""Training history (loss and metrics per epoch) from a Keras History, a dict or an MLflow run."""

import numpy as np

from zoo.errors import InvalidParameterError, InvalidTypeError


def history_frame(history, *, tracking_uri=None):
    """A DataFrame indexed by epoch from a Keras History, a dict of lists or an MLflow run id."""
    import pandas as pd

    if isinstance(history, str):
        from evaluation.tracking import history_from_mlflow

        history = history_from_mlflow(history, tracking_uri=tracking_uri)
    elif hasattr(history, "history") and isinstance(history.history, dict):
        history = history.history
    if not isinstance(history, dict):
        raise InvalidTypeError(
            f"`history` must be a Keras History, a dict of per-epoch lists or an MLflow run id. "
            f"Received: {type(history).__name__}"
        )
    if not history or not any(len(v) for v in history.values()):
        raise InvalidParameterError("`history` must hold at least one epoch. Received: an empty history")
    length = max(len(v) for v in history.values())
    frame = pd.DataFrame({k: list(map(float, v)) + [np.nan] * (length - len(v)) for k, v in history.items()})
    frame.index = pd.RangeIndex(1, length + 1, name="epoch")
    return frame


def plot_history(frame):
    """One panel per metric, training and validation (`val_` prefix) lines over epochs."""
    from evaluation.plots import new_figure, to_png

    bases = [c for c in frame.columns if not c.startswith("val_")]
    bases += [c[4:] for c in frame.columns if c.startswith("val_") and c[4:] not in frame.columns]
    bases = [b for b in bases if b not in ("learning_rate", "lr")] or bases
    columns, rows = min(len(bases), 3), (len(bases) + 2) // 3
    fig = new_figure((4.2 * columns, 3.4 * rows))
    for index, base in enumerate(bases):
        ax = fig.add_subplot(rows, columns, index + 1)
        for column, label in ((base, "train"), (f"val_{base}", "validation")):
            if column in frame:
                ax.plot(frame.index, frame[column], marker="o" if len(frame) < 30 else None, label=label)
        ax.set_title(base)
        ax.set_xlabel("epoch")
        ax.legend()
    return to_png(fig)
