"""Each artifact run in its own runtime: Keras, reloaded SavedModel, LiteRT interpreter, ONNX Runtime.

A runner takes a list of arrays in the Keras model's input order and returns a list of arrays in
its output order; `inputs`/`outputs` describe the tensors as the runtime sees them.
"""

import re

import numpy as np


class FlexDelegateMissing(RuntimeError):
    """The LiteRT interpreter here cannot run TF Select (Flex) ops."""


def _dim(value):
    if isinstance(value, (int, np.integer)) and value >= 0:
        return int(value)
    return None  # -1, None and ONNX's symbolic names are all "any size"


def _dtype_name(dtype):
    """numpy's name of a dtype; "string" for a string tensor (Keras "string", TensorFlow's and
    ONNX Runtime's object, LiteRT's bytes)."""
    if str(dtype) == "string":
        return "string"
    dtype = np.dtype(dtype)
    return "string" if dtype.kind in "OSU" else str(dtype)


def tensor_spec(name, shape, dtype):
    return {"name": str(name), "shape": [_dim(d) for d in shape], "dtype": _dtype_name(dtype)}


def as_strings(array):
    """An object array of Python str (bytes read as UTF-8): what each runtime takes for a string
    tensor (LiteRT and ONNX Runtime both take str objects; TensorFlow encodes them as UTF-8)."""
    array = np.asarray(array)
    flat = [value.decode("utf-8") if isinstance(value, bytes) else str(value) for value in array.ravel()]
    return np.array(flat, dtype=object).reshape(array.shape)


def _natural(key):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]


def _order(keys, wanted):
    """Runtime input names in the Keras input order: by name when they match, else by position."""
    keys = list(keys)
    if set(wanted) <= set(keys):
        return list(wanted)
    return sorted(keys, key=_natural)


class KerasRunner:
    runtime = "keras model(x)"

    def __init__(self, model):
        self.model = model
        self.inputs = [tensor_spec(t.name, t.shape, t.dtype) for t in model.inputs]
        self.outputs = [tensor_spec(t.name, t.shape, t.dtype) for t in model.outputs]

    def __call__(self, arrays):
        import tensorflow as tf

        if any(array.dtype.kind in "OSU" for array in arrays):  # Keras takes no mix of tensors and arrays
            arrays = [tf.constant(as_strings(a).astype(str) if a.dtype.kind in "OSU" else a) for a in arrays]
        if isinstance(self.model.input, dict):  # by key: the inputs' list order is Keras's own
            keys = {tensor.name: key for key, tensor in self.model.input.items()}
            feeds = {keys[tensor.name]: array for tensor, array in zip(self.model.inputs, arrays)}
        else:
            feeds = arrays[0] if len(arrays) == 1 else list(arrays)
        outputs = self.model(feeds, training=False)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        return [np.asarray(output) for output in outputs]


class SavedModelRunner:
    """The `serving_default` signature of a reloaded SavedModel, as TF Serving calls it."""

    runtime = "tf.saved_model.load serving_default"

    def __init__(self, path, input_names):
        import tensorflow as tf

        self._loaded = tf.saved_model.load(path)
        self._function = self._loaded.signatures["serving_default"]
        specs = self._function.structured_input_signature[1]
        self._input_names = _order(specs, input_names)
        self._output_names = sorted(self._function.structured_outputs, key=_natural)
        self.inputs = [tensor_spec(n, specs[n].shape, specs[n].dtype.as_numpy_dtype)
                       for n in self._input_names]
        outputs = self._function.structured_outputs
        self.outputs = [tensor_spec(n, outputs[n].shape, outputs[n].dtype.as_numpy_dtype)
                        for n in self._output_names]
        self._tf = tf

    def __call__(self, arrays):
        feeds = {name: self._tf.constant(as_strings(array).astype(str) if array.dtype.kind in "OSU" else array)
                 for name, array in zip(self._input_names, arrays)}
        results = self._function(**feeds)
        return [results[name].numpy() for name in self._output_names]


