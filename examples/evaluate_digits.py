"""Train a small CNN on scikit-learn's digits, then evaluate it: report, plots, HTML, diagnostics.

    python examples/evaluate_digits.py [OUT_DIR]        (default: evaluate_digits_out)

Writes OUT_DIR/report/{report.json, report.html, *.png} and, with MLFLOW_TRACKING_URI set, logs
the metrics and the report to a new MLflow run. Takes about a minute on two CPU cores.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import evaluation  # noqa: E402
import zoo  # noqa: E402
from zoo.data import load_dataset  # noqa: E402


def main(out_dir="evaluate_digits_out"):
    data = load_dataset("digits", shape="image", seed=0)
    model = zoo.create_model("cnn", input_shape=data.input_shape, num_outputs=data.num_outputs, task=data.task,
                             filters=(16, 32), dense_units=(32,), learning_rate=3e-3)
    history = model.fit(data.X_train, data.y_train, validation_data=(data.X_val, data.y_val), epochs=10,
                        batch_size=32, verbose=0)

    report = evaluation.evaluate_model(model, data.X_test, data.y_test, task=data.task,
                                       class_names=data.class_names, history=history,
                                       title="CNN on digits (held-out test split)")
    # a 3-fold estimate of the same configuration on the flat features, with its plot, in the same page
    flat = load_dataset("digits", seed=0)
    report.merge(evaluation.cross_validate("mlp", flat.X_train, flat.y_train, task="multiclass",
                                           params={"hidden_units": (32,)}, folds=3, epochs=10))
    paths = report.save(os.path.join(out_dir, "report"))

    print(report.per_class.round(3).to_string())
    for name in ("accuracy_score", "f1_score_macro", "roc_auc_score_ovr_macro", "log_loss",
                 "cross_validation_cv_mean", "cross_validation_cv_std"):
        print(f"{name:>28}: {report.metrics[name]:.4f}")
    print(f"open {paths['html']}")

    if os.environ.get("MLFLOW_TRACKING_URI"):
        import mlflow

        with mlflow.start_run(run_name="evaluate_digits") as run:
            report.log_to_mlflow(run.info.run_id)
        print(f"logged to MLflow run {run.info.run_id}")


if __name__ == "__main__":
    main(*sys.argv[1:])
