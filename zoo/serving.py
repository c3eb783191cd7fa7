"""A saved model served on the user's raw data: rows in (a table's raw columns, named features, or
the model's arrays), predictions out in the user's labels with a probability per class, or in their
units. `zoo predict` and the MLflow model (`RawDataModel`) share it; it imports no MLflow."""

import numpy as np

MODEL_ARTIFACT = "model"  # the `.keras` file among the MLflow model's artifacts


def raw_inputs(data):
    """What reading raw rows of `data` (a `zoo.data.Dataset`) takes, JSON-able: the table's schema
    (`schema`), or the feature names of a flat array model (`feature_names`, read by name), and
    the class names; neither for images, windows and several inputs (arrays as they are)."""
    shape = () if isinstance(data.X_train, (list, tuple)) else np.shape(data.X_train)[1:]
    config = {"class_names": [str(name) for name in data.class_names] if data.class_names else None}
    if data.schema is not None:
        config["schema"] = data.schema.to_dict()
    elif data.feature_names and len(shape) == 1 and shape[0] == len(data.feature_names):
        config["feature_names"] = [str(name) for name in data.feature_names]
    return config


class RawDataModel:
    """MLflow's `PythonModel` interface without MLflow (`tuning.tracking` logs it as one): the
    model loads with the catalog's layers registered, and `predict` takes raw rows (`raw_inputs`
    says which) and returns `prediction_frame`'s table."""

    def __init__(self, model=None, config=None):
        self._set(model, config)

    def load_context(self, context):
        from zoo.saving import load_keras_model

        self._set(load_keras_model(context.artifacts[MODEL_ARTIFACT], compile=False),
                  context.model_config)

    def _set(self, model, config):
        from zoo.data import class_names_of

        self.model, self.config = model, dict(config or {})
        self.class_names = (class_names_of(model) if model is not None else None) or self.config.get("class_names")

    def predict(self, context, model_input, params=None):
        return prediction_frame(predict_raw(self.model, self.inputs(model_input)), self.class_names)

    def inputs(self, rows):
        """The model's inputs from raw rows: a DataFrame of the table's columns or of the named
        features, or the arrays (a dict by input name for several inputs)."""
        if self.config.get("schema"):
            from zoo.tabular import Schema, frame_to_inputs

            return frame_to_inputs(rows, Schema.from_dict(self.config["schema"]))
        if self.config.get("feature_names"):
            import pandas as pd

            names = self.config["feature_names"]
            frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(np.asarray(rows), columns=names)
            return frame[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype="float32")
        if isinstance(rows, dict):  # the signature's tensors, their dtypes kept (uint8 pixels)
            return {name: np.asarray(values) for name, values in rows.items()}
        return np.asarray(rows)


def predict_raw(model, inputs, batch_size=1024):
    """A model on its raw inputs (an array, or {name: (n, 1)} with strings) in batches, called
    directly: Keras's `predict` takes no object arrays, and costs ~40 ms a call."""
    import tensorflow as tf

    arrays = inputs if isinstance(inputs, dict) else {None: inputs}
    count = len(next(iter(arrays.values())))
    outputs = []
    for start in range(0, count, batch_size):
        batch = {}
        for name, values in arrays.items():
            part = np.asarray(values[start:start + batch_size])
            batch[name] = tf.constant(part.astype(str) if part.dtype == object else part)
        outputs.append(np.asarray(model(batch if isinstance(inputs, dict) else batch[None], training=False)))
    return np.concatenate(outputs) if outputs else np.zeros((0, 1), "float32")


def prediction_frame(outputs, class_names):
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
