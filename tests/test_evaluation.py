"""Evaluation reports: metrics equal scikit-learn's, plots are PNGs, HTML embeds them, MLflow reads back."""

import base64
import io
import json
import re

import numpy as np
import pytest
from sklearn import metrics

import evaluation
from zoo.errors import InvalidParameterError, InvalidTypeError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(data):
    from PIL import Image

    assert data[:8] == PNG_SIGNATURE
    image = Image.open(io.BytesIO(data))
    image.verify()
    assert image.size[0] > 100 and image.size[1] > 100


def softmax_rows(logits):
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


# --- fixed predictions: every number is scikit-learn's ---------------------------------------


def test_binary_metrics_equal_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.6 * y + rng.uniform(0, 0.5, 200) - 0.1, 0, 1)
    report = evaluation.classification_report_from_predictions(y, p[:, None], plots=False)
    predicted = (p > 0.5).astype(int)
    m = report.metrics
    assert report.task == "binary"
    assert m["accuracy_score"] == pytest.approx(metrics.accuracy_score(y, predicted))
    assert m["balanced_accuracy_score"] == pytest.approx(metrics.balanced_accuracy_score(y, predicted))
    assert m["precision_score"] == pytest.approx(metrics.precision_score(y, predicted))
    assert m["recall_score"] == pytest.approx(metrics.recall_score(y, predicted))
    assert m["f1_score"] == pytest.approx(metrics.f1_score(y, predicted))
    assert m["f1_score_macro"] == pytest.approx(metrics.f1_score(y, predicted, average="macro"))
    assert m["precision_score_weighted"] == pytest.approx(metrics.precision_score(y, predicted, average="weighted"))
    assert m["roc_auc_score"] == pytest.approx(metrics.roc_auc_score(y, p))
    assert m["average_precision_score"] == pytest.approx(metrics.average_precision_score(y, p))
    assert m["log_loss"] == pytest.approx(metrics.log_loss(y, np.c_[1 - p, p]))
    np.testing.assert_array_equal(report.tables["confusion_matrix"].to_numpy(), metrics.confusion_matrix(y, predicted))


def test_two_column_softmax_is_binary_and_matches_one_column():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 50)
    p = rng.uniform(size=50)
    one = evaluation.classification_report_from_predictions(y, p, plots=False)
    two = evaluation.classification_report_from_predictions(y, np.c_[1 - p, p], plots=False)
    assert two.task == "binary"
    assert one.metrics == pytest.approx(two.metrics)


def test_multiclass_metrics_equal_sklearn():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, 300)
    proba = softmax_rows(rng.normal(size=(300, 4)) + 2.0 * np.eye(4)[y])
    names = ["a", "b", "c", "d"]
    report = evaluation.classification_report_from_predictions(y, proba, class_names=names, plots=False)
    predicted = proba.argmax(axis=1)
    m = report.metrics
    assert report.task == "multiclass"
    assert m["accuracy_score"] == pytest.approx(metrics.accuracy_score(y, predicted))
    assert m["recall_score_macro"] == pytest.approx(metrics.recall_score(y, predicted, average="macro"))
    assert m["f1_score_weighted"] == pytest.approx(metrics.f1_score(y, predicted, average="weighted"))
    assert m["roc_auc_score_ovr_macro"] == pytest.approx(metrics.roc_auc_score(y, proba, multi_class="ovr"))
    assert m["average_precision_score_macro"] == pytest.approx(metrics.average_precision_score(y, proba))
    assert m["log_loss"] == pytest.approx(metrics.log_loss(y, proba))
    expected = metrics.classification_report(y, predicted, target_names=names, output_dict=True)
    table = report.per_class
    assert list(table.index) == names
    for name in names:
        assert table.loc[name, "f1-score"] == pytest.approx(expected[name]["f1-score"])
        assert table.loc[name, "support"] == expected[name]["support"]
    np.testing.assert_allclose(report.tables["confusion_matrix_normalized"].to_numpy(),
                               metrics.confusion_matrix(y, predicted, normalize="true"))


