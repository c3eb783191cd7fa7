"""Diagnostics through scikeras: cross-validation estimates, learning and validation curves."""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

import evaluation
from zoo.errors import InvalidParameterError, UnknownNameError

SMALL = {"hidden_units": (8,), "learning_rate": 0.02}


def _iris():
    X, y = load_iris(return_X_y=True)
    return ((X - X.mean(0)) / X.std(0)).astype("float32"), y


def test_stratified_cross_validation_of_a_catalog_configuration():
    X, y = _iris()
    report = evaluation.cross_validate("mlp", X, y, task="multiclass", params=SMALL, folds=3, epochs=8)
    scores = report.tables["fold_scores"]["accuracy"].to_numpy()
    assert len(scores) == 3
    assert report.metrics["cv_mean"] == pytest.approx(scores.mean())
    assert report.metrics["cv_std"] == pytest.approx(scores.std())
    assert report.meta["splitter"] == "StratifiedKFold"
    assert report.metrics["cv_mean"] > 0.5
    assert report.plots["cross_validation_scores"][:4] == b"\x89PNG"


def test_kfold_cross_validation_with_a_build_function_and_binary_task():
    import zoo

    X, y = load_breast_cancer(return_X_y=True)
    X = ((X - X.mean(0)) / X.std(0)).astype("float32")

    def build(**kwargs):
        return zoo.create_model("perceptron", learning_rate=0.05, **kwargs)

    from sklearn.base import is_classifier, is_regressor

    assert is_classifier(evaluation.make_estimator(build, task="binary"))  # scikeras alone says no
    assert is_regressor(evaluation.make_estimator(build, task="regression"))
    report = evaluation.cross_validate(build, X[:240], y[:240], task="binary", folds=2, cv="kfold",
                                       scoring="roc_auc", epochs=3)
    assert report.meta["splitter"] == "KFold" and report.meta["scoring"] == "roc_auc"
    # the same folds and scorer rebuilt with scikit-learn give the same fold scores
    from sklearn.model_selection import KFold, cross_val_score

    rebuilt = cross_val_score(evaluation.make_estimator(build, task="binary", epochs=3), X[:240], y[:240],
                              cv=KFold(n_splits=2, shuffle=True, random_state=0), scoring="roc_auc")
    assert report.tables["fold_scores"]["roc_auc"].tolist() == pytest.approx(rebuilt.tolist(), abs=1e-6)
    assert report.metrics["cv_mean"] == pytest.approx(rebuilt.mean()) and rebuilt.min() > 0.8


def test_learning_curve_regression():
    X, y = load_diabetes(return_X_y=True)
    report = evaluation.learning_curve("mlp", X.astype("float32"), (y / 100).astype("float32"), task="regression",
                                       params=SMALL, train_sizes=(0.5, 1.0), folds=2, epochs=3)
    table = report.tables["learning_curve"]
    assert len(table) == 2 and table["train_size"].is_monotonic_increasing
    assert report.meta["scoring"] == "r2"
    assert report.plots["learning_curve"][:4] == b"\x89PNG"


def test_validation_curve_over_a_builder_hyperparameter(tmp_path):
    X, y = _iris()
    report = evaluation.validation_curve("mlp", X, y, task="multiclass", params=SMALL, param_name="dropout_rate",
                                         param_range=[0.0, 0.5], folds=2, epochs=4)
    assert report.tables["validation_curve"]["dropout_rate"].tolist() == ["0.0", "0.5"]
    table = report.tables["validation_curve"]
    best = table.loc[table["validation_mean"].idxmax()]
    assert report.meta["best_value"] == float(best["dropout_rate"])  # the value with the best mean
    assert report.metrics["best_validation_score"] == pytest.approx(best["validation_mean"])
    combined = evaluation.classification_report_from_predictions(y, np.eye(3)[y], plots=False).merge(report)
    assert "validation_curve_best_validation_score" in combined.metrics
    paths = combined.save(tmp_path)
    assert "validation_curve" in paths and "data:image/png;base64," in open(paths["html"]).read()


def test_diagnostics_bad_input():
    X, y = _iris()
    with pytest.raises(UnknownNameError, match="Unknown model 'mpl'. Did you mean 'mlp'"):
        evaluation.cross_validate("mpl", X, y, task="multiclass")
    with pytest.raises(InvalidParameterError, match="`folds` must be an integer >= 2"):
        evaluation.cross_validate("mlp", X, y, task="multiclass", folds=1)
    with pytest.raises(InvalidParameterError, match="'stratified' needs class labels"):
        evaluation.cross_validate("mlp", X, y.astype("float32"), task="regression", cv="stratified")
    with pytest.raises(InvalidParameterError, match="`X` and `y` must have the same length"):
        evaluation.learning_curve("mlp", X, y[:10], task="multiclass")
    with pytest.raises(InvalidParameterError, match="`task` must be 'binary', 'multiclass' or 'regression'"):
        evaluation.validation_curve("mlp", X, y, task="reconstruction", param_name="dropout_rate", param_range=[0.1])
