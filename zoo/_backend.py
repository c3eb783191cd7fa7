"""The Keras backend the product runs on, checked before anything runs (no Keras import)."""

import json
import os

from zoo.errors import InvalidParameterError

SUPPORTED_BACKENDS = ("tensorflow",)


def configured_backend():
    """The backend Keras will load: `KERAS_BACKEND`, else `keras.json` in `KERAS_HOME` (or
    ~/.keras), else TensorFlow, Keras's own order."""
    backend = os.environ.get("KERAS_BACKEND")
    if backend:
        return backend
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json"), encoding="utf-8") as handle:
            return json.load(handle).get("backend") or "tensorflow"
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def check_backend():
    """Refuse a Keras backend the search, export and MLflow model do not support yet."""
    backend = configured_backend()
    if backend not in SUPPORTED_BACKENDS:
        raise InvalidParameterError(
            f"keras-zoo runs on the TensorFlow backend of Keras (its TFLite and ONNX exports and "
            f"trials need it); unset KERAS_BACKEND or set it to tensorflow. Received: "
            f"KERAS_BACKEND={backend!r}")
