"""Loading `.keras` files safely: `safe_mode=True` always, so loading never runs code."""

import os

from zoo.errors import InvalidParameterError, InvalidTypeError


def load_keras_model(path, *, field="model", compile=True):
    """Load a `.keras` file with `safe_mode=True` and the catalog's custom objects registered.

    A missing file, another format, a corrupt archive or a model holding a `Lambda` layer (whose
    Python code would run on load) is bad input: one line naming `field`.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidTypeError(f"`{field}` must be a path to a .keras file. Received: {field}={path!r}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InvalidParameterError(f"`{field}` file does not exist. Received: {field}={path!r}")
    if not path.endswith(".keras"):
        raise InvalidParameterError(
            f"`{field}` must be a Keras model saved as .keras (model.save('x.keras')). Received: {field}={path!r}"
        )
    import zipfile

    if not zipfile.is_zipfile(path):
        raise InvalidParameterError(
            f"`{field}` is not a loadable Keras model (a .keras file is a zip archive; this is "
            f"not). Received: {field}={path!r}"
        )
    import keras

    import zoo.layers  # noqa: F401  (registers the catalog's custom objects)

    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as error:  # a zip that is not a model, a truncated file, unsafe objects
        text = " ".join(str(error).split())
        if "Lambda" in text and "safe_mode" in text:
            raise InvalidParameterError(
                f"`{field}` contains a Lambda layer, whose Python code would run on load; it is "
                f"refused (replace it with a registered custom layer). Received: {field}={path!r}"
            ) from None
        reason = text[:160] if text else type(error).__name__
        raise InvalidParameterError(
            f"`{field}` is not a loadable Keras model ({reason}). Received: {field}={path!r}"
        ) from None
