"""The baseline beside every model: scored on the run's own test split, in report.json, report.html,
MLflow and the closing summary of `zoo run`, with a verdict that says which side won."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from zoo_testing import zoo_here

from evaluation.baseline import Baseline, score_baseline
from evaluation.report import Report

CLASSES = ("calm", "breezy", "windy", "stormy", "gale")
SHARES = (0.45, 0.25, 0.18, 0.10, 0.02)  # "gale": 2% of the rows


def imbalanced_frame(rows, seed):
    """Five classes (one at 2%), three numeric columns and one string category that depend on
    the class, with noise and a few missing values."""
    rng = np.random.default_rng(seed)
    label = rng.permutation(np.repeat(np.arange(len(CLASSES)), np.round(np.array(SHARES) * rows).astype(int)))
    frame = pd.DataFrame({f"x{k}": (label * (k + 1) * 0.5 + rng.normal(0, 1.5, rows)).round(2)
                          for k in range(3)})
    shades = np.array(["grey", "blue", "white", "black"])
    frame["sky"] = np.where(rng.random(rows) < 0.6, shades[np.minimum(label, 3)], rng.choice(shades, rows))
    frame["label"] = np.asarray(CLASSES)[label]
    frame.loc[rng.random(rows) < 0.03, "x0"] = np.nan
    frame.loc[rng.random(rows) < 0.03, "sky"] = np.nan
    return frame


def boosting_accuracy(frame):
    """HistGradientBoostingClassifier's test accuracy, computed here: the run's split (zoo.data's,
    seed 0), fitted on its train and val rows, the category as a pandas categorical."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    from zoo.data import dataset_from_frame

    data = dataset_from_frame(frame, target="label", seed=0)
    fit_rows = pd.concat([data.frames["train"], data.frames["val"]])
    categories = sorted(fit_rows["sky"].dropna().unique())

    def columns(rows):
        return rows[["x0", "x1", "x2"]].assign(sky=pd.Categorical(rows["sky"], categories=categories))

    with threadpool_limits(1):  # OpenMP threads on two shared cores: seconds instead of 0.2 s
        boosting = HistGradientBoostingClassifier(random_state=0)
        boosting.fit(columns(fit_rows), np.concatenate([data.y_train, data.y_val]))
        return boosting.score(columns(data.frames["test"]), data.y_test)


@pytest.fixture(scope="module")
def imbalanced_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("baseline_run")
    frame = imbalanced_frame(400, seed=0)
    assert (frame["label"] == "gale").mean() == 0.02
    frame.to_csv(folder / "weather.csv", index=False)
    (folder / "config.yaml").write_text(yaml.safe_dump({
        "data": {"source": "weather.csv", "target": "label"},
        "model": {"name": "mlp", "params": {"hidden_units": [8]}},
        "search": {"max_trials": 1, "max_epochs": 2, "tune_training": False, "seed": 0},
        "tracking": {"enabled": False}}))
    run = zoo_here("run", "config.yaml", "--out", "out", cwd=folder)
    assert run.returncode == 0, run.stderr[-3000:]
    return folder, run


def test_the_run_reports_the_boosting_score_on_its_own_test_split(imbalanced_run):
    folder, run = imbalanced_run
    report = json.loads((folder / "out" / "report" / "report.json").read_text())
    baseline = report["baseline"]
    assert baseline["name"] == "HistGradientBoostingClassifier"
    assert baseline["metric"] == "accuracy_score"
    assert baseline["score"] == pytest.approx(boosting_accuracy(pd.read_csv(folder / "weather.csv")), abs=1e-12)
    assert baseline["model_score"] == report["metrics"]["accuracy_score"]
    # the closing summary says which side won, as the scores do
    word = "beats" if baseline["model_score"] > baseline["score"] else "loses to"
    assert f"model {word} HistGradientBoostingClassifier on accuracy: " in run.stdout
    assert baseline["verdict"] in run.stdout.splitlines()
    page = (folder / "out" / "report" / "report.html").read_text()
    assert page.index("<h2>Baseline</h2>") < page.index("<h2>Metrics</h2>")  # near the top
    assert baseline["verdict"] in page


@pytest.mark.parametrize(("model_score", "word", "gap"), [
    (0.912, "beats", "(+2.5 points)"), (0.856, "loses to", "(\u22123.1 points)"), (0.887, "ties with", "(+0.0 points)")])
def test_the_verdict_names_the_winner_of_a_score(model_score, word, gap):
    baseline = Baseline("HistGradientBoostingClassifier", "accuracy_score", 0.887).against(model_score)
    assert baseline.verdict() == (f"model {word} HistGradientBoostingClassifier on accuracy: "
                                  f"{model_score:.3f} vs 0.887 {gap}")
    assert baseline.model_wins is (word == "beats")