def test_multiclass_with_a_missing_class_leaves_auc_undefined():
    y = np.array([0, 1, 0, 1, 0, 1])
    proba = softmax_rows(np.random.default_rng(3).normal(size=(6, 3)))
    report = evaluation.classification_report_from_predictions(y, proba, plots=False)
    assert report.metrics["roc_auc_score_ovr_macro"] is None
    assert any("roc_auc_score_ovr_macro is undefined" in note for note in report.notes)
    json.loads(report.to_json())  # None, not NaN, in JSON


def test_regression_metrics_equal_sklearn():
    rng = np.random.default_rng(4)
    y = rng.uniform(1, 10, 100)
    pred = y + rng.normal(size=100)
    report = evaluation.regression_report_from_predictions(y, pred[:, None], plots=False)
    m = report.metrics
    assert m["mean_absolute_error"] == pytest.approx(metrics.mean_absolute_error(y, pred))
    assert m["mean_squared_error"] == pytest.approx(metrics.mean_squared_error(y, pred))
    assert m["root_mean_squared_error"] == pytest.approx(np.sqrt(metrics.mean_squared_error(y, pred)))
    assert m["r2_score"] == pytest.approx(metrics.r2_score(y, pred))
    assert m["explained_variance_score"] == pytest.approx(metrics.explained_variance_score(y, pred))
    assert m["max_error"] == pytest.approx(metrics.max_error(y, pred))
    assert m["mean_absolute_percentage_error"] == pytest.approx(metrics.mean_absolute_percentage_error(y, pred))


def test_regression_mape_undefined_with_zero_targets_and_multi_output():
    rng = np.random.default_rng(5)
    y = rng.normal(size=(40, 2))
    y[0, 0] = 0.0
    pred = y + 0.1 * rng.normal(size=(40, 2))
    report = evaluation.regression_report_from_predictions(y, pred, plots=False)
    assert report.metrics["mean_absolute_percentage_error"] is None
    assert report.metrics["r2_score"] == pytest.approx(metrics.r2_score(y, pred))
    assert report.metrics["max_error"] == pytest.approx(max(metrics.max_error(y[:, k], pred[:, k]) for k in range(2)))


# --- bad input: one line, naming the field ----------------------------------------------------


@pytest.mark.parametrize("y, outputs, task, message", [
    (np.array([0, 1, 2]), np.full((3, 3), 1 / 3), None, None),  # fine: control row
    (np.array([0, 1]), np.full((3, 3), 1 / 3), None, "one row per label"),
    (np.array([0, 1, 3]), np.full((3, 3), 1 / 3), "multiclass", "class the model cannot emit"),
    (np.array([0, 1, 2]), np.full((3, 3), 0.5), "multiclass", "must sum to 1"),
    (np.array([0, 1, 1]), np.array([0.2, np.nan, 0.9]), "binary", "NaN/inf model outputs"),
    (np.array([0, 1, 1]), np.array([-2.0, 0.5, 3.0]), "binary", "probabilities in [0, 1]"),
    (np.array([0, 1, 2]), np.full((3, 3), 1 / 3), "binary", "1 sigmoid or 2 softmax"),
    (np.array([0, 1, 1]), np.array([0.1, 0.5, 0.9]), "multiclass", "one softmax output per class"),
    (np.array([0, 1, 1]), np.array([0.1, 0.5, 0.9]), "regression", "'binary' or 'multiclass'"),
    (np.array([0.5, 1, 1]), np.array([0.1, 0.5, 0.9]), "binary", "class indices"),
    (np.array([], dtype=int), np.zeros((0, 3)), None, "at least one sample"),
])
def test_classification_bad_input(y, outputs, task, message):
    if message is None:
        evaluation.classification_report_from_predictions(y, outputs, task=task, plots=False)
        return
    with pytest.raises(InvalidParameterError, match=re.escape(message)) as caught:
        evaluation.classification_report_from_predictions(y, outputs, task=task, plots=False)
    assert "\n" not in str(caught.value) and "Received" in str(caught.value)


