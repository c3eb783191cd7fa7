"""`evaluate_model`: the one entry point that picks the report for a task and writes it out."""

from evaluation import _checks
from evaluation.anomaly import reconstruction_report, verification_report
from evaluation.metrics import classification_report_from_predictions, regression_report_from_predictions
from zoo.errors import InvalidParameterError


def evaluate_model(model, X, y=None, *, task=None, class_names=None, out_dir=None, history=None,
                   tracking_uri=None, title=None, plots=True, allow_missing=False, **options):
    """Evaluate a model on held-out data; optionally write report.json, report.html and PNGs.

    This is what `zoo evaluate` and the evaluation step of `zoo run` call.

    Args:
        model: a Keras model (or any callable mapping inputs to outputs).
        X: inputs. For task 'verification', a pair `(X_a, X_b)`.
        y: integer class indices (binary, multiclass), targets (regression), optional 0/1
            anomaly labels (reconstruction), or 0/1 same-pair labels (verification).
        task: 'binary', 'multiclass', 'regression', 'reconstruction' or 'verification'; None
            infers binary/multiclass/regression from the model's outputs and `y`.
        class_names: display names of the classes.
        out_dir: when given, `Report.save(out_dir)` writes report.json, report.html and one PNG
            per plot there.
        history: a Keras History, a dict of per-epoch lists, or an MLflow run id (read from
            `tracking_uri`) whose metric histories become the training-history plot.
        title: the HTML page's title.
        allow_missing: accept NaN in `X` (supervised tasks): for models that impute missing
            values themselves, as the product's preprocessing does.
        options: passed to the task's report (`threshold` for reconstruction; `distance`,
            `pair_output` for verification).

    Returns:
        The `Report`. Log it to MLflow with `report.log_to_mlflow(run_id)`.

    Example:
        >>> report = evaluate_model(model, data.X_test, data.y_test, task=data.task,
        ...                         class_names=data.class_names, out_dir="out/report", history=history)
    """
    task = _checks.check_task(task)
    if task == "verification":
        if not isinstance(X, (tuple, list)) or len(X) != 2:
            raise InvalidParameterError("`X` must be a pair (X_a, X_b) for task 'verification'. "
                                        f"Received: {type(X).__name__}")
        report = verification_report(model, X[0], X[1], y, plots=plots, **options)
    elif task == "reconstruction":
        report = reconstruction_report(model, X, labels=y, plots=plots, **options)
    else:
        if y is None:
            raise InvalidParameterError(f"`y` is required for task {task or 'inference'!r}. Received: y=None")
        if options:
            raise InvalidParameterError(f"`{next(iter(options))}` applies only to reconstruction or verification. "
                                        f"Received: task={task!r}")
        X = _checks.check_samples(X, allow_missing=allow_missing)
        y = _checks.check_samples(y, "y")
        outputs = _checks.check_outputs(_checks.predict(model, X), len(y))
        task = task or _checks.infer_task(outputs, y)
        if task == "regression":
            report = regression_report_from_predictions(y, outputs, plots=plots)
        else:
            report = classification_report_from_predictions(y, outputs, class_names=class_names, task=task,
                                                            plots=plots)
    name = getattr(model, "name", None)
    if isinstance(name, str):
        report.meta["model"] = name
    if title:
        report.meta["title"] = title
    if history is not None:
        report.add_history(history, tracking_uri=tracking_uri)
    if out_dir is not None:
        report.save(out_dir)
    return report


__all__ = ["evaluate_model"]
