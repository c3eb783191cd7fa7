"""Windows of a series, the split strictly by time, naive baselines and MASE."""

import numpy as np
import pandas as pd
import pytest

from zoo import series
from zoo.errors import InvalidParameterError

WINDOW, HORIZON, SEASON = 12, 2, 7


def seasonal_frame(steps=200, seed=0):
    """A weekly-seasonal level with a trend and noise, a numeric driver and a date column."""
    rng = np.random.default_rng(seed)
    step = np.arange(steps)
    level = 10 + 0.05 * step + 3 * np.sin(2 * np.pi * step / SEASON) + rng.normal(0, 0.3, steps)
    return pd.DataFrame({
        "day": pd.date_range("2024-01-01", periods=steps).strftime("%Y-%m-%d"),
        "sales": level,
        "price": rng.normal(5, 1, steps),
    })


def test_windows_have_the_shapes_and_targets_of_the_series():
    frame = seasonal_frame()
    X, y, t = series.make_windows(frame, target="sales", window=WINDOW, horizon=HORIZON)
    names, target_index = series.window_features(frame, target="sales")
    assert names == ["sales", "price"] and target_index == 0  # the date column is not numeric
    count = len(frame) - WINDOW - HORIZON + 1
    assert X.shape == (count, WINDOW, 2) and y.shape == (count,) and X.dtype == np.float32
    np.testing.assert_array_equal(t, np.arange(count) + WINDOW - 1 + HORIZON)
    sales = frame["sales"].to_numpy(dtype="float32")
    np.testing.assert_array_equal(y, sales[t])
    np.testing.assert_array_equal(X[5, :, 0], sales[5:5 + WINDOW])
    only_price, _, _ = series.make_windows(frame, target="sales", features=["price"], window=WINDOW)
    assert only_price.shape[-1] == 1


def test_split_by_time_leaves_a_gap_between_train_val_and_test():
    X, y, t = series.make_windows(seasonal_frame(), target="sales", window=WINDOW, horizon=HORIZON)
    positions = series.split_indices(t, window=WINDOW, horizon=HORIZON, test_size=0.2, val_size=0.1)
    span = WINDOW - 1 + HORIZON  # a window covers rows t - span .. t

    def rows(name):
        return {row for target in t[positions[name]] for row in range(target - span, target + 1)}

    assert not rows("train") & rows("val") and not rows("train") & rows("test") and not rows("val") & rows("test")
    assert t[positions["train"]].max() < t[positions["val"]].min() - span
    assert t[positions["val"]].max() < t[positions["test"]].min() - span
    for name in ("train", "val", "test"):
        assert np.all(np.diff(t[positions[name]]) > 0)
    assert len(positions["test"]) == int(np.ceil(0.2 * len(t))) and positions["test"][-1] == len(t) - 1
    splits = series.split_by_time(X, y, t, window=WINDOW, horizon=HORIZON, test_size=0.2, val_size=0.1)
    assert set(splits) == {"train", "val", "test"}
    for name, (X_part, y_part) in splits.items():
        np.testing.assert_array_equal(y_part, y[positions[name]])
        assert len(X_part) == len(y_part)
    no_val = series.split_indices(t, window=WINDOW, horizon=HORIZON, test_size=0.2, val_size=0.0)
    assert len(no_val["val"]) == 0 and len(no_val["train"]) > len(positions["train"])


