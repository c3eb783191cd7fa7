"""Sample inputs, parity against Keras (errors, agreement, accuracy) and median latency."""

import time

import numpy as np

from export.runtimes import as_strings
from zoo.errors import InvalidParameterError, InvalidTypeError

GENERATED_SAMPLES = 32
MAX_SAMPLES = 1024
CALIBRATION_SAMPLES = 200


def as_input_arrays(data, model, field):
    """Normalize an array, a list of arrays or a dict by input name to a list in input order."""
    inputs = model.inputs
    if isinstance(data, dict):
        names = [tensor.name for tensor in inputs]
        missing = [name for name in names if name not in data]
        if missing:
            raise InvalidParameterError(
                f"`{field}` must hold an array for each model input ({', '.join(names)}). "
                f"Received: keys {sorted(data)}"
            )
        arrays = [data[name] for name in names]
    elif isinstance(data, (list, tuple)) and len(inputs) > 1:
        arrays = list(data)
    else:
        arrays = [data]
    if len(arrays) != len(inputs):
        raise InvalidParameterError(
            f"`{field}` must hold {len(inputs)} arrays, one per model input. Received: {len(arrays)}"
        )
    result = []
    for tensor, array in zip(inputs, arrays):
        try:
            array = np.asarray(array)
        except (TypeError, ValueError):
            raise InvalidTypeError(f"`{field}` must be numeric arrays. Received: {type(array).__name__}") from None
        if str(tensor.dtype) == "string":
            if array.dtype.kind not in "OSU":
                raise InvalidTypeError(
                    f"`{field}` must hold strings for input '{tensor.name}'. Received: dtype {array.dtype}")
            array = as_strings(array)
        expected = tuple(tensor.shape[1:])
        if array.ndim != len(expected) + 1 or any(
                e is not None and e != a for e, a in zip(expected, array.shape[1:])):
            shape = ", ".join("any" if d is None else str(d) for d in expected)
            raise InvalidParameterError(
                f"`{field}` must have shape (samples, {shape}) for input '{tensor.name}'. "
                f"Received: {field} with shape {array.shape}"
            )
        if str(tensor.dtype) == "string":
            result.append(array)
            continue
        if not np.issubdtype(array.dtype, np.number):
            raise InvalidTypeError(f"`{field}` must be numeric. Received: dtype {array.dtype}")
        result.append(array.astype(tensor.dtype, copy=False))
    counts = {len(array) for array in result}
    if len(counts) != 1 or 0 in counts:
        raise InvalidParameterError(
            f"`{field}` arrays must hold the same number of samples, at least one. Received: {sorted(counts)}"
        )
    return result


def generated_inputs(model, count=GENERATED_SAMPLES, seed=0):
    """Inputs drawn from the input spec: normal floats; integer ids below the embedding size;
    strings from a few words and the empty string."""
    import keras

    rng = np.random.default_rng(seed)
    vocab = [layer.input_dim for layer in model.layers if isinstance(layer, keras.layers.Embedding)]
    arrays = []
    for tensor in model.inputs:
        shape = (count,) + tuple(12 if d is None else d for d in tensor.shape[1:])
        if str(tensor.dtype) == "string":
            arrays.append(rng.choice(np.array(["", "a", "b", "c"], dtype=object), size=shape))
        elif np.issubdtype(np.dtype(tensor.dtype), np.integer):
            arrays.append(rng.integers(0, min(vocab) if vocab else 2, size=shape).astype(tensor.dtype))
        else:
            arrays.append(rng.normal(size=shape).astype(tensor.dtype))
    return arrays


def take(arrays, count):
    """The first `count` samples, tiling when there are fewer."""
    total = len(arrays[0])
    index = np.arange(count) % total
    return [array[index] for array in arrays]


def calibration_feed(arrays, input_names):
    """A representative-dataset callable for the TFLite converter: one sample per step."""
    count = min(len(arrays[0]), CALIBRATION_SAMPLES)

    def generator():
        for i in range(count):
            yield {name: array[i:i + 1].astype("float32") if np.issubdtype(array.dtype, np.floating)
                   else array[i:i + 1] for name, array in zip(input_names, arrays)}

    return generator


def output_kinds(model):
    """'softmax', 'sigmoid' or 'values' for each output, from the layer producing it."""
    return [_output_kind(tensor) for tensor in model.outputs]


