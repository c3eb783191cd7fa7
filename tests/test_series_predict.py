"""`zoo predict` on a series run: the history's next `horizon` steps with their time stamps, one
forecast per window with `--all-windows`, and the bad inputs (a history shorter than a window,
`--all-windows` on a model that does not forecast) as one error line with nothing written."""

import json

import numpy as np
import pandas as pd
import pytest
from zoo_testing import zoo_here

WINDOW, HORIZON = 6, 3


def history(steps, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "month": pd.date_range("2020-01-01", periods=steps, freq="MS").strftime("%Y-%m-%d"),
        "sales": (10 + 0.5 * np.arange(steps) + rng.normal(0, 1, steps)).round(2),
        "price": rng.normal(5, 1, steps).round(2)})


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A series run's folder as `zoo run` leaves it: an untrained model (the skip connection makes
    it the last-value forecast, so each forecast names the window it came from) and series.json."""
    import zoo
    from keras_zoo.predict import write_series_spec
    from zoo.series import dataset_from_series

    folder = tmp_path_factory.mktemp("series_run")
    frame = history(60)
    data = dataset_from_series(frame, target="sales", features=["sales", "price"], window=WINDOW,
                               horizon=HORIZON)
    core = zoo.create_model("gru", input_shape=data.feature_shape, num_outputs=1, task="regression")
    data.compose(core).save(folder / "best_model.keras")
    write_series_spec(str(folder), data, target="sales", frame=frame)
    return folder


def test_the_forecast_covers_the_steps_after_the_history_with_their_time_stamps(run_dir, tmp_path):
    past = history(20, seed=1)
    past.to_csv(tmp_path / "history.csv", index=False)
    spec = json.loads((run_dir / "series.json").read_text())
    assert spec == {"window": WINDOW, "horizon": HORIZON, "season": None, "target": "sales",
                    "features": ["sales", "price"], "time_column": "month"}

    ran = zoo_here("predict", run_dir, "history.csv", "--out", "forecast.csv", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    forecast = pd.read_csv(tmp_path / "forecast.csv")
    assert list(forecast.columns) == ["step", "month", "prediction"]
    assert list(forecast["step"]) == [1, 2, 3]
    assert list(forecast["month"]) == ["2021-09-01", "2021-10-01", "2021-11-01"]  # after 2021-08
    # step k is `horizon` after the window ending on row 20 - horizon + k - 1: its last value
    np.testing.assert_allclose(forecast["prediction"], past["sales"].iloc[-HORIZON:], atol=1e-4)

    ran = zoo_here("predict", run_dir, "history.csv", "--out", "backtest.csv", "--all-windows", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    backtest = pd.read_csv(tmp_path / "backtest.csv")
    assert list(backtest.columns) == ["window_end", "month", "prediction", "actual"]
    assert list(backtest["window_end"]) == list(range(WINDOW - 1, 20))
    np.testing.assert_allclose(backtest["prediction"], past["sales"].iloc[WINDOW - 1:], atol=1e-4)
    inside = backtest["window_end"] + HORIZON < 20
    np.testing.assert_allclose(backtest["actual"][inside], past["sales"].iloc[WINDOW - 1 + HORIZON:])
    assert backtest["actual"][~inside].isna().sum() == HORIZON
    assert list(backtest["month"][inside]) == list(past["month"].iloc[WINDOW - 1 + HORIZON:])
    assert list(backtest["month"].iloc[-HORIZON:]) == list(forecast["month"])


def test_numbers_as_the_time_column_continue_at_their_step():
    from keras_zoo.predict import forecast_times, time_column

    frame = pd.DataFrame({"year": [1990, 1992, 1994], "level": [3.0, 1.0, 2.0]})
    assert time_column(frame, exclude=["level"]) == "year"
    assert list(forecast_times(frame["year"], np.array([2, 3, 4]))) == [1994, 1996, 1998]
    assert time_column(frame.iloc[::-1], exclude=["level"]) is None  # not increasing


def refused(run, out):
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), run.stderr
    assert not out.exists()
    return lines[0]


def test_a_history_shorter_than_a_window_is_one_error_line(run_dir, tmp_path):
    history(WINDOW - 1).to_csv(tmp_path / "short.csv", index=False)
    ran = zoo_here("predict", run_dir, "short.csv", "--out", "f.csv", cwd=tmp_path)
    assert "at least one window of history: 6 rows" in refused(ran, tmp_path / "f.csv")


def test_all_windows_on_a_model_that_does_not_forecast_is_one_error_line(tmp_path):
    import zoo

    zoo.create_model("mlp", input_shape=(2,), num_outputs=1, task="regression").save(tmp_path / "m.keras")
    history(10).to_csv(tmp_path / "history.csv", index=False)
    ran = zoo_here("predict", "m.keras", "history.csv", "--out", "f.csv", "--all-windows", cwd=tmp_path)
    assert "`--all-windows` backtests a forecasting model" in refused(ran, tmp_path / "f.csv")


def test_a_series_model_without_its_series_json_is_one_error_line(run_dir, tmp_path):
    (tmp_path / "best_model.keras").write_bytes((run_dir / "best_model.keras").read_bytes())
    history(20).to_csv(tmp_path / "history.csv", index=False)
    ran = zoo_here("predict", ".", "history.csv", "--out", "f.csv", cwd=tmp_path)
    assert "takes windows of shape (6, 2), not rows of a CSV" in refused(ran, tmp_path / "f.csv")
    (tmp_path / "series.json").write_text('{"window": 6}')
    ran = zoo_here("predict", ".", "history.csv", "--out", "f.csv", cwd=tmp_path)
    assert "series.json without the fields" in refused(ran, tmp_path / "f.csv")
    (tmp_path / "series.json").write_text('{"window": 6,')
    ran = zoo_here("predict", ".", "history.csv", "--out", "f.csv", cwd=tmp_path)
    assert "series.json that is not readable JSON" in refused(ran, tmp_path / "f.csv")


def test_zoo_run_leaves_what_zoo_predict_forecasts_from(tmp_path):
    """The whole road: `zoo run` on a series config writes series.json beside the model, and
    `zoo predict` on a history forecasts the next `horizon` steps (equal to the model's own
    forecast of the history's last windows)."""
    import yaml

    history(60).to_csv(tmp_path / "sales.csv", index=False)
    (tmp_path / "run.yaml").write_text(yaml.safe_dump({
        "data": {"source": "sales.csv", "series": {"target": "sales", "features": ["sales", "price"],
                                                    "window": WINDOW, "horizon": HORIZON}},
        "search": {"algorithm": "random", "max_trials": 1, "max_epochs": 1},
        "tracking": {"enabled": False}}))
    ran = zoo_here("run", "run.yaml", "--out", "out", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert json.loads((tmp_path / "out" / "series.json").read_text())["time_column"] == "month"
    past = history(20, seed=1)
    past.to_csv(tmp_path / "history.csv", index=False)
    ran = zoo_here("predict", "out", "history.csv", "--out", "forecast.csv", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    forecast = pd.read_csv(tmp_path / "forecast.csv")
    assert list(forecast["step"]) == [1, 2, 3] and len(forecast) == HORIZON

    import keras

    import zoo  # noqa: F401 - registers the custom layers

    model = keras.saving.load_model(tmp_path / "out" / "best_model.keras", safe_mode=True)
    rows = past[["sales", "price"]].to_numpy("float32")
    windows = np.stack([rows[end - WINDOW:end] for end in range(20 - HORIZON + 1, 21)])
    np.testing.assert_allclose(forecast["prediction"], model.predict(windows, verbose=0).ravel(), atol=1e-4)
