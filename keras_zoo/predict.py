"""Predictions on raw rows from a saved model or an exported artifact, in the user's labels."""

import json
import os

import numpy as np

from zoo.errors import InvalidParameterError
from zoo.serving import predict_raw, prediction_frame  # noqa: F401  (zoo predict's, shared with the MLflow model)


def resolve(model_or_run_dir, fmt):
    """(artifact path, manifest or None) for a `.keras` file or a `zoo run` output folder; an
    exported artifact must hash to the sha256 its manifest records."""
    path = os.fspath(model_or_run_dir)
    if os.path.isdir(path):
        manifest = _manifest(os.path.join(path, "export", "manifest.json"))
        artifact = None
        if fmt == "keras":
            candidate = os.path.join(path, "best_model.keras")
        else:
            artifact = next((a for a in (manifest or {}).get("artifacts", [])
                             if a.get("name") == fmt and a.get("status") == "ok"), None)
            candidate = os.path.join(path, "export", str(artifact.get("path"))) if artifact else None
        if not candidate or not os.path.exists(candidate):
            raise InvalidParameterError(
                f"`--format` {fmt!r} has no artifact in {path!r} (run `zoo run` with export "
                f"enabled, or pick another format). Received: --format={fmt}")
        if artifact is not None:
            _check_sha256(candidate, artifact, fmt)
        return candidate, manifest
    if not os.path.isfile(path):
        raise InvalidParameterError(
            f"`model` must be a .keras file or a `zoo run` output folder. Received: model={path!r}")
    if fmt != "keras":
        raise InvalidParameterError(
            f"`--format` {fmt!r} needs a `zoo run` output folder (with export/). Received: model={path!r}")
    return path, _manifest(os.path.join(os.path.dirname(os.path.abspath(path)), "export", "manifest.json"))