def test_naive_and_seasonal_naive_forecasts_on_a_tiny_series():
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    X, y, _ = series.make_windows(values, target=0, window=3)
    np.testing.assert_array_equal(y, [4, 5, 6, 7])
    np.testing.assert_array_equal(series.naive_forecast(X, target_index=0), [3, 4, 5, 6])
    np.testing.assert_array_equal(series.seasonal_naive_forecast(X, target_index=0, season=2), [2, 3, 4, 5])
    np.testing.assert_array_equal(series.seasonal_naive_forecast(X, target_index=0, season=3), [1, 2, 3, 4])
    X2, y2, _ = series.make_windows(values, target=0, window=3, horizon=2)
    np.testing.assert_array_equal(y2, [5, 6, 7])
    np.testing.assert_array_equal(series.seasonal_naive_forecast(X2, target_index=0, season=3, horizon=2), [2, 3, 4])
    with pytest.raises(InvalidParameterError, match="^`season` must fit in the window"):
        series.seasonal_naive_forecast(X, target_index=0, season=4)


def test_mase_is_one_for_the_naive_forecast_of_the_training_series():
    y_train = seasonal_frame()["sales"].to_numpy()
    assert series.mase(y_train[1:], y_train[:-1], y_train) == pytest.approx(1.0)
    assert series.mase(y_train[SEASON:], y_train[:-SEASON], y_train, season=SEASON) == pytest.approx(1.0)
    assert series.mase(y_train, y_train, y_train) == 0.0
    assert np.isnan(series.mase([1.0], [2.0], np.ones(5)))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"window": 300}, "data.series.window"),
        ({"window": 0}, "data.series.window"),
        ({"window": 5, "horizon": 0}, "data.series.horizon"),
        ({"window": 5, "target": "sale"}, "data.target"),
        ({"window": 5, "target": "day"}, "data.target"),
        ({"window": 5, "features": ["sales", "day"]}, "data.series.features"),
        ({"window": 5, "features": ["cost"]}, "data.series.features"),
    ],
)
def test_bad_series_settings_name_the_field(kwargs, field):
    arguments = {"target": "sales", **kwargs}
    with pytest.raises(InvalidParameterError, match=rf"^`{field}` .*Received: .*{field}="):
        series.make_windows(seasonal_frame(steps=40), **arguments)


def test_too_few_windows_to_split_is_refused():
    X, y, t = series.make_windows(seasonal_frame(steps=40), target="sales", window=10)
    with pytest.raises(InvalidParameterError, match=r"^`data.series` gives too few windows to split by time"):
        series.split_by_time(X, y, t, window=10, test_size=0.2, val_size=0.2)
    with pytest.raises(InvalidParameterError, match=r"^`data.test_size` must be a share in \(0, 1\)"):
        series.split_by_time(X, y, t, window=10, test_size=0.0, val_size=0.2)


def test_a_season_longer_than_the_window_is_refused_naming_the_key():
    with pytest.raises(InvalidParameterError,
                       match=r"^`data.series.season` must be at most `data.series.window` \(12\).*"
                             r"Received: data.series.season=13$"):
        series.dataset_from_series(seasonal_frame(), target="sales", window=12, season=13)


def test_fill_forward_carries_the_last_observed_value_with_an_indicator():
    from zoo.layers import FillForward

    nan = np.nan
    windows = np.array([[nan, 1, nan, nan, 4, nan], [nan] * 6, [2, 3, 5, 7, 11, 13]], dtype="float32")
    out = np.asarray(FillForward([9.0], indicator=True)(windows[..., None]))
    # a gap at a window's start takes the first value after it; a feature missing throughout, the fill
    np.testing.assert_array_equal(out[..., 0], [[1, 1, 1, 1, 4, 4], [9] * 6, windows[2]])
    np.testing.assert_array_equal(out[..., 1], np.isnan(windows))


def trend_frame(steps=300, seed=0, season=12, slope=0.2):
    """A linear trend that keeps rising past the training range, a season and noise."""
    rng = np.random.default_rng(seed)
    step = np.arange(steps)
    return pd.DataFrame({"value": 10 + slope * step + 3 * np.sin(2 * np.pi * step / season)
                         + rng.normal(0, 0.3, steps)})


