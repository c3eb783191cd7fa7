"""keras-zoo's catalog: Keras 3 builders by name, each with a search space.

>>> import zoo
>>> zoo.list_models("res*")
['resnet']
>>> model = zoo.create_model("cnn", input_shape=(8, 8, 1), num_outputs=10)
"""

from zoo import models  # noqa: F401  (registers the families)
from zoo._registry import create_model, get_spec, list_models, register
from zoo.errors import (
    InvalidParameterError,
    InvalidTypeError,
    UnknownNameError,
    ZooError,
)
from zoo.saving import register_on_keras_import

__version__ = "0.1.0"

__all__ = [
    "InvalidParameterError",
    "InvalidTypeError",
    "UnknownNameError",
    "ZooError",
    "create_model",
    "get_spec",
    "list_models",
    "register",
]

# `keras.saving.load_model(path, safe_mode=True)` of any catalog model works after `import zoo`
register_on_keras_import()
