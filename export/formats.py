"""Writers for each format: `.keras`, SavedModel, TFLite (float32 and quantized) and ONNX.

Each writer writes to the path it is given and returns (converter description, notes); the caller
owns temp paths and renames.
"""

import contextlib
import logging
import os
import re

from zoo._tflite import convert

FLEX_FIX_RECURRENT = (
    "Recurrent layers convert to TFLite builtins once unrolled, which needs a fixed sequence "
    "length: rebuild the model with one (e.g. input_shape=({example}) instead of {shape}), "
)
FLEX_FIX_ALLOW = (
    "or allow Flex ops (allow_flex=True, `zoo export --allow-flex`), which ships TensorFlow "
    "kernels and needs the Flex delegate linked into the app."
)


class ConversionError(Exception):
    """A converter refused the model; the message says why and what to change."""


class FlexOpsRequired(ConversionError):
    """TFLite needs TF Select (Flex) ops for this model and they were not allowed."""


def write_keras(model, path):
    import keras

    model.save(path)
    return f"keras {keras.__version__} Model.save", []


def write_savedmodel(model, path):
    import tensorflow as tf

    # Keras's ExportArchive: a `serve` endpoint (also `serving_default`) with a None batch dim
    model.export(path, format="tf_saved_model", verbose=False)
    return f"keras.Model.export tf_saved_model (tensorflow {tf.__version__})", []


# the ONNX domains an artifact may use: what every ONNX Runtime build runs without extensions
STANDARD_ONNX_DOMAINS = ("ai.onnx", "ai.onnx.ml")


def has_string_inputs(model):
    return any(str(tensor.dtype) == "string" for tensor in model.inputs)


def write_onnx(model, path, opset):
    """ONNX through Keras's own export (tf2onnx's `from_function`), or, for a model with string
    inputs, tf2onnx's `from_keras`: only it reads a lookup table's contents (into ai.onnx.ml's
    CategoryMapper), where `from_function` writes a table handle no runtime can run."""
    import tf2onnx

    with _quiet("tf2onnx"), _captured_stderr():
        if has_string_inputs(model):
            tf2onnx.convert.from_keras(model, input_signature=_input_signature(model), opset=opset,
                                       output_path=path)
            how = "tf2onnx.convert.from_keras"
        else:
            model.export(path, format="onnx", opset_version=opset, verbose=False)
            how = "keras.Model.export onnx"
    _check_onnx_domains(path)
    used = _onnx_opset(path)
    return f"tf2onnx {tf2onnx.__version__} via {how}, opset {used}", []


def _input_signature(model):
    """The model's inputs as TensorSpecs, in the structure it is called with (a dict stays one)."""
    import tensorflow as tf

    def spec(tensor):
        return tf.TensorSpec(tensor.shape, tf.as_dtype(tensor.dtype), name=tensor.name)

    if isinstance(model.input, dict):
        return ({key: spec(tensor) for key, tensor in model.input.items()},)
    return tuple(spec(tensor) for tensor in model.inputs)


def onnx_domains(path):
    """The operator domains an ONNX file uses ("ai.onnx" for the default one), subgraphs included."""
    import onnx

    proto = onnx.load(path, load_external_data=False)
    domains = set()

    def visit(graph):
        for node in graph.node:
            domains.add(node.domain or "ai.onnx")
            for attribute in node.attribute:
                for sub in [attribute.g, *attribute.graphs]:
                    visit(sub)

    visit(proto.graph)
    return domains


def _check_onnx_domains(path):
    other = sorted(onnx_domains(path) - set(STANDARD_ONNX_DOMAINS))
    if other:
        raise ConversionError(
            f"ONNX conversion used operators outside the standard domains ({', '.join(STANDARD_ONNX_DOMAINS)}): "
            f"{', '.join(other)}, which a stock ONNX Runtime cannot run")


def _onnx_opset(path):
    import onnx

    proto = onnx.load(path, load_external_data=False)
    return next((entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx")), None)


@contextlib.contextmanager
def _captured_stderr():
    """Send file descriptor 2 to a temp file for the duration (C++ code ignores sys.stderr)."""
    import sys
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


@contextlib.contextmanager
def _quiet(logger_name):
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def recurrent_layers(model):
    """The model's recurrent layers (RNN subclasses, alone or inside Bidirectional), those of the
    models nested in it included (a catalog model behind its preprocessing)."""
    import keras

    found = []
    for layer in model.layers:
        if isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional)):
            found.append(layer)
        elif isinstance(layer, keras.Model) and getattr(layer, "layers", None):
            found += recurrent_layers(layer)
    return found


def _is_rolled(layer):
    import keras

    if isinstance(layer, keras.layers.Bidirectional):
        return not layer.forward_layer.unroll or not layer.backward_layer.unroll
    return not layer.unroll