def _read_json(path, what, remedy):
    """A run folder's JSON file, or one line naming it when it cannot be read."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidParameterError(
            f"`model` holds {what} that is not readable JSON ({_first_line(error)}); {remedy}. "
            f"Received: {path!r}") from None


def _manifest(path):
    """The manifest's JSON, None when there is none; one that cannot be read or lacks what
    `zoo predict` reads is refused."""
    if not os.path.isfile(path):
        return None
    manifest = _read_json(path, "an export manifest", "export again")
    artifacts = manifest.get("artifacts") if isinstance(manifest, dict) else None
    model = manifest.get("model") if isinstance(manifest, dict) else None
    if (not isinstance(artifacts, list) or not all(isinstance(a, dict) for a in artifacts)
            or not isinstance(model, dict) or not isinstance(model.get("inputs"), list)
            or not isinstance(manifest.get("preprocessing") or {}, dict)):
        raise InvalidParameterError(
            f"`model` holds an export manifest without its `model.inputs` and `artifacts` lists; "
            f"export again. Received: {path!r}")
    return manifest


def _first_line(error):
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else type(error).__name__


def _check_sha256(path, artifact, fmt):
    from export.manifest import digest

    recorded = str(artifact.get("sha256"))
    found, _ = digest(path)
    if found != recorded:
        raise InvalidParameterError(
            f"`--format` {fmt!r} artifact {artifact.get('path')!r} does not hash to the sha256 its "
            f"manifest records: the file or the manifest changed after the export (export again). "
            f"Received: sha256 {found[:16]}..., recorded {recorded[:16]}...")


# the delimiters a CSV of rows may use; the sniffer picks the one that splits the first lines evenly
DELIMITERS = ",;\t|"


def read_rows(path, target=None):
    """The rows of a CSV (its delimiter sniffed among DELIMITERS), without the target column."""
    import pandas as pd

    from zoo.data import read_csv

    delimiter = sniff_delimiter(path)
    if delimiter == ",":
        frame = read_csv(path)
    else:
        try:
            frame = pd.read_csv(path, sep=delimiter)
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
            raise InvalidParameterError(
                f"`data` is not a readable CSV file with the delimiter {delimiter!r} it seems to "
                f"use ({str(error).splitlines()[0]}). Received: data={path!r}") from None
        if frame.empty:
            raise InvalidParameterError(f"`data` CSV has no rows. Received: data={path!r}")
    frame.attrs["delimiter"] = delimiter
    if target and target in frame.columns:
        frame = frame.drop(columns=[target])
    return frame


def sniff_delimiter(path):
    """The delimiter of a CSV file among DELIMITERS (',' when the sniffer cannot tell)."""
    import csv

    if not os.path.isfile(path):
        return ","  # read_csv names the missing file
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        sample = handle.read(1 << 16)
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


class Predictor:
    """Runs one artifact on raw rows: a `.keras` model or an artifact on the raw columns (for a
    table exported with `inputs="codes"`, on the codes its manifest describes; for a run on arrays,
    the columns its manifest names, in that order); `predict(frame)` → (outputs, rows with a
    category outside the vocabulary)."""

    def __init__(self, path, fmt, manifest):
        self.fmt, self.manifest = fmt, manifest or {}
        self.preprocessing = self.manifest.get("preprocessing") or {}
        self.tabular = self.preprocessing.get("tabular")
        if fmt == "keras":
            from zoo.saving import load_keras_model

            self.model = load_keras_model(path, compile=False)
            self.runner = None
        else:
            from export.runtimes import OnnxRunner, SavedModelRunner, TFLiteRunner

            names = [spec["name"] for spec in self.manifest["model"]["inputs"]]
            self.runner = {"savedmodel": SavedModelRunner, "tflite": TFLiteRunner,
                           "onnx": OnnxRunner}[fmt](path, names)
            self.model = None

    @property
    def class_names(self):
        if self.model is not None:
            from zoo.data import class_names_of

            names = class_names_of(self.model)
            if names:
                return names
        return self.preprocessing.get("class_names")

    def predict(self, frame):
        unseen = 0
        if self.tabular is not None:
            from zoo.preprocessing import artifact_inputs, inputs_to_codes, unseen_rows
            from zoo.tabular import Schema, frame_to_inputs

            schema = Schema.from_dict(self.tabular["schema"])
            _require_columns(frame, [c.name for c in schema.features])
            raw = frame_to_inputs(frame, schema)  # the rows are read once, whatever takes them
            codes = inputs_to_codes(schema, self.tabular["vocabularies"], raw)
            unseen = int(unseen_rows(schema, raw, codes).sum())
            if self.model is not None and isinstance(self.model.input, dict):
                return predict_raw(self.model, raw), unseen
            if self.preprocessing.get("inputs") == "raw":  # the artifact takes the raw columns
                inputs = artifact_inputs(self.tabular, inputs=raw)
                names = [spec["name"] for spec in self.manifest["model"]["inputs"]]
                return np.asarray(self.runner([inputs[name] for name in names])[0]), unseen
            return self._run(codes), unseen
        if self.model is not None and isinstance(self.model.input, dict):
            return self._predict_dict(frame), unseen
        shape = tuple(self._input_shape()[1:])
        if len(shape) == 2:  # windows: forecasting windows a history with what its run recorded
            raise InvalidParameterError(
                f"`model` takes windows of shape {shape}, not rows of a CSV: a series model "
                f"forecasts from a history when its folder holds the {SERIES_SPEC} `zoo run` "
                f"writes. Received: no {SERIES_SPEC} beside the model")
        if len(shape) != 1:
            raise InvalidParameterError(
                f"`model` takes arrays of shape {shape}, not rows of a CSV. Received: a CSV")
        names = self.preprocessing.get("feature_names")
        if names and self._input_shape() == [None, len(names)] and _has_named_columns(frame, names):
            return self._run(_named_matrix(frame, names)), unseen
        return self._run(_numeric_matrix(frame, self._input_width())), unseen

    def _input_shape(self):
        if self.model is not None:
            return list(self.model.inputs[0].shape)
        return list(self.manifest["model"]["inputs"][0]["shape"])

    def _input_width(self):
        return int(self._input_shape()[-1])

    def run(self, X):
        """The artifact on a float array of its input's shape."""
        return self._run(X)

    def _run(self, X):
        X = np.asarray(X, dtype="float32")
        if self.model is not None:
            return np.asarray(self.model.predict(X, verbose=0))
        return np.asarray(self.runner([X])[0])

    def _predict_dict(self, frame):
        inputs = {}
        for name, tensor in self.model.input.items():
            _require_columns(frame, [name])
            column = frame[name]
            if "string" in str(tensor.dtype):
                inputs[name] = column.fillna("").astype(str).to_numpy().reshape(-1, 1)
            else:
                inputs[name] = _numbers(column).reshape(-1, 1)
        return predict_raw(self.model, inputs)


def _numbers(column):
    import pandas as pd

    if column.dtype == bool:
        return column.astype("float32").to_numpy()
    return pd.to_numeric(column, errors="coerce").astype("float32").to_numpy()


def _require_columns(frame, needed):
    missing = [name for name in needed if name not in frame.columns]
    if missing:
        delimiter = frame.attrs.get("delimiter")
        read = f", read with the delimiter {delimiter!r}" if delimiter and len(frame.columns) == 1 else ""
        raise InvalidParameterError(
            f"`data` lacks column(s) the model needs: {', '.join(map(repr, missing))} (columns: "
            f"{', '.join(map(str, frame.columns))}{read}). Received: {len(frame.columns)} columns")