class TFLiteRunner:
    """A `.tflite` file in the LiteRT interpreter (ai-edge-litert), through its signature runner.

    Integer inputs and outputs of a fully quantized model are (de)quantized with the scale and
    zero point stored in the file, so callers always pass and get float arrays.
    """

    runtime = "ai_edge_litert.interpreter"

    def __init__(self, path, input_names):
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=path)
        key = next(iter(self._interpreter.get_signature_list()))
        self._runner = self._interpreter.get_signature_runner(key)
        input_details = self._runner.get_input_details()
        output_details = self._runner.get_output_details()
        self._input_names = _order(input_details, input_names)
        self._output_names = sorted(output_details, key=_natural)
        self._input_details = [input_details[n] for n in self._input_names]
        self._output_details = [output_details[n] for n in self._output_names]
        self.inputs = [tensor_spec(n, d["shape_signature"], d["dtype"])
                       for n, d in zip(self._input_names, self._input_details)]
        self.outputs = [tensor_spec(n, d["shape_signature"], d["dtype"])
                        for n, d in zip(self._output_names, self._output_details)]
        # worked out once: the per-call path is a dtype check unless the model is quantized
        self._input_dtypes = [np.dtype(object) if np.dtype(d["dtype"]).kind == "S" else np.dtype(d["dtype"])
                              for d in self._input_details]
        self._quantized_io = any(_is_quantized(d) for d in self._input_details + self._output_details)

    def __call__(self, arrays):
        if self._quantized_io:
            feeds = {name: _quantize(array, detail)
                     for name, detail, array in zip(self._input_names, self._input_details, arrays)}
        else:
            feeds = {name: as_strings(array) if dtype.kind == "O" else array if array.dtype == dtype
                     else array.astype(dtype)
                     for name, dtype, array in zip(self._input_names, self._input_dtypes, arrays)}
        try:
            results = self._runner(**feeds)
        except RuntimeError as error:
            if "Flex delegate" in str(error) or "Select TensorFlow op" in str(error):
                raise FlexDelegateMissing(str(error).split(".")[0]) from None
            raise
        if not self._quantized_io:
            return [results[name] for name in self._output_names]
        return [_dequantize(results[name], detail)
                for name, detail in zip(self._output_names, self._output_details)]


def _is_quantized(detail):
    scale, _ = detail["quantization"]
    return np.dtype(detail["dtype"]).kind in "iu" and bool(scale)


def _quantize(array, detail):
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail["quantization"]
    if dtype.kind in "iu" and scale and np.issubdtype(array.dtype, np.floating):
        info = np.iinfo(dtype)
        return np.clip(np.round(array / scale + zero_point), info.min, info.max).astype(dtype)
    return array.astype(dtype, copy=False)


def _dequantize(array, detail):
    scale, zero_point = detail["quantization"]
    if np.dtype(detail["dtype"]).kind in "iu" and scale:
        return ((array.astype("float32") - zero_point) * scale).astype("float32")
    return array


_ONNX_DTYPES = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(int32)": "int32",
                "tensor(int64)": "int64", "tensor(float16)": "float16", "tensor(bool)": "bool",
                "tensor(string)": "object", "tensor(uint8)": "uint8", "tensor(int8)": "int8"}


class OnnxRunner:
    runtime = "onnxruntime.InferenceSession (CPUExecutionProvider)"

    def __init__(self, path, input_names):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        by_name = {node.name: node for node in self._session.get_inputs()}
        self._input_names = _order(by_name, input_names)
        self._input_dtypes = [_ONNX_DTYPES.get(by_name[n].type, "float32") for n in self._input_names]
        self.inputs = [tensor_spec(n, by_name[n].shape, dtype)
                       for n, dtype in zip(self._input_names, self._input_dtypes)]
        self.outputs = [tensor_spec(node.name, node.shape, _ONNX_DTYPES.get(node.type, "float32"))
                        for node in self._session.get_outputs()]

    def __call__(self, arrays):
        feeds = {name: as_strings(array) if dtype == "object" else np.asarray(array, dtype=dtype)
                 for name, dtype, array in zip(self._input_names, self._input_dtypes, arrays)}
        return self._session.run(None, feeds)


def open_runner(fmt, path, model):
    """The runner for an artifact of format `fmt` at `path` (Keras files reload in safe mode)."""
    input_names = [tensor.name for tensor in model.inputs]
    if fmt == "keras":
        import keras

        return KerasRunner(keras.saving.load_model(path, safe_mode=True, compile=False))
    if fmt == "savedmodel":
        return SavedModelRunner(path, input_names)
    if fmt == "tflite":
        return TFLiteRunner(path, input_names)
    if fmt == "onnx":
        return OnnxRunner(path, input_names)
    raise ValueError(fmt)
