"""PNG plots drawn with scikit-learn's Display classes on headless matplotlib figures.

Figures are `matplotlib.figure.Figure` objects rendered by the Agg canvas, so nothing here touches
pyplot's global backend or needs a display.
"""

import contextlib
import io

import numpy as np

# Beyond this many classes one-vs-rest curves stop being readable; plots show the first ones.
MAX_CURVES = 10


def new_figure(size=(5.2, 4.2)):
    """A matplotlib Figure on its own Agg canvas (no pyplot state, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def to_png(fig):
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


@contextlib.contextmanager
def figure(png_out, *, size=(5.2, 4.2)):
    """Yield an Axes; on exit render the figure to PNG bytes appended to `png_out`."""
    fig = new_figure(size)
    yield fig.add_subplot()
    png_out.append(to_png(fig))


def _render(draw, **kwargs):
    out = []
    with figure(out, **kwargs) as ax:
        draw(ax)
    return out[0]


def confusion_matrix(matrix, class_names, *, normalized=False):
    from sklearn.metrics import ConfusionMatrixDisplay

    many = len(class_names) > 5
    size = (5.2, 4.2) if not many else (7.5, 6.5)

    def draw(ax):
        display = ConfusionMatrixDisplay(matrix, display_labels=class_names)
        # two decimals stop fitting in the cells beyond a handful of classes
        display.plot(ax=ax, values_format=(".1f" if many else ".2f") if normalized else "d", colorbar=True,
                     xticks_rotation=45 if len(class_names) > 4 else "horizontal")
        ax.set_title("Confusion matrix (row-normalized)" if normalized else "Confusion matrix")

    return _render(draw, size=size)


def _one_vs_rest(y, probabilities, class_names):
    """(name, binary truth, score) per curve: the positive class, or each class vs the rest."""
    if probabilities.shape[1] == 2:
        return [(class_names[1], y == 1, probabilities[:, 1])]
    return [(class_names[k], y == k, probabilities[:, k])
            for k in range(min(probabilities.shape[1], MAX_CURVES)) if 0 < (y == k).sum() < len(y)]


def roc_curves(y, probabilities, class_names):
    from sklearn.metrics import RocCurveDisplay

    def draw(ax):
        curves = _one_vs_rest(y, probabilities, class_names)
        for index, (name, truth, score) in enumerate(curves):
            RocCurveDisplay.from_predictions(truth, score, name=name, ax=ax,
                                             plot_chance_level=index == len(curves) - 1)
        ax.set_xlabel("False positive rate")
        ax.set_ylabel("True positive rate")
        ax.set_title("ROC curve" if len(curves) == 1 else "ROC curves (one vs rest)")

    return _render(draw)


def precision_recall_curves(y, probabilities, class_names):
    from sklearn.metrics import PrecisionRecallDisplay

    def draw(ax):
        curves = _one_vs_rest(y, probabilities, class_names)
        for name, truth, score in curves:
            PrecisionRecallDisplay.from_predictions(truth, score, name=name, ax=ax)
        ax.set_xlabel("Recall")
        ax.set_ylabel("Precision")
        ax.set_title("Precision-recall curve" if len(curves) == 1 else "Precision-recall curves (one vs rest)")

    return _render(draw)


def calibration_curves(y, probabilities, class_names, *, bins=10):
    from sklearn.calibration import CalibrationDisplay

    def draw(ax):
        curves = _one_vs_rest(y, probabilities, class_names)
        for name, truth, score in curves:
            CalibrationDisplay.from_predictions(truth, score, n_bins=bins, name=name, ax=ax)
        ax.set_title("Calibration curve" if len(curves) == 1 else "Calibration curves (one vs rest)")

    return _render(draw)


def prediction_error(y, predictions, *, kind):
    """'actual_vs_predicted' or 'residual_vs_predicted' (multi-output targets flattened)."""
    from sklearn.metrics import PredictionErrorDisplay

    def draw(ax):
        PredictionErrorDisplay.from_predictions(np.ravel(y), np.ravel(predictions), kind=kind, ax=ax,
                                                subsample=2000, random_state=0)
        ax.set_title("Predicted vs actual" if kind == "actual_vs_predicted" else "Residuals vs predicted")

    return _render(draw)


def histogram(groups, *, title, xlabel, threshold=None, bins=30):
    """Overlaid histograms of named 1-D arrays, with an optional threshold line."""

    def draw(ax):
        edges = np.histogram_bin_edges(np.concatenate(list(groups.values())), bins=bins)
        for name, values in groups.items():
            ax.hist(values, bins=edges, alpha=0.6 if len(groups) > 1 else 0.9, label=name)
        if threshold is not None:
            ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3g}")
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("count")
        if len(groups) > 1 or threshold is not None:
            ax.legend()

    return _render(draw)


def roc_from_scores(truth, score, *, name, title):
    from sklearn.metrics import RocCurveDisplay

    def draw(ax):
        RocCurveDisplay.from_predictions(truth, score, name=name, ax=ax, plot_chance_level=True)
        ax.set_title(title)

    return _render(draw)


def learning_curve(train_sizes, train_scores, test_scores, *, score_name):
    from sklearn.model_selection import LearningCurveDisplay

    def draw(ax):
        LearningCurveDisplay(train_sizes=train_sizes, train_scores=train_scores, test_scores=test_scores,
                             score_name=score_name).plot(ax=ax)
        ax.set_title("Learning curve")

    return _render(draw)


def validation_curve(param_name, param_range, train_scores, test_scores, *, score_name):
    from sklearn.model_selection import ValidationCurveDisplay

    def draw(ax):
        ValidationCurveDisplay(param_name=param_name, param_range=np.asarray(param_range),
                               train_scores=train_scores, test_scores=test_scores,
                               score_name=score_name).plot(ax=ax)
        ax.set_title(f"Validation curve: {param_name}")

    return _render(draw)


def cross_validation_scores(scores, *, score_name):
    def draw(ax):
        folds = np.arange(1, len(scores) + 1)
        ax.bar(folds, scores, color="#4c72b0")
        ax.axhline(np.mean(scores), color="black", linestyle="--",
                   label=f"mean {np.mean(scores):.3g} ± {np.std(scores):.2g}")
        ax.set_xticks(folds)
        ax.set_xlabel("fold")
        ax.set_ylabel(score_name)
        ax.set_title("Cross-validation scores")
        ax.legend()

    return _render(draw)
