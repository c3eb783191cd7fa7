"""Figure 4: exported inference for every catalog model, ONNX Runtime and LiteRT (TFLite) vs
Keras `model(x)` and `model.predict`, batch 1 and 32, with the parity error of each artifact.

Each model (or each Functional part of a subclassed one) is exported with `export.export_model`
to ONNX and TFLite. Then, per batch size, the runners are timed in rounds of blocks, the order
rotating each round, and the median call is reported:

- Keras `model(x, training=False)` and `model.predict(x, verbose=0)`;
- the raw runtime calls: `InferenceSession.run(None, feeds)` and the LiteRT signature runner
  called with ready feeds;
- our wrappers around them, `export.runtimes.OnnxRunner` / `TFLiteRunner` (what parity checks
  and the manifest's latency use), called with a list of arrays.

    python benchmarks/inference_latency.py [--quick] [--json PATH]
"""

import os
import shutil
import tempfile
import time

import _common  # noqa: F401
from _common import figure, median

COMMAND = "python benchmarks/inference_latency.py"
DIGITS_CNN = "cnn"


def sizes(quick):
    if quick:
        return {"models": ["cnn"], "rounds": 2, "fast_calls": 10, "slow_calls": 1}
    return {"models": None, "rounds": 7, "fast_calls": 100, "slow_calls": 5}


def build(name):
    import zoo

    spec = zoo.get_spec(name)
    if name == DIGITS_CNN:  # the digits CNN: 8x8x1 images, 10 classes
        return zoo.create_model("cnn", input_shape=(8, 8, 1), num_outputs=10)
    num_outputs = 3 if spec.default_task == "multiclass" else None
    return zoo.create_model(name, input_shape=spec.example_input_shape, num_outputs=num_outputs)


def samples_for(name, part):
    from export import verify

    if name == DIGITS_CNN:
        from zoo.data import load_dataset

        data = load_dataset("digits", shape="image", seed=0)
        return [data.X_test[:32]]
    return verify.generated_inputs(part)


def time_calls(call, count):
    times = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def runners_for(part, onnx_path, tflite_path, arrays):
    """name -> (zero-argument callable, slow?) for one batch of `arrays`."""
    import numpy as np

    from export.runtimes import OnnxRunner, TFLiteRunner

    x = arrays[0] if len(arrays) == 1 else list(arrays)
    calls = {
        "keras_call": (lambda: part(x, training=False), True),
        "keras_predict": (lambda: part.predict(x, verbose=0), True),
    }
    if onnx_path:
        onnx = OnnxRunner(onnx_path, [t.name for t in part.inputs])
        session = onnx._session
        feeds = {name: np.asarray(array, dtype=dtype) for name, dtype, array in
                 zip(onnx._input_names, onnx._input_dtypes, arrays)}
        calls["onnx_raw"] = (lambda: session.run(None, feeds), False)
        calls["onnx_wrapper"] = (lambda: onnx(arrays), False)
    if tflite_path:
        lite = TFLiteRunner(tflite_path, [t.name for t in part.inputs])
        signature = lite._runner
        lite_feeds = {name: array.astype(np.dtype(detail["dtype"]), copy=False) for name, detail, array
                      in zip(lite._input_names, lite._input_details, arrays)}
        calls["tflite_raw"] = (lambda: signature(**lite_feeds), False)
        calls["tflite_wrapper"] = (lambda: lite(arrays), False)
    return calls


def measure(calls, size):
    samples = {name: [] for name in calls}
    names = list(calls)
    for name, (call, _slow) in calls.items():  # warm-up: first calls trace/allocate
        time_calls(call, 3)
    for round_index in range(size["rounds"]):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            call, slow = calls[name]
            samples[name] += time_calls(call, size["slow_calls"] if slow else size["fast_calls"])
    return {name: median(values) * 1e3 for name, values in samples.items()}  # ms