def test_regression_bad_input():
    with pytest.raises(InvalidParameterError, match="1 target.* emits 3 outputs"):
        evaluation.regression_report_from_predictions(np.zeros(4), np.zeros((4, 3)))
    with pytest.raises(InvalidParameterError, match="finite"):
        evaluation.regression_report_from_predictions(np.array([1.0, np.nan]), np.zeros(2))
    with pytest.raises(InvalidParameterError, match="Unknown task 'regresion'. Did you mean 'regression'"):
        evaluation.evaluate_model(lambda X: X, np.zeros((2, 1)), np.zeros(2), task="regresion")
    with pytest.raises(InvalidTypeError, match="`model` must be a Keras model or a callable"):
        evaluation.evaluate_model(42, np.zeros((2, 1)), np.zeros(2))


def test_class_names_must_match_the_model():
    with pytest.raises(InvalidParameterError, match="`class_names` must name each of the model's 3 classes"):
        evaluation.classification_report_from_predictions([0, 1, 2], np.eye(3), class_names=["a", "b"])


# --- real Keras models ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def iris():
    from zoo.data import load_dataset

    return load_dataset("iris", seed=0)


@pytest.fixture(scope="module")
def iris_model(iris):
    import keras

    import zoo

    keras.utils.set_random_seed(0)
    model = zoo.create_model("mlp", input_shape=iris.input_shape, num_outputs=3, task="multiclass",
                             hidden_units=(16,), learning_rate=0.02)
    history = model.fit(iris.X_train, iris.y_train, validation_data=(iris.X_val, iris.y_val), epochs=15,
                        batch_size=16, verbose=0)
    return model, history


def test_multiclass_model_report_writes_json_html_and_plots(iris, iris_model, tmp_path):
    model, history = iris_model
    report = evaluation.evaluate_model(model, iris.X_test, iris.y_test, task="multiclass",
                                       class_names=iris.class_names, out_dir=tmp_path, history=history)
    proba = model.predict(iris.X_test, verbose=0)
    assert report.metrics["accuracy_score"] == pytest.approx(metrics.accuracy_score(iris.y_test, proba.argmax(1)))
    assert report.metrics["accuracy_score"] > 0.6  # it learned something in 15 epochs
    assert list(report.per_class.index) == ["setosa", "versicolor", "virginica"]
    expected_plots = {"confusion_matrix", "confusion_matrix_normalized", "roc_curve", "precision_recall_curve",
                      "calibration_curve", "training_history"}
    assert set(report.plots) == expected_plots
    for name in expected_plots:
        assert_png((tmp_path / f"{name}.png").read_bytes())
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["metrics"] == pytest.approx(report.metrics)
    assert saved["tables"]["per_class"]["index"] == iris.class_names
    assert saved["tables"]["history"]["columns"] == ["accuracy", "loss", "val_accuracy", "val_loss"]
    page = (tmp_path / "report.html").read_text()
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == len(expected_plots)
    for encoded in images:
        assert_png(base64.b64decode(encoded))
    assert "<table" in page and "setosa" in page and "src=\"http" not in page


def test_binary_and_regression_models(tmp_path):
    import keras

    from zoo_testing import tiny_data

    X, y = tiny_data((6,), "binary", samples=80)
    binary = keras.Sequential([keras.Input((6,)), keras.layers.Dense(1, activation="sigmoid")])
    binary.compile("adam", "binary_crossentropy")
    binary.fit(X, y, epochs=3, verbose=0)
    report = evaluation.evaluate_model(binary, X, y, class_names=["no", "yes"])
    assert report.task == "binary"
    p = binary.predict(X, verbose=0)[:, 0]
    assert report.metrics["roc_auc_score"] == pytest.approx(metrics.roc_auc_score(y, p))
    for name in ("roc_curve", "precision_recall_curve", "calibration_curve", "confusion_matrix"):
        assert_png(report.plots[name])

    X, y = tiny_data((5,), "regression", num_outputs=1, samples=60)
    regressor = keras.Sequential([keras.Input((5,)), keras.layers.Dense(1)])
    report = evaluation.evaluate_model(regressor, X, y[:, 0], out_dir=tmp_path)
    assert report.task == "regression"
    pred = regressor.predict(X, verbose=0)[:, 0]
    assert report.metrics["mean_squared_error"] == pytest.approx(metrics.mean_squared_error(y[:, 0], pred), rel=1e-5)
    for name in ("predicted_vs_actual", "residuals_vs_predicted", "residual_histogram"):
        assert_png((tmp_path / f"{name}.png").read_bytes())