def tflite_ready(model):
    """The model TFLite converts with builtins only, and notes on what changed.

    Recurrent layers run as a TensorList loop that needs Flex ops; unrolled over a fixed
    sequence length they become plain builtins with the same weights and the same results.
    Nested models (the catalog model inside the preprocessing) are rebuilt the same way.
    """
    import keras

    rolled = [layer for layer in recurrent_layers(model) if _is_rolled(layer)]
    if not rolled:
        return model, []
    if any(None in tuple(tensor.shape)[1:] for tensor in model.inputs):
        return model, []  # cannot unroll; the converter's refusal explains

    def unrolled(layer):
        if isinstance(layer, keras.Model) and any(inner in rolled for inner in recurrent_layers(layer)):
            return keras.models.clone_model(layer, clone_function=unrolled)
        config = layer.get_config()
        if isinstance(layer, keras.layers.Bidirectional):
            for key in ("layer", "backward_layer"):
                if config.get(key):
                    config[key]["config"]["unroll"] = True
        elif layer in rolled:
            config["unroll"] = True
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=unrolled)
    clone.set_weights(model.get_weights())
    names = ", ".join(layer.name for layer in rolled)
    return clone, [f"recurrent layers unrolled for TFLite builtins: {names}"]


def write_tflite(saved_model_dir, path, *, quantization, representative, allow_flex, int8_io,
                 model):
    """Convert a SavedModel to TFLite; builtin ops only unless `allow_flex`.

    quantization: None (float32), 'float16' (float16 weights), 'dynamic' (int8 weights, float
    activations) or 'int8' (full integer, activations calibrated on `representative`, a
    generator of feed dicts).
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8 if quantization == "int8" else tf.lite.OpsSet.TFLITE_BUILTINS]
    if allow_flex:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
        converter._experimental_lower_tensor_list_ops = False
    converter.target_spec.supported_ops = ops
    if quantization:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":
        converter.representative_dataset = representative
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    try:
        with _captured_stderr():  # the MLIR converter prints its diagnostics straight to fd 2
            blob = convert(converter)
    except Exception as error:  # ConverterError, and ValueError/RuntimeError from calibration
        raise _explain_tflite_error(str(error), model, quantization, allow_flex) from None
    if not allow_flex:  # the gate: whatever the converter did, a file with a custom op is refused
        custom = [name for name, builtin in tflite_operators(blob) if not builtin]
        if custom:
            raise FlexOpsRequired(f"TFLite conversion of '{model.name}' wrote ops outside the TFLite "
                                  f"builtins: {', '.join(custom)}. " + FLEX_FIX_ALLOW)
    with open(path, "wb") as handle:
        handle.write(blob)
    notes = ["Flex (TF Select) ops allowed"] if allow_flex else []
    if quantization == "int8":
        notes.append("int8 inputs/outputs" if int8_io else "float32 inputs/outputs, int8 inside")
    mode = quantization or "float32"
    return f"tf.lite.TFLiteConverter.from_saved_model (tensorflow {tf.__version__}), {mode}", notes


def tflite_operators(blob):
    """[(name, is builtin)] of the operator codes in a TFLite flatbuffer (bytes): builtins by their
    schema name (HASHTABLE_FIND), custom and Flex ops by their custom code (FlexStringLower)."""
    from ai_edge_litert import schema_py_generated as schema

    names = {value: key for key, value in vars(schema.BuiltinOperator).items() if key.isupper()}
    model = schema.Model.GetRootAs(blob, 0)
    operators = []
    for index in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(index)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())  # the newer field, else the old one
        if builtin == schema.BuiltinOperator.CUSTOM:
            operators.append((code.CustomCode().decode("utf-8"), False))
        else:
            operators.append((names.get(builtin, str(builtin)), True))
    return operators


def _explain_tflite_error(text, model, quantization, allow_flex):
    ops = sorted(set(re.findall(r"'tf\.(\w+)' op", text)) | set(re.findall(r"\bFlex(\w+)", text)))
    rolled = [layer.name for layer in recurrent_layers(model) if _is_rolled(layer)]
    needs_flex = bool(ops) or "Select TF ops" in text or "TensorList" in text
    if needs_flex and not allow_flex:
        listed = ", ".join(ops) or "TensorList ops"
        message = (f"TFLite conversion of '{model.name}' needs TensorFlow ops outside the TFLite "
                   f"builtins (Flex / TF Select ops): {listed}. ")
        if rolled:
            shape = tuple(model.inputs[0].shape[1:])
            example = ", ".join("12" if d is None else str(d) for d in shape)
            message += f"They come from the recurrent layers {', '.join(rolled)}. "
            message += FLEX_FIX_RECURRENT.format(example=example, shape=shape)
        else:
            message += "Replace the layers that need them, "
        return FlexOpsRequired(message + FLEX_FIX_ALLOW)
    lines = [line.strip() for line in text.splitlines() if "error" in line.lower()] or [text.strip()]
    reason = re.sub(r"loc\(.*?\)\)*:\s*", "", lines[0])[:400]
    if quantization == "int8":
        return ConversionError(
            f"TFLite full-integer (int8) conversion of '{model.name}' failed: {reason}. Some ops "
            f"have no int8 kernel; the 'dynamic' mode quantizes weights only.")
    return ConversionError(f"TFLite conversion of '{model.name}' failed: {reason}")


def write_temp_savedmodel(model, path):
    """A SavedModel of the TFLite-ready model, the converter's input."""
    model.export(path, format="tf_saved_model", verbose=False)
    return path


def file_name(fmt, quantization=None):
    """The artifact's name inside the export directory."""
    if fmt == "keras":
        return "model.keras"
    if fmt == "savedmodel":
        return "saved_model"
    if fmt == "onnx":
        return "model.onnx"
    return f"model_{quantization}.tflite" if quantization else "model.tflite"


def remove_path(path):
    import shutil

    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)