def run(quick=False):
    import zoo
    from export import export_model, verify

    size = sizes(quick)
    names = size["models"] or zoo.list_models()
    work = tempfile.mkdtemp(prefix="bench-latency-")
    rows, failures = [], []
    try:
        for name in names:
            model = build(name)
            out = os.path.join(work, name)
            result = export_model(model, out, ("tflite", "onnx"), latency_repeats=0)
            manifests = result if isinstance(result, dict) else {None: result}
            from export.parts import exportable_parts

            parts = dict(exportable_parts(model))
            for part_name, manifest in manifests.items():
                part = parts[part_name]
                label = name if part_name is None else f"{name}.{part_name}"
                paths, parity = {}, {}
                for fmt in ("onnx", "tflite"):
                    artifact = manifest[fmt]
                    if artifact.status == "ok":
                        paths[fmt] = manifest.path_of(fmt)
                        parity[fmt] = max(o["max_abs_error"] for o in artifact.parity["outputs"])
                    else:
                        failures.append(f"{label} {fmt}: {artifact.error}")
                arrays = samples_for(name, part)
                for batch in (1, 32):
                    batch_arrays = verify.take(arrays, batch)
                    calls = runners_for(part, paths.get("onnx"), paths.get("tflite"), batch_arrays)
                    ms = measure(calls, size)
                    rows.append({"model": label, "batch": batch, "ms": ms, "parity": parity})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return record(rows, failures, size)


def _us(value):
    return "n/a" if value is None else f"{value * 1e3:.0f}"


def record(rows, failures, size):
    table = [["model", "batch", "model(x) ms", "predict ms", "ORT raw µs", "ORT ours µs",
              "TFLite raw µs", "TFLite ours µs", "model(x)/ORT", "model(x)/TFLite",
              "max err ONNX", "max err TFLite"]]
    wrapper_ratios = []
    for row in rows:
        ms = row["ms"]
        for runtime in ("onnx", "tflite"):
            if f"{runtime}_raw" in ms:
                wrapper_ratios.append((ms[f"{runtime}_wrapper"] / ms[f"{runtime}_raw"], row["model"],
                                       row["batch"], runtime))
        table.append([
            row["model"], str(row["batch"]), f"{ms['keras_call']:.2f}", f"{ms['keras_predict']:.1f}",
            _us(ms.get("onnx_raw")), _us(ms.get("onnx_wrapper")), _us(ms.get("tflite_raw")),
            _us(ms.get("tflite_wrapper")),
            f"{ms['keras_call'] / ms['onnx_raw']:.0f}x" if "onnx_raw" in ms else "n/a",
            f"{ms['keras_call'] / ms['tflite_raw']:.0f}x" if "tflite_raw" in ms else "n/a",
            f"{row['parity'].get('onnx', float('nan')):.1e}",
            f"{row['parity'].get('tflite', float('nan')):.1e}"])
    cnn = next(r for r in rows if r["model"] == DIGITS_CNN and r["batch"] == 1)["ms"]
    speedups = {rt: cnn["keras_call"] / cnn[f"{rt}_raw"] for rt in ("onnx", "tflite")
                if f"{rt}_raw" in cnn}
    wrapped = {rt: cnn["keras_call"] / cnn[f"{rt}_wrapper"] for rt in ("onnx", "tflite")
               if f"{rt}_wrapper" in cnn}
    worst = max(wrapper_ratios) if wrapper_ratios else (float("nan"), None, None, None)
    speedup = min(speedups.values())
    passed = speedup >= 100 and worst[0] <= 1.10 and not failures
    notes = [
        f"digits CNN at batch 1: model(x) {cnn['keras_call']:.2f} ms; "
        + ", ".join(f"{rt} raw {speedups[rt]:.0f}x / through our runner {wrapped[rt]:.0f}x"
                    for rt in speedups),
        f"worst wrapper overhead: {worst[0]:.3f}x of the raw call ({worst[3]}, {worst[1]}, "
        f"batch {worst[2]}); target <= 1.10",
        f"medians of {size['rounds']} rotating rounds: {size['fast_calls']} calls per block for the "
        f"runtimes, {size['slow_calls']} for Keras",
    ] + [f"export failed: {f}" for f in failures]
    return figure(
        4, "Exported inference: ONNX Runtime / TFLite vs Keras, every catalog model",
        metric="digits CNN batch-1 speedup over model(x) (slower of ORT/TFLite)",
        value=round(speedup, 1), unit="x", target=">= 100x; wrapper <= 1.10x raw",
        passed=passed, table=table,
        details={"rows": rows, "speedups": speedups, "through_wrapper": wrapped,
                 "worst_wrapper_ratio": worst[0],
                 "wrapper_ratios": [list(w) for w in wrapper_ratios], "failures": failures},
        notes=notes, command=COMMAND)


if __name__ == "__main__":
    _common.run_script(run)
