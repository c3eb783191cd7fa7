"""Time series: sliding windows, a split strictly by time, naive baselines and MASE."""

import math
import warnings

import numpy as np

from zoo.errors import InvalidParameterError


def _check_int(field, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidParameterError(f"`{field}` must be an integer >= {minimum}. Received: {field}={value!r}")


def window_features(frame_or_array, *, target, features=None):
    """`(names, target_index)`: the columns of make_windows' last axis (names for a DataFrame,
    positions for an array) and the target's position among them, None when it is not a feature.

    `features=None` takes every numeric column of a frame, in its order, or every column of an array
    (a 1-D array is one series, column 0); the target is then a feature."""
    import pandas as pd

    if features is not None:
        names = list(features)
    elif isinstance(frame_or_array, pd.DataFrame):
        names = [c for c in frame_or_array.columns if pd.api.types.is_numeric_dtype(frame_or_array[c])]
    else:
        array = np.asarray(frame_or_array)
        names = list(range(1 if array.ndim == 1 else array.shape[1]))
    return names, (names.index(target) if target in names else None)


def _series_columns(frame_or_array, target, features):
    """`(values (n_steps, n_features) float32, target values (n_steps,))`, the columns checked."""
    import pandas as pd

    names, _ = window_features(frame_or_array, target=target, features=features)
    named = [("data.target", target)] + [("data.series.features", name) for name in names]
    if isinstance(frame_or_array, pd.DataFrame):
        frame = frame_or_array
        for field, name in named:
            if name not in frame.columns:
                raise InvalidParameterError(
                    f"`{field}` names no column of the series (columns: {', '.join(map(str, frame.columns))}). "
                    f"Received: {field}={name!r}"
                )
            if not pd.api.types.is_numeric_dtype(frame[name]):
                raise InvalidParameterError(
                    f"`{field}` must name a numeric column. Received: {field}={name!r} of dtype {frame[name].dtype}"
                )
        return frame[names].to_numpy(dtype="float32"), frame[target].to_numpy(dtype="float32")
    array = np.asarray(frame_or_array, dtype="float32")
    array = array.reshape(-1, 1) if array.ndim == 1 else array
    for field, name in named:
        if isinstance(name, bool) or not isinstance(name, (int, np.integer)) or not 0 <= name < array.shape[1]:
            raise InvalidParameterError(
                f"`{field}` must be a column position of the array (0 to {array.shape[1] - 1}). Received: {field}={name!r}"
            )
    return array[:, names], array[:, target]


def make_windows(frame_or_array, *, target, features=None, window, horizon=1):
    """`(X, y, t)`: X (n_windows, window, n_features) float32 of past values, y (n_windows,) the
    target `horizon` steps after each window's last step, t the row of that target.

    Windows whose target is missing are left out (t then skips them); missing inputs stay NaN.
    """
    _check_int("data.series.window", window, 1)
    _check_int("data.series.horizon", horizon, 1)
    values, target_values = _series_columns(frame_or_array, target, features)
    steps = len(values)
    if window + horizon > steps:
        raise InvalidParameterError(
            f"`data.series.window` plus `data.series.horizon` must be at most the series length ({steps} rows). "
            f"Received: data.series.window={window}, data.series.horizon={horizon}"
        )
    count = steps - window - horizon + 1
    windows = np.lib.stride_tricks.sliding_window_view(values, window, axis=0)[:count]  # (count, features, window)
    t = np.arange(count) + window - 1 + horizon
    y = target_values[t]
    kept = ~np.isnan(y)
    X = np.ascontiguousarray(np.transpose(windows, (0, 2, 1))[kept], dtype="float32")
    return X, y[kept].astype("float32"), t[kept]


def split_indices(t, *, window, test_size, val_size, horizon=1):
    """Positions of the "train", "val" and "test" windows: chronological, the test last, and a gap
    before val and before test so that no window's rows (its inputs up to its target row) overlap a
    window of an earlier split; the windows that would straddle a boundary are dropped.

    `test_size` and `val_size` are shares of all windows (val_size may be 0: no validation)."""
    if not isinstance(test_size, (int, float)) or not 0 < test_size < 1:
        raise InvalidParameterError(f"`data.test_size` must be a share in (0, 1). Received: data.test_size={test_size!r}")
    if not isinstance(val_size, (int, float)) or not 0 <= val_size < 1:
        raise InvalidParameterError(f"`data.val_size` must be a share in [0, 1). Received: data.val_size={val_size!r}")
    t = np.asarray(t)
    if np.any(np.diff(t) <= 0):
        raise InvalidParameterError("`t` must be strictly increasing (windows in time order). Received: unordered t")
    span = window - 1 + horizon  # a window covers rows t - span .. t
    first_row = t - span
    count = len(t)
    test = np.arange(max(count - math.ceil(test_size * count), 0), count)
    earlier = np.flatnonzero(t < first_row[test[0]]) if len(test) else np.array([], dtype=int)
    val = earlier[max(len(earlier) - math.ceil(val_size * count), 0):] if val_size > 0 else earlier[:0]
    boundary = first_row[val[0]] if len(val) else first_row[test[0]] if len(test) else -np.inf
    train = np.flatnonzero(t < boundary)
    if not len(train) or not len(test) or (val_size > 0 and not len(val)):
        raise InvalidParameterError(
            f"`data.series` gives too few windows to split by time: {count} windows of {window} steps "
            f"(horizon {horizon}) leave {len(train)} for train once a gap of {span} windows separates each split. "
            f"Received: data.series.window={window}, data.test_size={test_size}, data.val_size={val_size}"
        )
    return {"train": train, "val": val, "test": test}


def split_by_time(X, y, t, *, window, test_size, val_size, horizon=1):
    """`{"train": (X, y), "val": (X, y), "test": (X, y)}` by split_indices (which see)."""
    positions = split_indices(t, window=window, test_size=test_size, val_size=val_size, horizon=horizon)
    return {name: (X[index], y[index]) for name, index in positions.items()}


def naive_forecast(X, *, target_index):
    """The last observed target value of each window."""
    return np.asarray(X)[:, -1, target_index]


def carried_forward(X, index, fallback):
    """Windows whose missing target steps hold the last value observed before them (`fallback`
    before the first): a forecast from the last value needs one."""
    targets = X[:, :, index]
    observed = ~np.isnan(targets)
    last = np.maximum.accumulate(np.where(observed, np.arange(targets.shape[1]), 0), axis=1)
    filled = np.where(np.maximum.accumulate(observed, axis=1),
                      np.take_along_axis(targets, last, axis=1), fallback)
    X = np.array(X, copy=True)
    X[:, :, index] = filled
    return X


def seasonal_naive_forecast(X, *, target_index, season, horizon=1):
    """The target's value `season` steps before the forecast time (a whole number of seasons
    before it when horizon > season); the window must reach back that far."""
    X = np.asarray(X)
    _check_int("season", season, 1)
    position = anchor_step(X.shape[1], horizon=horizon, season=season)
    if position < 0:
        raise InvalidParameterError(
            f"`season` must fit in the window (window {X.shape[1]}, horizon {horizon}). Received: season={season}"
        )
    return X[:, position, target_index]


def mase(y_true, y_pred, y_train, *, season=1):
    """Mean absolute scaled error: MAE over the in-sample MAE of the seasonal naive forecast of the
    training series (season 1: the previous value). NaN when the training series never changes."""
    y_train = np.asarray(y_train, dtype="float64").ravel()
    _check_int("season", season, 1)
    if len(y_train) <= season:
        raise InvalidParameterError(f"`y_train` must be longer than `season`. Received: {len(y_train)} values, season={season}")
    scale = np.mean(np.abs(y_train[season:] - y_train[:-season]))
    error = np.mean(np.abs(np.asarray(y_true, dtype="float64") - np.asarray(y_pred, dtype="float64")))
    return float(error / scale) if scale > 0 else float("nan")


def anchor_step(window, *, horizon=1, season=None):
    """The window step the forecast starts from: the last one, or with a season the step a whole
    number of seasons before the forecast time (what seasonal_naive_forecast reads)."""
    if not season:
        return window - 1
    return window - 1 + horizon - season * math.ceil(horizon / season)


def _better_naive(X_train, y_train, *, target_index, horizon, season):
    """"seasonal-naive" when a season is set and that forecast errs less (MAE) than the last value
    on the training windows (the windows where both are observed), "naive" otherwise: the forecast
    a model starts from, the one the run's baseline also picks on a series with a trend."""
    if not season:
        return "naive"
    forecasts = [naive_forecast(X_train, target_index=target_index),
                 seasonal_naive_forecast(X_train, target_index=target_index, season=season, horizon=horizon)]
    y = np.asarray(y_train, dtype="float64")
    both = ~np.isnan(forecasts[0]) & ~np.isnan(forecasts[1])
    naive, seasonal = (np.mean(np.abs(y[both] - f[both])) if both.any() else np.inf for f in forecasts)
    return "seasonal-naive" if seasonal < naive else "naive"


class SeriesPreprocessor:
    """What a forecasting model carries in its graph, fitted on the training windows: gaps filled by
    carrying the last observed value forward (with 0/1 missing indicators when the training windows
    have gaps), each window normalized by its own last value and spread, and the core's output read
    as a change from the last value (or, with a season, the seasonal-naive value where it errs less on
    the training windows: `anchor`) through a skip connection whose core side starts at zero, so an
    untrained model is that naive forecast and a trend past the training range is followed.
    Without the target among the features there is no naive value: the windows are standardized
    with training statistics and the output unscaled with the target's."""

    def __init__(self, X_train, y_train, *, target_index, horizon=1, season=None):
        from zoo.preprocessing import target_stats

        X = np.asarray(X_train, dtype="float32")
        self.input_shape = tuple(X.shape[1:])
        self.target_index = target_index
        self.anchor = "naive" if target_index is None else _better_naive(
            X, y_train, target_index=target_index, horizon=horizon, season=season)
        self.anchor_step = anchor_step(self.input_shape[0], horizon=horizon,
                                       season=season if self.anchor == "seasonal-naive" else None)
        self.has_missing = bool(np.isnan(X).any())
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a feature missing everywhere
            mean, variance = np.nanmean(X, axis=(0, 1)), np.nanvar(X, axis=(0, 1))
            step = np.nanmean(np.abs(np.diff(X, axis=1)), axis=(0, 1))
        self.fill_values = [float(m) for m in np.nan_to_num(mean)]
        self.variance = [float(v) if v > 0 else 1.0 for v in np.nan_to_num(variance)]
        # a window's scale is floored by the typical step change of its feature: a flat window
        # (a gap carried forward) must not blow its few changes up
        self.scale_floor = [float(s) if s > 0 else 1.0 for s in np.nan_to_num(step)]
        self.target_stats = target_stats(y_train)

    @property
    def feature_shape(self):
        """The windows the core sees: the features, then one missing indicator each (with gaps)."""
        window, features = self.input_shape
        return (window, features * (2 if self.has_missing else 1))

    def compose(self, core):
        """raw windows (NaN for a missing step) → fill forward → per-window normalization → `core`
        → zero-initialized change → + the naive value, uncompiled."""
        import keras

        from zoo.layers.preprocessing import Standardize
        from zoo.layers.series import FillForward, RestoreLevel, WindowNormalize
        from zoo.preprocessing import unscale_target

        features = self.input_shape[1]
        indicators = features if self.has_missing else 0
        inputs = keras.Input(self.input_shape, name="inputs")
        x = FillForward(self.fill_values, indicator=self.has_missing, name="fill_forward")(inputs)
        if self.target_index is None:
            x = Standardize(self.fill_values + [0.0] * indicators, self.variance + [1.0] * indicators,
                            name="normalize")(x)
            return keras.Model(inputs, unscale_target(self.target_stats)(core(x)), name=core.name)
        x, anchor, scale = WindowNormalize(features, self.target_index, self.anchor_step,
                                           self.scale_floor, name="window_normalize")(x)
        change = keras.layers.Dense(1, kernel_initializer="zeros", name="forecast_change")(core(x))
        return keras.Model(inputs, RestoreLevel(name="restore_level")([change, anchor, scale]),
                           name=core.name)


def dataset_from_series(frame_or_array, *, target, features=None, window, horizon=1, season=None,
                        test_size=0.2, val_size=0.1, name="series"):
    """A regression `zoo.data.Dataset` of windows split strictly by time (see split_indices): the
    windows stay raw (NaN for a missing step), a SeriesPreprocessor fitted on the training windows
    goes inside the model; `Dataset.series` keeps what the forecast report needs."""
    from zoo.data import Dataset
    from zoo.preprocessing import target_stats

    _check_int("data.series.window", window, 1)
    if season is not None:
        _check_int("data.series.season", season, 2)
        if season > window:
            raise InvalidParameterError(
                f"`data.series.season` must be at most `data.series.window` ({window}): the forecast "
                f"starts from the value one season back, which the window must hold. "
                f"Received: data.series.season={season}")
    X, y, t = make_windows(frame_or_array, target=target, features=features, window=window,
                           horizon=horizon)
    parts = split_indices(t, window=window, test_size=test_size, val_size=val_size, horizon=horizon)
    names, target_index = window_features(frame_or_array, target=target, features=features)
    train, val, test = parts["train"], parts["val"], parts["test"]
    notes = [(f"series: {len(X)} windows of {window} steps, horizon {horizon}; split by "
              f"time into {len(train)} train, {len(val)} val, {len(test)} test")]
    dropped = len(frame_or_array) - window - horizon + 1 - len(X)
    if dropped:
        notes.append(f"{dropped} windows dropped: their target step is missing")
    preprocessor = SeriesPreprocessor(X[train], y[train], target_index=target_index, horizon=horizon,
                                      season=season)
    missing = int(np.isnan(_series_columns(frame_or_array, target, features)[0]).any(axis=1).sum())
    if missing:
        notes.append(f"{missing} steps with a missing input: filled inside the model by carrying the "
                     "last observed value forward" + (", with a missing indicator" if preprocessor.has_missing else ""))
    if target_index is not None:
        start = "seasonal-naive" if preprocessor.anchor == "seasonal-naive" else "last"
        notes.append(f"forecast: the change from the {start} value (an untrained model is that naive "
                     "forecast), on windows normalized each by its own level and spread")
    data = Dataset(X[train], y[train], X[val], y[val], X[test], y[test], task="regression",
                   num_outputs=1, feature_names=[str(n) for n in names], name=name,
                   preprocessor=preprocessor, target_stats=target_stats(y[train]), notes=notes)
    data.series = {"window": window, "horizon": horizon, "season": season,
                   "target_index": target_index, "t": {k: t[v] for k, v in parts.items()}}
    return data


def forecast_baselines(data, predictions):
    """The forecast report's extra metrics on the test windows: the model's MASE, and the MAE and
    MASE of the last-value (and, with a season, the seasonal-naive) forecast."""
    series = data.series
    index, season = series["target_index"], series["season"]
    y_true, y_train = data.y_test, data.y_train
    predictions = np.asarray(predictions, dtype="float64").ravel()
    metrics = {"mase": mase(y_true, predictions, y_train, season=season or 1)}
    if index is None:
        return metrics
    # a window's missing target steps hold the last value observed before them (the training
    # targets' mean before the first), as the run's baseline reads them
    X_test = carried_forward(data.X_test, index, float(np.mean(y_train)))
    baselines = {"naive": naive_forecast(X_test, target_index=index)}
    if season and data.X_test.shape[1] >= season:
        baselines["seasonal_naive"] = seasonal_naive_forecast(
            X_test, target_index=index, season=season, horizon=series["horizon"])
    for label, forecast in baselines.items():
        metrics[f"{label}_mean_absolute_error"] = float(np.mean(np.abs(y_true - forecast)))
        metrics[f"{label}_mase"] = mase(y_true, forecast, y_train, season=season or 1)
    return metrics