def _has_named_columns(frame, names):
    """True when the CSV's header names the run's features (all of them, or it is refused);
    False for a header that names none of them (the columns are then read in order)."""
    named = [name for name in names if name in frame.columns]
    if named and len(named) < len(names):
        _require_columns(frame, names)
    return bool(named)


def _named_matrix(frame, names):
    """The features in the order the run recorded them, read by name."""
    import pandas as pd

    text = [name for name in names if not pd.api.types.is_numeric_dtype(frame[name])]
    if text:
        raise InvalidParameterError(
            f"`data` feature columns must be numeric. Received: non-numeric column {text[0]!r}")
    return frame[list(names)].to_numpy(dtype="float32")


def _numeric_matrix(frame, width):
    numeric = frame.select_dtypes("number")
    if numeric.shape[1] != width:
        raise InvalidParameterError(
            f"`data` must hold the model's {width} numeric feature columns in order. Received: "
            f"{numeric.shape[1]} numeric columns ({', '.join(map(str, numeric.columns[:8]))}...)")
    return numeric.to_numpy(dtype="float32")


# === Forecasts from a history (a `zoo run` with `data.series`) ===================================
SERIES_SPEC = "series.json"  # beside best_model.keras: what windowing a history takes
SERIES_FIELDS = ("window", "horizon", "season", "target", "features", "time_column")


def series_spec(data, *, target, frame=None):
    """What forecasting from a history takes, JSON-able, for a `Dataset` of windows
    (`zoo.series.dataset_from_series`): window, horizon and season, the target, the feature columns
    in the model's order, and the training `frame`'s time column (`time_column`) when it has one."""
    features = [str(name) for name in data.feature_names]
    time = time_column(frame, exclude=[target, *features]) if frame is not None else None
    return {"window": int(data.series["window"]), "horizon": int(data.series["horizon"]),
            "season": data.series.get("season"), "target": str(target), "features": features,
            "time_column": time}


def write_series_spec(folder, data, *, target, frame=None):
    """`folder/series.json` (`series_spec`) for a series run; nothing for another. Returns its path."""
    from zoo._json import write_json_atomic

    if data.series is None:
        return None
    path = os.path.join(folder, SERIES_SPEC)
    write_json_atomic(path, series_spec(data, target=target, frame=frame))
    return path


def read_series_spec(model_or_run_dir):
    """The `series.json` of a run folder (or beside a `.keras` file), None when there is none; one
    that cannot be read or lacks a field is refused."""
    path = os.fspath(model_or_run_dir)
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    path = os.path.join(folder, SERIES_SPEC)
    if not os.path.isfile(path):
        return None
    spec = _read_json(path, f"a {SERIES_SPEC}", "run again")
    if (not isinstance(spec, dict) or any(field not in spec for field in SERIES_FIELDS)
            or not isinstance(spec["features"], list) or not spec["features"]
            or not all(isinstance(spec[f], int) and spec[f] >= 1 for f in ("window", "horizon"))):
        raise InvalidParameterError(
            f"`model` holds a {SERIES_SPEC} without the fields `zoo run` writes "
            f"({', '.join(SERIES_FIELDS)}); run again. Received: {path!r}")
    return spec


def series_windows(frame, spec, *, all_windows=False):
    """`(windows (k, window, features) float32, forecast rows)` of a history: the windows that end
    on its last `horizon` rows (each forecasts one of the next `horizon` steps; the first of them
    need `window + horizon - 1` rows), or with `all_windows` every window of it. A forecast row is
    0-based in the history's rows and lies `horizon` after its window's last row."""
    window, horizon, names = spec["window"], spec["horizon"], spec["features"]
    _require_columns(frame, names)
    text = [name for name in names if not _is_numeric(frame[name])]
    if text:
        raise InvalidParameterError(
            f"`data` column {text[0]!r} must be numeric: it is one of the series' features. "
            f"Received: values such as {frame[text[0]].dropna().astype(str).iloc[0]!r}")
    steps = len(frame)
    if steps < window:
        raise InvalidParameterError(
            f"`data` must hold at least one window of history: {window} rows (the model forecasts "
            f"from windows of {window} steps, `data.series.window`). Received: {steps} rows")
    values = frame[names].to_numpy(dtype="float32")
    ends = np.arange(window - 1 if all_windows else max(window - 1, steps - horizon), steps)
    windows = np.lib.stride_tricks.sliding_window_view(values, window, axis=0)  # (n, features, window)
    return np.ascontiguousarray(np.transpose(windows[ends - window + 1], (0, 2, 1))), ends + horizon