# identity layers a model may end with (the stored label vocabulary): look through them
_PASS_THROUGH = ("ClassNames",)


def _output_kind(tensor):
    """The activation producing `tensor`, looking into nested models and through identity layers."""
    import keras

    for _ in range(16):
        history = getattr(tensor, "_keras_history", None)
        if not history:
            return "values"
        layer, node_index, tensor_index = history
        if isinstance(layer, keras.Model) and getattr(layer, "outputs", None):
            tensor = layer.outputs[tensor_index]  # a nested model: its own output
            continue
        if type(layer).__name__ in _PASS_THROUGH:
            tensor = layer._inbound_nodes[node_index].input_tensors[0]
            continue
        activation = getattr(getattr(layer, "activation", None), "__name__", "")
        return activation if activation in ("softmax", "sigmoid") else "values"
    return "values"


def predicted_classes(output, kind):
    if kind == "softmax":
        return np.argmax(output, axis=-1)
    if kind == "sigmoid":
        return (output > 0.5).astype("int64")
    return None


def accuracy(output, kind, labels):
    """Accuracy on the labelled rows: the first len(labels) (rows added after them, such as a table
    model's unseen and missing categories, have none)."""
    if labels is None or kind == "values":
        return None
    labels = np.asarray(labels)
    classes = predicted_classes(np.asarray(output)[:len(labels)], kind)
    labels = labels.reshape(classes.shape)
    return float(np.mean(classes == labels))


def compare(reference, candidate, *, kinds, labels=None, quantized=False, atol=1e-5, rtol=1e-5,
            min_agreement=0.9, quantized_rtol=0.1):
    """Parity of one artifact's outputs with Keras's.

    float32 artifacts pass when every output is within `atol + rtol·|keras|` (np.allclose);
    quantized ones, whose errors are expected, pass when their predicted classes agree with
    Keras's on at least `min_agreement` of the samples (classification outputs) or their max
    error is within `quantized_rtol` of the largest Keras output (other outputs).
    """
    results = []
    passed = True
    for index, (ref, out, kind) in enumerate(zip(reference, candidate, kinds)):
        out = np.asarray(out, dtype="float64").reshape(ref.shape)
        ref = np.asarray(ref, dtype="float64")
        error = np.abs(out - ref)
        finite = bool(np.all(np.isfinite(out)))
        entry = {
            "output": index,
            "max_abs_error": float(error.max()) if error.size else 0.0,
            "max_rel_error": float((error / np.maximum(np.abs(ref), 1e-12)).max()) if error.size else 0.0,
            "agreement": None,
            "accuracy": accuracy(out, kind, labels),
            "keras_accuracy": accuracy(ref, kind, labels),
        }
        ref_classes = predicted_classes(ref, kind)
        if ref_classes is not None:
            entry["agreement"] = float(np.mean(predicted_classes(out, kind) == ref_classes))
        if not quantized:
            ok = finite and bool(np.all(error <= atol + rtol * np.abs(ref)))
        elif entry["agreement"] is not None:
            ok = finite and entry["agreement"] >= min_agreement
        else:
            ok = finite and entry["max_abs_error"] <= quantized_rtol * max(float(np.abs(ref).max()), 1e-12)
        entry["passed"] = ok
        passed = passed and ok
        results.append(entry)
    if quantized:
        criterion = (f"quantized: class agreement with Keras >= {min_agreement} (classification outputs), "
                     f"max abs error <= {quantized_rtol} x max |Keras output| (others)")
    else:
        criterion = f"|artifact - keras| <= {atol} + {rtol} x |keras| for every value"
    return {"passed": passed, "criterion": criterion, "samples": int(len(reference[0])),
            "outputs": results}


def median_latency_ms(runner, arrays, repeats):
    """Median wall time of one call, after two warm-up calls."""
    for _ in range(2):
        runner(arrays)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner(arrays)
        times.append(time.perf_counter() - start)
    return round(float(np.median(times)) * 1000.0, 4)


def latency(runner, samples, repeats, batch_sizes=(1, 32)):
    """{'batch_1': ms, 'batch_32': ms}; empty when `repeats` is 0."""
    if not repeats:
        return {}
    return {f"batch_{size}": median_latency_ms(runner, take(samples, size), repeats)
            for size in batch_sizes}
