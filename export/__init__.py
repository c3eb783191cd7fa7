"""The export layer: SavedModel, TFLite (+ quantization) and ONNX, each verified against Keras.

>>> import export
>>> manifest = export.export_model(model, "out/export", quantize=("dynamic",))
>>> manifest.ok, export.check_manifest("out/export")
(True, [])

Importing this package does not import TensorFlow; `export_model` does when called.
"""

from export._options import FORMATS, MAX_OPSET, MIN_OPSET, QUANTIZATIONS
from export.core import DEFAULT_FORMATS, export_model
from export.manifest import Artifact, Manifest, check_manifest, load_manifest

__all__ = [
    "DEFAULT_FORMATS",
    "FORMATS",
    "MAX_OPSET",
    "MIN_OPSET",
    "QUANTIZATIONS",
    "Artifact",
    "Manifest",
    "check_manifest",
    "export_model",
    "load_manifest",
]