def forecaster(data, units=(16,)):
    import keras

    import zoo
    from zoo import training

    keras.utils.set_random_seed(0)
    core = zoo.create_model("gru", input_shape=data.feature_shape, num_outputs=1, task="regression",
                            compile=False, units=units)
    return training.compile_model(data.compose(core), task="regression", learning_rate=0.01)


def test_a_forecast_follows_a_trend_past_the_training_range_and_beats_the_naive_ones():
    data = series.dataset_from_series(trend_frame(), target="value", window=24, season=12)
    assert data.y_test.min() > data.y_train.max()  # every test target lies beyond the training range
    # the trend outweighs the season a step ahead: the last value errs less than the seasonal naive
    assert any(note.startswith("forecast: the change from the last value") for note in data.notes)
    model = forecaster(data)
    # untrained, the model IS the naive forecast: the core's change starts at zero
    naive = series.naive_forecast(data.X_test, target_index=0)
    np.testing.assert_allclose(np.asarray(model(data.X_test)).ravel(), naive, rtol=1e-6)
    model.fit(data.X_train, data.y_train, epochs=15, batch_size=32, verbose=0)
    metrics = series.forecast_baselines(data, model.predict(data.X_test, verbose=0))
    # measured: MASE 0.156 against 0.447 (last value) and 1.010 (seasonal naive)
    assert metrics["mase"] <= metrics["naive_mase"], metrics
    assert metrics["mase"] <= metrics["seasonal_naive_mase"], metrics


def test_a_series_with_gaps_counts_its_dropped_windows_and_fills_the_rest_in_the_model(tmp_path):
    import keras

    import export

    frame = trend_frame(steps=240, slope=0.02)  # a gentle trend: the seasonal naive errs less
    gaps = np.random.default_rng(1).choice(len(frame), 24, replace=False)
    frame.loc[gaps, "value"] = np.nan
    window = 24
    data = series.dataset_from_series(frame, target="value", window=window, season=12)
    dropped = int(np.sum(gaps >= window))  # windows whose target step is missing
    assert f"{dropped} windows dropped: their target step is missing" in data.notes
    assert data.feature_shape == (window, 2)  # the value and its missing indicator
    assert any(note.startswith("forecast: the change from the seasonal-naive value") for note in data.notes)
    assert np.isnan(data.X_test).any() and not np.isnan(data.y_test).any()
    model = forecaster(data, units=(4,))
    assert np.isnan(data.X_test[:, 0, 0]).any()  # a window that starts with a gap takes the next value
    filled = pd.DataFrame(data.X_test[:, :, 0].T).ffill().bfill().to_numpy().T
    predictions = np.asarray(model(data.X_test)).ravel()
    np.testing.assert_allclose(predictions, filled[:, 12], rtol=1e-6)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded(data.X_test)).ravel(), predictions, rtol=1e-6)
    manifest = export.export_model(model, tmp_path / "export", ("tflite", "onnx"), samples=data.X_test,
                                   latency_repeats=0)  # TFLite builtins only: no Flex allowed
    assert manifest.ok, [artifact.error for artifact in manifest.artifacts]


def test_the_reports_naive_forecasts_carry_the_last_value_over_a_gap():
    """A test window whose last step is missing: the report's naive forecasts read the value
    before the gap (as the run's baseline does), so their MAE and MASE are numbers, not NaN."""
    frame = trend_frame(steps=240, slope=0.02)
    frame.loc[[230, 236], "value"] = np.nan  # inside the test windows
    data = series.dataset_from_series(frame, target="value", window=24, season=12)
    last = data.X_test[:, -1, 0]
    assert np.isnan(last).any()
    metrics = series.forecast_baselines(data, np.zeros(len(data.y_test)))
    carried = pd.DataFrame(data.X_test[:, :, 0].T).ffill().to_numpy().T[:, -1]
    assert metrics["naive_mean_absolute_error"] == pytest.approx(np.mean(np.abs(data.y_test - carried)))
    assert np.isfinite(metrics["seasonal_naive_mase"])
