"""TFLite conversion shared by the export and the deployment-aware search."""

import gc
import threading

_swap = threading.RLock()


class _YoungCollections:
    """The `gc` module as TensorFlow Lite's converter module sees it during `convert`: its one
    `gc.collect()` collects the young generations only; everything else is the real module."""

    def __getattr__(self, name):
        return getattr(gc, name)

    @staticmethod
    def collect(generation=2):
        return gc.collect(min(generation, 1))


_YOUNG = _YoungCollections()


def convert(converter):
    """`converter.convert()` without the full garbage collection that
    `TFLiteConverter.from_saved_model(...).convert()` runs after loading the SavedModel
    (tensorflow/lite/python/lite.py): in a process that holds a search's models and graphs that
    collection scans every object the process has, 0.2-0.6 s a conversion, while most of what it
    is there to free (the SavedModel the converter just loaded) is young; the rest waits for the
    collector's own schedule (an export of three models, nine conversions: peak RSS 2% higher)."""
    from tensorflow.lite.python import lite

    if not hasattr(lite, "gc"):  # a TensorFlow that converts differently: leave it alone
        return converter.convert()
    with _swap:
        real, lite.gc = lite.gc, _YOUNG
        try:
            return converter.convert()
        finally:
            lite.gc = real