def test_model_input_and_task_mismatch(iris, iris_model):
    model, _ = iris_model
    with pytest.raises(InvalidParameterError, match=r"`X` must have shape \(None, 4\).*Received: X of shape \(30, 5\)"):
        evaluation.evaluate_model(model, np.zeros((30, 5), "float32"), iris.y_test)
    with pytest.raises(InvalidParameterError, match="1 target.* emits 3 outputs"):
        evaluation.evaluate_model(model, iris.X_test, iris.y_test.astype("float32"), task="regression")
    with pytest.raises(InvalidParameterError, match="'binary' needs a model with 1 sigmoid or 2 softmax"):
        evaluation.evaluate_model(model, iris.X_test, iris.y_test, task="binary")
    with pytest.raises(InvalidParameterError, match="cannot emit.*Received: label 5"):
        evaluation.evaluate_model(model, iris.X_test, np.full(len(iris.y_test), 5))
    with pytest.raises(InvalidParameterError, match="`X` must contain only finite values"):
        X = iris.X_test.copy()
        X[0, 0] = np.nan
        evaluation.evaluate_model(model, X, iris.y_test)
    with pytest.raises(InvalidParameterError, match="`X` must hold at least one sample"):
        evaluation.evaluate_model(model, iris.X_test[:0], iris.y_test[:0])


def test_nan_predictions_from_a_model():
    import keras

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    model.set_weights([np.full((3, 2), np.nan, "float32"), np.zeros(2, "float32")])
    with pytest.raises(InvalidParameterError, match="NaN/inf model outputs"):
        evaluation.classification_report(model, np.ones((4, 3), "float32"), np.array([0, 1, 0, 1]))


# --- reconstruction and verification ----------------------------------------------------------


def _autoencoder(features, latent=2, *, with_latent_output=False):
    import keras

    inputs = keras.Input((features,))
    code = keras.layers.Dense(latent, name="encoder")(inputs)
    reconstruction = keras.layers.Dense(features, name="decoder")(code)
    outputs = [reconstruction, code] if with_latent_output else reconstruction
    model = keras.Model(inputs, outputs)
    model.compile("adam", "mse" if not with_latent_output else ["mse", None])
    return model


def test_reconstruction_report_with_anomaly_labels(tmp_path):
    rng = np.random.default_rng(6)
    basis = rng.normal(size=(2, 8))
    normal = (rng.normal(size=(120, 2)) @ basis).astype("float32")
    anomalies = rng.normal(scale=3.0, size=(20, 8)).astype("float32")
    model = _autoencoder(8)
    model.fit(normal, normal, epochs=40, batch_size=16, verbose=0)
    X = np.concatenate([normal[:60], anomalies])
    labels = np.r_[np.zeros(60), np.ones(20)].astype(int)
    report = evaluation.evaluate_model(model, X, labels, task="reconstruction", out_dir=tmp_path)
    recon = model.predict(X, verbose=0)
    errors = ((X - recon) ** 2).mean(axis=1)
    assert report.metrics["mean_squared_error"] == pytest.approx(metrics.mean_squared_error(X, recon), rel=1e-5)
    assert report.metrics["roc_auc_score"] == pytest.approx(metrics.roc_auc_score(labels, errors), rel=1e-6)
    assert report.metrics["roc_auc_score"] > 0.9  # anomalies off the learned plane reconstruct badly
    assert report.metrics["threshold"] == pytest.approx(np.percentile(errors, 95), rel=1e-5)
    assert report.tables["confusion_matrix"].to_numpy().sum() == len(X)
    assert_png((tmp_path / "reconstruction_error_histogram.png").read_bytes())
    assert_png((tmp_path / "anomaly_roc_curve.png").read_bytes())


