"""`zoo evaluate` through a real subprocess (its mistakes through the CLI's entry point in this
process), and report.html rendered by headless Chromium."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from zoo_testing import zoo_here

ZOO = shutil.which("zoo", path=os.path.dirname(sys.executable))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "Agg"}


def zoo_command(*args, cwd):
    assert ZOO, "the `zoo` console script is not installed next to this Python"
    return subprocess.run([ZOO, *args], capture_output=True, text=True, cwd=cwd, env=ENV, timeout=300)


def train_and_save(path, source, *, model_name, shape="flat", epochs=10, **params):
    import zoo
    from zoo.data import load_dataset

    data = load_dataset(source, shape=shape)
    model = zoo.create_model(model_name, input_shape=data.input_shape, num_outputs=data.num_outputs,
                             task=data.task, **params)
    model.fit(data.X_train, data.y_train, epochs=epochs, batch_size=32, verbose=0)
    model.save(path)
    return data, model


@pytest.fixture(scope="module")
def iris_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("iris_model")
    path = folder / "iris.keras"
    train_and_save(path, "iris", model_name="mlp", hidden_units=(16,), learning_rate=0.02)
    return path


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """One `zoo evaluate` of a digits CNN into a new run of a real MLflow store, shared by the tests."""
    from mlflow.tracking import MlflowClient

    folder = tmp_path_factory.mktemp("digits_run")
    model_path = folder / "digits.keras"
    data, model = train_and_save(model_path, "digits", model_name="cnn", shape="image", epochs=4,
                                 filters=(8,), dense_units=(16,), learning_rate=0.01)
    expected_accuracy = np.mean(model.predict(data.X_test, verbose=0).argmax(1) == data.y_test)
    uri = f"sqlite:///{folder}/mlflow.db"
    MlflowClient(uri).create_experiment("digits", artifact_location=(folder / "artifacts").as_uri())
    result = zoo_command("evaluate", str(model_path), "--data", "digits", "--out", "out", "--json",
                         "--experiment", "digits", "--tracking-uri", uri, cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder, uri, json.loads(result.stdout), expected_accuracy


def test_evaluate_digits_cnn_writes_report_and_logs_to_mlflow(digits_run):
    from mlflow.tracking import MlflowClient

    folder, uri, printed, expected_accuracy = digits_run
    out = folder / "out"
    assert (folder / printed["report"]) == out / "report.html"
    for name in ("report.json", "report.html", "confusion_matrix.png", "confusion_matrix_normalized.png",
                 "roc_curve.png", "precision_recall_curve.png", "calibration_curve.png"):
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "report.json").read_text())
    assert report["task"] == "multiclass" and report["meta"]["split"] == "test"
    assert report["tables"]["per_class"]["index"] == [str(d) for d in range(10)]
    # the same seeded split as training: scored on the held-out test set, with the image shape
    assert report["metrics"]["accuracy_score"] == pytest.approx(expected_accuracy)
    assert report["metrics"] == pytest.approx(printed["metrics"])

    client = MlflowClient(uri)
    run = client.get_run(printed["run_id"])
    assert run.info.status == "FINISHED"
    for name, value in report["metrics"].items():
        if value is not None:
            assert run.data.metrics[f"test_{name}"] == pytest.approx(value)
    artifacts = {a.path for a in client.list_artifacts(printed["run_id"], "report")}
    assert {"report/report.html", "report/report.json", "report/roc_curve.png"} <= artifacts


@pytest.mark.parametrize("args, message", [
    (["missing.keras", "--data", "iris"], "`model` file does not exist. Received: model='missing.keras'"),
    (["{model}", "--data", "irs"], "Unknown dataset 'irs'. Did you mean 'iris'?"),
    (["{model}", "--data", "wine"], "`X` must have shape (None, 4) to match the model's input"),
    (["{model}", "--data", "iris", "--test-size", "1.5"], "`--test-size` must be a float in [0, 1)"),
    (["{model}", "--data", "iris", "--task", "regression"], "`task` 'regression' needs numeric targets"),
])
def test_evaluate_bad_input_is_one_error_line_and_exit_2(iris_model, tmp_path, args, message):
    args = [a.replace("{model}", str(iris_model)) for a in args]
    # the CLI's entry point in this process (the fixture above ran the console script for real)
    result = zoo_here("evaluate", *args, "--out", "rep", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "rep").exists()


def test_a_file_that_is_not_a_keras_model(tmp_path):
    from keras_zoo.commands.evaluate import load_model
    from zoo.errors import InvalidParameterError

    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"not a zip archive")
    with pytest.raises(InvalidParameterError, match="`model` is not a loadable Keras model .*Received: model="):
        load_model(bad)
    with pytest.raises(InvalidParameterError, match="`model` file does not exist"):
        load_model(tmp_path)  # a folder is not a model file
    (tmp_path / "model.h5").write_bytes(b"")
    with pytest.raises(InvalidParameterError, match="`model` must be a Keras model saved as .keras"):
        load_model(tmp_path / "model.h5")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Appended to a copy of the page: after load, count tables and images that failed to decode.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const broken = images.filter(i => !i.complete || i.naturalWidth === 0).length;
  const marker = document.createElement("pre");
  marker.id = "probe";
  marker.textContent = JSON.stringify({tables: document.querySelectorAll("table").length,
                                       images: images.length, broken: broken});
  document.body.appendChild(marker);
});
</script>"""


def test_report_html_renders_in_headless_chromium(digits_run, tmp_path):
    import re

    if CHROMIUM is None:  # CI (.ci/run sets KERAS_ZOO_CI) installs Debian's chromium: there it must run
        if os.environ.get("KERAS_ZOO_CI"):
            pytest.fail("headless Chromium is not installed, and CI must render the report in it")
        pytest.skip("headless Chromium not installed (.ci/run installs Debian's chromium)")

    from PIL import Image

    page = digits_run[0] / "out" / "report.html"
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=5000"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True,
                         timeout=120)
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout)
    assert found, dom.stderr[-2000:]
    counts = json.loads(found.group(1))
    assert counts["tables"] >= 5  # meta, metrics, per-class, two confusion matrices
    assert counts["images"] == 5 and counts["broken"] == 0

    screenshot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, *flags, "--window-size=1200,3000", f"--screenshot={screenshot}", page.as_uri()],
                   capture_output=True, timeout=120)
    image = Image.open(screenshot).convert("L")
    assert image.size == (1200, 3000)
    pixels = np.asarray(image)
    assert pixels.min() < 100 and (pixels < 250).mean() > 0.05  # text, tables and plots were drawn
