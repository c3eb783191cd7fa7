"""Classification and regression reports: scikit-learn's metrics on a model's predictions."""

import numpy as np

from evaluation import _checks
from evaluation import plots as _plots
from evaluation.report import Report
from zoo.errors import InvalidParameterError
from zoo.tasks import CLASSIFICATION_TASKS


def classification_report(model, X, y, *, class_names=None, task=None, plots=True):
    """Evaluate a binary or multiclass Keras model on `(X, y)`.

    Args:
        model: a Keras model (or any callable) emitting class probabilities: one sigmoid column
            (binary) or one softmax column per class.
        X: inputs; y: integer class indices 0..K-1.
        class_names: display names of the K classes (default '0'..'K-1').
        task: 'binary' or 'multiclass'; inferred from the outputs when None.
        plots: draw the confusion matrices, ROC, precision-recall and calibration curves.

    Returns:
        A `Report` with accuracy, balanced accuracy, precision/recall/F1 (macro, weighted, per
        class), ROC AUC (one-vs-rest macro for multiclass), average precision, log loss and
        confusion matrices.

    Example:
        >>> report = classification_report(model, X_test, y_test, class_names=["cat", "dog"])
        >>> report.metrics["accuracy_score"], report.per_class
    """
    X = _checks.check_samples(X)
    y = _checks.check_samples(y, "y")
    outputs = _checks.check_outputs(_checks.predict(model, X), len(y))
    return classification_report_from_predictions(y, outputs, class_names=class_names, task=task, plots=plots)


def classification_report_from_predictions(y, probabilities, *, class_names=None, task=None, plots=True):
    """`classification_report` on fixed predictions (an (n,) or (n, K) array of probabilities)."""
    from sklearn import metrics

    y = _checks.check_samples(y, "y")
    outputs = _checks.check_outputs(probabilities, len(y))
    task = _checks.check_task(task) or _checks.infer_task(outputs, y)
    if task not in CLASSIFICATION_TASKS:
        raise InvalidParameterError(
            f"`task` must be 'binary' or 'multiclass' for a classification report. Received: task={task!r}"
        )
    y, probabilities = _checks.class_probabilities(outputs, y, task)
    num_classes = probabilities.shape[1]
    class_names = _class_names(class_names, num_classes)
    labels = list(range(num_classes))
    predicted = probabilities.argmax(axis=1)
    binary = num_classes == 2

    report = Report(kind="classification", task=task, meta={
        "samples": len(y), "classes": num_classes, "class_names": class_names})
    m = report.metrics
    m["accuracy_score"] = metrics.accuracy_score(y, predicted)
    m["balanced_accuracy_score"] = metrics.balanced_accuracy_score(y, predicted)
    if binary:
        for name, score in (("precision_score", metrics.precision_score), ("recall_score", metrics.recall_score),
                            ("f1_score", metrics.f1_score)):
            m[name] = score(y, predicted, zero_division=0)
    for average in ("macro", "weighted"):
        precision, recall, f1, _ = metrics.precision_recall_fscore_support(
            y, predicted, labels=labels, average=average, zero_division=0)
        m[f"precision_score_{average}"], m[f"recall_score_{average}"], m[f"f1_score_{average}"] = precision, recall, f1
    present = np.unique(y)
    if binary:
        m["roc_auc_score"] = _defined(report, "roc_auc_score", len(present) == 2,
                                      lambda: metrics.roc_auc_score(y, probabilities[:, 1]))
        m["average_precision_score"] = _defined(report, "average_precision_score", len(present) == 2,
                                                lambda: metrics.average_precision_score(y, probabilities[:, 1]))
    else:
        m["roc_auc_score_ovr_macro"] = _defined(
            report, "roc_auc_score_ovr_macro", len(present) == num_classes,
            lambda: metrics.roc_auc_score(y, probabilities, multi_class="ovr", average="macro", labels=labels))
        m["average_precision_score_macro"] = _defined(
            report, "average_precision_score_macro", len(present) == num_classes,
            lambda: metrics.average_precision_score(y, probabilities, average="macro"))
    m["log_loss"] = metrics.log_loss(y, probabilities, labels=labels)
    m = {k: (None if v is None else float(v)) for k, v in m.items()}
    report.metrics = m
    if not binary:
        report.notes.append("roc_auc_score_ovr_macro and average_precision_score_macro: one class "
                            "against the rest, unweighted mean over classes.")
    report.notes.append("Precision/recall/F1 of a class that is never predicted count as 0 (zero_division=0).")

    report.tables["per_class"] = _per_class_table(y, predicted, labels, class_names)
    counts = metrics.confusion_matrix(y, predicted, labels=labels)
    normalized = metrics.confusion_matrix(y, predicted, labels=labels, normalize="true")
    report.tables["confusion_matrix"] = _square_frame(counts, class_names)
    report.tables["confusion_matrix_normalized"] = _square_frame(normalized, class_names)
    if plots:
        _classification_plots(report, y, probabilities, counts, normalized, class_names)
    return report