def test_reconstruction_of_a_vae_like_model_with_several_outputs():
    model = _autoencoder(6, with_latent_output=True)
    X = np.random.default_rng(7).normal(size=(30, 6)).astype("float32")
    report = evaluation.reconstruction_report(model, X, threshold=1.0, plots=False)
    assert set(report.metrics) >= {"mean_squared_error", "reconstruction_error_p95", "flagged_fraction"}
    assert "roc_auc_score" not in report.metrics
    with pytest.raises(InvalidParameterError, match="must reconstruct its input"):
        evaluation.reconstruction_report(lambda X: X[:, :2], X)


def test_verification_report_embedding_and_pair_models():
    import keras

    rng = np.random.default_rng(8)
    centers = rng.normal(scale=3.0, size=(4, 5))
    identity_a, identity_b = rng.integers(0, 4, 100), rng.integers(0, 4, 100)
    X_a = (centers[identity_a] + rng.normal(size=(100, 5))).astype("float32")
    X_b = (centers[identity_b] + rng.normal(size=(100, 5))).astype("float32")
    same = (identity_a == identity_b).astype(int)
    inputs = keras.Input((5,))
    embedder = keras.Model(inputs, keras.layers.Dense(5, kernel_initializer="identity", name="embed")(inputs))
    report = evaluation.evaluate_model(embedder, (X_a, X_b), same, task="verification")
    distances = np.linalg.norm(X_a - X_b, axis=1)
    assert report.metrics["roc_auc_score"] == pytest.approx(metrics.roc_auc_score(same, -distances), rel=1e-5)
    assert report.metrics["roc_auc_score"] > 0.8
    # the equal error rate rebuilt from scikit-learn's ROC curve: where FPR meets the miss rate 1 − TPR
    fpr, tpr, _ = metrics.roc_curve(same, -distances)
    crossing = int(np.argmin(np.abs(fpr - (1 - tpr))))
    assert report.metrics["equal_error_rate"] == pytest.approx((fpr[crossing] + 1 - tpr[crossing]) / 2, abs=0.02)
    assert_png(report.plots["verification_roc_curve"])
    assert_png(report.plots["pair_score_histogram"])

    a, b = keras.Input((5,)), keras.Input((5,))
    distance = keras.layers.Dot(axes=1)([keras.layers.Subtract()([a, b]), keras.layers.Subtract()([a, b])])
    pair_model = keras.Model([a, b], distance)
    pair_report = evaluation.verification_report(pair_model, X_a, X_b, same, pair_output="distance", plots=False)
    assert pair_report.metrics["roc_auc_score"] == pytest.approx(report.metrics["roc_auc_score"], rel=1e-5)
    with pytest.raises(InvalidParameterError, match="matching \\(1\\) and non-matching"):
        evaluation.verification_report(embedder, X_a, X_b, np.ones(100, int))
    with pytest.raises(InvalidParameterError, match="`X_a` and `X_b` must have the same shape"):
        evaluation.verification_report(embedder, X_a, X_b[:10], same)


# --- MLflow: a real local store, read back ----------------------------------------------------


def test_log_to_mlflow_and_history_from_a_run(iris, iris_model, tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    experiment = client.create_experiment("eval", artifact_location=(tmp_path / "artifacts").as_uri())
    run_id = client.create_run(experiment).info.run_id
    model, history = iris_model
    for epoch, value in enumerate(history.history["loss"]):  # what a training callback logs
        client.log_metric(run_id, "loss", value, step=epoch)
        client.log_metric(run_id, "val_loss", history.history["val_loss"][epoch], step=epoch)

    report = evaluation.evaluate_model(model, iris.X_test, iris.y_test, class_names=iris.class_names,
                                       history=run_id, tracking_uri=uri)
    assert report.tables["history"]["loss"].tolist() == pytest.approx(history.history["loss"])
    report.log_to_mlflow(run_id, tracking_uri=uri)

    logged = client.get_run(run_id).data.metrics
    for name, value in report.metrics.items():
        assert logged[f"test_{name}"] == pytest.approx(value)
    artifacts = {a.path for a in client.list_artifacts(run_id, "report")}
    assert {"report/report.html", "report/report.json", "report/confusion_matrix.png",
            "report/training_history.png"} <= artifacts
    local = client.download_artifacts(run_id, "report/report.json", str(tmp_path / "download"))
    assert json.loads(open(local).read())["metrics"] == pytest.approx(report.metrics)
