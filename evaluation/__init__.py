"""Evaluation reports for Keras models: scikit-learn metrics, matplotlib plots, JSON, HTML, MLflow.

>>> import evaluation
>>> report = evaluation.evaluate_model(model, X_test, y_test, task="multiclass", out_dir="report")
>>> report.metrics["accuracy_score"]; report.per_class; report.log_to_mlflow(run_id)

Importing this package imports neither TensorFlow nor scikit-learn; they load when a report runs.
"""

from evaluation.anomaly import (
    reconstruction_report,
    reconstruction_report_from_predictions,
    verification_report,
    verification_report_from_scores,
)
from evaluation.diagnostics import cross_validate, learning_curve, make_estimator, validation_curve
from evaluation.evaluate import evaluate_model
from evaluation.tracking import history_from_mlflow
from evaluation.metrics import (
    classification_report,
    classification_report_from_predictions,
    regression_report,
    regression_report_from_predictions,
)
from evaluation.report import Report

__all__ = [
    "Report",
    "classification_report",
    "classification_report_from_predictions",
    "cross_validate",
    "evaluate_model",
    "history_from_mlflow",
    "learning_curve",
    "make_estimator",
    "reconstruction_report",
    "reconstruction_report_from_predictions",
    "regression_report",
    "regression_report_from_predictions",
    "validation_curve",
    "verification_report",
    "verification_report_from_scores",
]