def forecast_frame(predictor, frame, spec, *, all_windows=False):
    """The forecasts of a history as a table: for the next `horizon` steps (`step` 1..horizon after
    its last row), or with `all_windows` one per window (`window_end`, its last row, 0-based; and
    `actual`, the target where the history holds it, for backtesting); `<time column>` the forecast
    time (continued past the history at its regular step) when the history has one; `prediction`."""
    import pandas as pd

    X, rows = series_windows(frame, spec, all_windows=all_windows)
    shape = tuple(predictor._input_shape()[1:])
    if shape != (spec["window"], len(spec["features"])):
        raise InvalidParameterError(
            f"`model` takes windows of shape {shape}, but its {SERIES_SPEC} describes windows of "
            f"{spec['window']} steps of {len(spec['features'])} features; run again. Received: "
            f"window={spec['window']}, features={spec['features']}")
    steps = len(frame)
    table = {"window_end": rows - spec["horizon"]} if all_windows else {"step": rows - steps + 1}
    time = spec.get("time_column")
    if time in frame.columns:
        stamps = forecast_times(frame[time], rows)
        if stamps is not None:
            table[time] = stamps
    table["prediction"] = np.asarray(predictor.run(X), dtype="float64").reshape(len(X), -1)[:, 0]
    if all_windows:
        inside = rows < steps
        actual = np.full(len(rows), np.nan)
        if spec["target"] in frame.columns:
            actual[inside] = pd.to_numeric(frame[spec["target"]], errors="coerce").to_numpy()[rows[inside]]
        table["actual"] = actual
    return pd.DataFrame(table)


def time_column(frame, exclude=()):
    """The first column of `frame` outside `exclude` that reads as a time axis (`time_values`)."""
    return next((str(name) for name in frame.columns
                 if name not in exclude and time_values(frame[name]) is not None), None)


def time_values(column):
    """`(values, date format or None)` when `column` is a time axis: dates in one of
    `zoo.tabular.DATE_FORMATS` or numbers, none missing, strictly increasing; None otherwise."""
    import pandas as pd

    from zoo.tabular import DATE_FORMATS

    if len(column) < 2 or column.isna().any() or pd.api.types.is_bool_dtype(column):
        return None
    if _is_numeric(column):
        values, date_format = column.to_numpy(dtype="float64"), None
    else:
        parsed = ((pd.to_datetime(column.astype(str), format=fmt, errors="coerce"), fmt)
                  for fmt in DATE_FORMATS)
        values, date_format = next(((pd.DatetimeIndex(v), fmt) for v, fmt in parsed if not v.isna().any()),
                                   (None, None))
        if values is None:
            return None
    increasing = np.all(np.diff(values.asi8 if date_format else values) > 0)
    return (values, date_format) if increasing else None


def forecast_times(column, rows):
    """The time stamps of forecast rows (0-based): the history's own where it has them, the rest
    continued from its last one at its regular step (its inferred frequency, such as month starts,
    or else its median step); None when the column is not a time axis."""
    import pandas as pd

    read = time_values(column)
    if read is None:
        return None
    values, date_format = read
    last, beyond = len(values) - 1, np.maximum(rows - (len(values) - 1), 0)
    if date_format is None:
        step = float(np.median(np.diff(values)))
        stamps = np.where(rows <= last, values[np.minimum(rows, last)], values[last] + beyond * step)
        return stamps.astype("int64") if np.all(np.mod(values, 1) == 0) and float(step).is_integer() else stamps
    stamps = values
    frequency = pd.infer_freq(stamps[-min(len(stamps), 25):]) if len(stamps) >= 3 else None
    offset = pd.tseries.frequencies.to_offset(frequency) if frequency else pd.Timedelta(np.median(np.diff(stamps.asi8)))
    future = [stamps[last] + k * offset for k in range(int(beyond.max()) + 1)]
    return [(stamps[row] if row <= last else future[row - last]).strftime(date_format) for row in rows]


def _is_numeric(column):
    import pandas as pd

    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


# === images ===


def image_input(predictor):
    """(height, width, channels) when the artifact takes decoded pixels (a 4-D `uint8` input: a
    run on images), else None."""
    if predictor.model is not None:
        dtype = str(predictor.model.inputs[0].dtype)
    else:
        dtype = str(predictor.manifest["model"]["inputs"][0].get("dtype"))
    shape = predictor._input_shape()
    return tuple(int(side) for side in shape[1:]) if len(shape) == 4 and dtype == "uint8" else None


def image_predictions(predictor, data):
    """`path,prediction,probability_<class>...` for the images of `data`, and the note on the
    files skipped."""
    from zoo.images import read_pixels

    paths, pixels, skipped = read_pixels(data, image_input(predictor), field="data")
    if predictor.model is not None:
        outputs = predict_raw(predictor.model, pixels)
    else:
        outputs = np.asarray(predictor.runner([pixels])[0])
    table = prediction_frame(outputs, predictor.class_names)
    table.insert(0, "path", paths)
    return table, f"; {skipped} unreadable file(s) skipped" if skipped else ""
