"""Predictions on raw rows from a saved model or an exported artifact, in the user's labels."""

import json
import os

import numpy as np

from zoo.errors import InvalidParameterError


def resolve(model_or_run_dir, fmt):
    """(artifact path, manifest or None) for a `.keras` file or a `zoo run` output folder."""
    path = os.fspath(model_or_run_dir)
    if os.path.isdir(path):
        manifest = _manifest(os.path.join(path, "export", "manifest.json"))
        if fmt == "keras":
            candidate = os.path.join(path, "best_model.keras")
        else:
            artifact = next((a for a in (manifest or {}).get("artifacts", [])
                             if a.get("name") == fmt and a.get("status") == "ok"), None)
            candidate = os.path.join(path, "export", artifact["path"]) if artifact else None
        if not candidate or not os.path.exists(candidate):
            raise InvalidParameterError(
                f"`--format` {fmt!r} has no artifact in {path!r} (run `zoo run` with export "
                f"enabled, or pick another format). Received: --format={fmt}")
        return candidate, manifest
    if not os.path.isfile(path):
        raise InvalidParameterError(
            f"`model` must be a .keras file or a `zoo run` output folder. Received: model={path!r}")
    if fmt != "keras":
        raise InvalidParameterError(
            f"`--format` {fmt!r} needs a `zoo run` output folder (with export/). Received: model={path!r}")
    return path, _manifest(os.path.join(os.path.dirname(os.path.abspath(path)), "export", "manifest.json"))


def _manifest(path):
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def read_rows(path, target=None):
    from zoo.data import read_csv

    frame = read_csv(path)
    if target and target in frame.columns:
        frame = frame.drop(columns=[target])
    return frame


class Predictor:
    """Runs one artifact on raw rows: a `.keras` model on its raw columns, an exported artifact on
    the codes its manifest describes; `predict(frame)` → (outputs, rows with an unseen category)."""

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
            from zoo.preprocessing import apply_vocabularies, count_unseen
            from zoo.tabular import Schema

            schema = Schema.from_dict(self.tabular["schema"])
            _require_columns(frame, [c.name for c in schema.features])
            unseen = count_unseen(self.tabular, frame)
            if self.model is not None and isinstance(self.model.input, dict):
                from zoo.tabular import frame_to_inputs

                return predict_raw(self.model, frame_to_inputs(frame, schema)), unseen
            codes = apply_vocabularies(self.tabular, frame)
            return self._run(codes), unseen
        if self.model is not None and isinstance(self.model.input, dict):
            return self._predict_dict(frame), unseen
        return self._run(_numeric_matrix(frame, self._input_width())), unseen

    def _input_width(self):
        if self.model is not None:
            return int(self.model.inputs[0].shape[-1])
        return int(self.manifest["model"]["inputs"][0]["shape"][-1])

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
        raise InvalidParameterError(
            f"`data` lacks column(s) the model needs: {', '.join(map(repr, missing))} (columns: "
            f"{', '.join(map(str, frame.columns))}). Received: {len(frame.columns)} columns")


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
