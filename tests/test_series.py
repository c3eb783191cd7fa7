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
