"""Predictions on raw rows from a saved model or an exported artifact, in the user's labels."""

import json
import os

import numpy as np

from zoo.errors import InvalidParameterError


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


def _manifest(path):
    """The manifest's JSON, None when there is none; one that cannot be read or lacks what
    `zoo predict` reads is refused."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidParameterError(
            f"`model` holds an export manifest that is not readable JSON ({_first_line(error)}); "
            f"export again. Received: {path!r}") from None
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
            from zoo.preprocessing import (
                apply_vocabularies,
                artifact_inputs,
                count_unseen,
            )
            from zoo.tabular import Schema

            schema = Schema.from_dict(self.tabular["schema"])
            _require_columns(frame, [c.name for c in schema.features])
            unseen = count_unseen(self.tabular, frame)
            if self.model is not None and isinstance(self.model.input, dict):
                from zoo.tabular import frame_to_inputs

                return predict_raw(self.model, frame_to_inputs(frame, schema)), unseen
            if self.preprocessing.get("inputs") == "raw":  # the artifact takes the raw columns
                inputs = artifact_inputs(self.tabular, frame)
                names = [spec["name"] for spec in self.manifest["model"]["inputs"]]
                return np.asarray(self.runner([inputs[name] for name in names])[0]), unseen
            codes = apply_vocabularies(self.tabular, frame)
            return self._run(codes), unseen
        if self.model is not None and isinstance(self.model.input, dict):
            return self._predict_dict(frame), unseen
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


def predict_raw(model, inputs, batch_size=1024):
    """A model on raw columns ({name: (n, 1)}, strings included) in batches: Keras's `predict`
    takes no object arrays, so each batch goes in as TensorFlow tensors."""
    import tensorflow as tf

    count = len(next(iter(inputs.values())))
    outputs = []
    for start in range(0, count, batch_size):
        batch = {}
        for name, values in inputs.items():
            part = values[start:start + batch_size]
            batch[name] = tf.constant(part.astype(str) if part.dtype == object else part)
        outputs.append(np.asarray(model(batch, training=False)))
    return np.concatenate(outputs)


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


def prediction_frame(outputs, class_names, task=None):
    """One row per input: `prediction` in the user's labels or units and, for classification, one
    `probability_<label>` column per class."""
    import pandas as pd

    outputs = np.asarray(outputs, dtype="float64").reshape(len(outputs), -1)
    if not class_names:
        values = outputs[:, 0] if outputs.shape[1] == 1 else list(outputs)
        return pd.DataFrame({"prediction": values})
    if outputs.shape[1] == 1:  # binary: one sigmoid unit for the second class
        probabilities = np.hstack([1.0 - outputs, outputs])
    else:
        probabilities = outputs
    frame = pd.DataFrame({"prediction": np.asarray(class_names)[probabilities.argmax(axis=1)]})
    for index, name in enumerate(class_names):
        frame[f"probability_{name}"] = probabilities[:, index]
    return frame