@pytest.mark.parametrize(("model_mae", "word", "ratio"), [(0.4, "beats", "0.23"), (3.48, "loses to", "2.00")])
def test_the_verdict_of_an_error_is_a_ratio_and_lower_wins(model_mae, word, ratio):
    baseline = Baseline("naive forecast", "mean_absolute_error", 1.74, higher_is_better=False).against(model_mae)
    assert baseline.verdict() == f"model {word} naive forecast on MAE: {model_mae:.3f} vs 1.740 ({ratio}× its error)"


def test_an_undefined_score_is_not_compared():
    baseline = Baseline("HistGradientBoostingRegressor", "r2_score", float("nan")).against(0.5)
    assert baseline.model_wins is None
    assert "not comparable" in baseline.verdict()
    assert json.loads(Report("regression", "regression", baseline=baseline).to_json())["baseline"]["score"] is None


def test_a_regression_table_gets_boosting_on_its_date_parts():
    from zoo.data import dataset_from_frame

    rng = np.random.default_rng(1)
    days = pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 730, 300), unit="D")
    frame = pd.DataFrame({"day": days.strftime("%Y-%m-%d"), "open": rng.choice(["yes", "no"], 300),
                          "noise": rng.normal(size=300)})
    # the target lives in the month and the boolean only: a baseline blind to either scores poorly
    frame["sales"] = 10 * np.sin(days.month.to_numpy() / 12 * 2 * np.pi) + 5 * (frame["open"] == "yes")
    data = dataset_from_frame(frame, target="sales", seed=0)
    baseline = score_baseline(data)
    assert (baseline.name, baseline.metric, baseline.higher_is_better) == (
        "HistGradientBoostingRegressor", "r2_score", True)
    assert baseline.score > 0.95


def test_arrays_get_boosting_and_images_a_linear_model_on_pixels():
    from sklearn.ensemble import HistGradientBoostingRegressor

    from zoo.data import load_dataset

    diabetes = load_dataset("diabetes", scale="model")
    expected = HistGradientBoostingRegressor(random_state=0).fit(
        np.concatenate([diabetes.X_train, diabetes.X_val]), np.concatenate([diabetes.y_train, diabetes.y_val]))
    baseline = score_baseline(diabetes)
    assert baseline.name == "HistGradientBoostingRegressor"
    assert baseline.score == pytest.approx(expected.score(diabetes.X_test, diabetes.y_test), abs=1e-9)
    digits = score_baseline(load_dataset("digits", shape="image", scale="model"))
    assert (digits.name, digits.metric) == ("LogisticRegression on pixels", "accuracy_score")
    assert digits.score > 0.9


def seasonal_series(steps, *, trend, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    return pd.DataFrame({"value": trend * t + np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.05, steps)})


@pytest.mark.parametrize(("trend", "chosen"), [(0.0, "seasonal-naive forecast"), (0.5, "naive forecast")])
def test_a_series_gets_the_naive_forecast_that_errs_less_on_its_training_windows(trend, chosen):
    from zoo.series import dataset_from_series

    frame = seasonal_series(240, trend=trend)
    frame.loc[200, "value"] = np.nan  # a gap: the forecast carries the last observed value
    data = dataset_from_series(frame, target="value", window=24, season=12)
    baseline = score_baseline(data)
    assert (baseline.name, baseline.metric, baseline.higher_is_better) == (chosen, "mean_absolute_error", False)
    X = pd.DataFrame(data.X_test[:, :, 0].T).ffill().to_numpy().T  # missing steps: the last value before
    forecast = X[:, 12] if chosen.startswith("seasonal") else X[:, -1]
    assert baseline.score == pytest.approx(np.mean(np.abs(data.y_test - forecast)), rel=1e-6)


def test_mlflow_gets_the_baseline_metric_and_verdict(tmp_path):
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run_id = client.create_run(client.create_experiment("baseline")).info.run_id
    report = Report(kind="classification", task="multiclass", metrics={"accuracy_score": 0.8})
    report.baseline = Baseline("HistGradientBoostingClassifier", "accuracy_score", 0.85).against(0.8)
    report.log_to_mlflow(run_id, client=client)
    logged = client.get_run(run_id).data
    assert logged.metrics["test_baseline_accuracy_score"] == pytest.approx(0.85)
    assert logged.tags["evaluation.baseline"].startswith("model loses to HistGradientBoostingClassifier")