def _classification_plots(report, y, probabilities, counts, normalized, class_names):
    report.plots["confusion_matrix"] = _plots.confusion_matrix(counts, class_names)
    report.plots["confusion_matrix_normalized"] = _plots.confusion_matrix(np.nan_to_num(normalized), class_names,
                                                                         normalized=True)
    if len(np.unique(y)) < 2:
        report.notes.append("ROC, precision-recall and calibration curves need both classes in `y`.")
        return
    report.plots["roc_curve"] = _plots.roc_curves(y, probabilities, class_names)
    report.plots["precision_recall_curve"] = _plots.precision_recall_curves(y, probabilities, class_names)
    report.plots["calibration_curve"] = _plots.calibration_curves(y, probabilities, class_names)
    if probabilities.shape[1] > _plots.MAX_CURVES:
        report.notes.append(f"Curves show the first {_plots.MAX_CURVES} classes.")


def _defined(report, name, condition, compute):
    if not condition:
        report.notes.append(f"{name} is undefined: `y` lacks some classes.")
        return None
    return compute()


def _class_names(class_names, num_classes):
    if class_names is None:
        return [str(k) for k in range(num_classes)]
    names = [str(c) for c in class_names]
    if len(names) != num_classes:
        raise InvalidParameterError(
            f"`class_names` must name each of the model's {num_classes} classes. "
            f"Received: {len(names)} names ({', '.join(names[:5])}{'...' if len(names) > 5 else ''})"
        )
    return names


def _per_class_table(y, predicted, labels, class_names):
    import pandas as pd
    from sklearn import metrics

    table = metrics.classification_report(y, predicted, labels=labels, target_names=class_names,
                                          output_dict=True, zero_division=0)
    frame = pd.DataFrame({name: table[name] for name in class_names}).T
    frame["support"] = frame["support"].astype("int64")
    frame.index.name = "class"
    return frame


def _square_frame(matrix, class_names):
    import pandas as pd

    frame = pd.DataFrame(matrix, index=class_names, columns=class_names)
    frame.index.name = "true \\ predicted"
    return frame


def regression_report(model, X, y, *, plots=True):
    """Evaluate a regression Keras model on `(X, y)`.

    Returns:
        A `Report` with mean absolute, mean squared and root mean squared error, R², explained
        variance, max error and mean absolute percentage error (None when a target is 0), and
        predicted-vs-actual, residuals-vs-predicted and residual histogram plots. Multi-output
        targets are averaged uniformly over outputs (max error: the largest over outputs).

    Example:
        >>> report = regression_report(model, X_test, y_test)
        >>> report.metrics["root_mean_squared_error"]
    """
    X = _checks.check_samples(X)
    y = _checks.check_samples(y, "y")
    outputs = _checks.check_outputs(_checks.predict(model, X), len(y))
    return regression_report_from_predictions(y, outputs, plots=plots)


def regression_report_from_predictions(y, predictions, *, plots=True):
    """`regression_report` on fixed predictions."""
    from sklearn import metrics

    y = _checks.check_samples(y, "y")
    outputs = _checks.check_outputs(predictions, len(y))
    y, predicted = _checks.regression_targets(outputs, y)
    report = Report(kind="regression", task="regression",
                    meta={"samples": len(y), "outputs": 1 if y.ndim == 1 else y.shape[1]})
    m = report.metrics
    m["mean_absolute_error"] = metrics.mean_absolute_error(y, predicted)
    m["mean_squared_error"] = metrics.mean_squared_error(y, predicted)
    m["root_mean_squared_error"] = metrics.root_mean_squared_error(y, predicted)
    m["r2_score"] = metrics.r2_score(y, predicted) if len(y) > 1 else None
    m["explained_variance_score"] = metrics.explained_variance_score(y, predicted) if len(y) > 1 else None
    if y.ndim == 1:
        m["max_error"] = metrics.max_error(y, predicted)
    else:  # scikit-learn's max_error takes one output at a time
        m["max_error"] = max(metrics.max_error(y[:, k], predicted[:, k]) for k in range(y.shape[1]))
    if np.any(np.abs(y) < np.finfo("float64").eps):
        m["mean_absolute_percentage_error"] = None
        report.notes.append("mean_absolute_percentage_error is undefined: some targets are 0.")
    else:
        m["mean_absolute_percentage_error"] = metrics.mean_absolute_percentage_error(y, predicted)
    if len(y) < 2:
        report.notes.append("r2_score and explained_variance_score need at least 2 samples.")
    report.metrics = {k: (None if v is None else float(v)) for k, v in m.items()}
    if plots:
        residuals = np.ravel(y) - np.ravel(predicted)
        report.plots["predicted_vs_actual"] = _plots.prediction_error(y, predicted, kind="actual_vs_predicted")
        report.plots["residuals_vs_predicted"] = _plots.prediction_error(y, predicted, kind="residual_vs_predicted")
        report.plots["residual_histogram"] = _plots.histogram({"residuals": residuals}, title="Residuals",
                                                             xlabel="actual − predicted")
    return report
