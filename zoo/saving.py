"""Loading `.keras` files safely: `safe_mode=True` always, so loading never runs code; and the
catalog's custom objects registered with Keras as soon as Keras is imported."""

import importlib.abc
import os
import sys

from zoo.errors import InvalidParameterError, InvalidTypeError


def has_graph(model):
    """True for a Functional or Sequential model with known inputs."""
    try:
        return bool(model.inputs)
    except (AttributeError, ValueError):
        return False


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


# Keras finds a custom class only once the module registering it has run, and it imports modules
# by name only for its own packages. `import zoo` must stay free of TensorFlow (`zoo list`), so
# the registration waits for Keras: it runs when `keras` and `tensorflow` (which imports Keras
# from its own `__init__`) have both finished importing.
_WATCHED = ("keras", "tensorflow")


def _initializing(name):
    module = sys.modules.get(name)
    return module is not None and getattr(getattr(module, "__spec__", None), "_initializing", False)


_AFTER_KERAS = []  # callbacks run once Keras has finished importing (`after_keras_import`)


def _register_if_ready(finished=None):
    """Import `zoo.layers` once Keras is imported and neither watched package is mid-import."""
    if "keras" not in sys.modules:
        return
    if any(_initializing(name) for name in _WATCHED if name != finished):
        return
    for finder in [f for f in sys.meta_path if isinstance(f, _KerasImportHook)]:
        sys.meta_path.remove(finder)
    import zoo.layers  # noqa: F401  (registers the catalog's custom objects)

    while _AFTER_KERAS:
        _AFTER_KERAS.pop(0)()


class _KerasImportHook(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loader of `keras`/`tensorflow` to register after it runs."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _WATCHED:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _RegisteringLoader(spec.loader, fullname)
                return spec
        return None


class _RegisteringLoader(importlib.abc.Loader):
    def __init__(self, loader, name):
        self._loader, self._name = loader, name

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        module.__spec__.loader = module.__loader__ = self._loader  # the real loader, for reloads
        self._loader.exec_module(module)
        _register_if_ready(finished=self._name)

    def __getattr__(self, name):  # get_resource_reader, is_package...: the real loader's
        return getattr(self._loader, name)


def register_on_keras_import():
    """Register the catalog's custom objects now if Keras is imported, else right after it is."""
    if not any(isinstance(f, _KerasImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _KerasImportHook())
    _register_if_ready()  # Keras imported already: now, and the hook goes


def after_keras_import(callback):
    """Call `callback()` once, right after the catalog registers with Keras: now if Keras is
    imported already, else when `keras` and `tensorflow` have both finished importing."""
    _AFTER_KERAS.append(callback)
    register_on_keras_import()
