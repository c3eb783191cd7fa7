"""`zoo export MODEL.keras`: export to SavedModel/TFLite/ONNX, verify each, print a table.

Checks that need no TensorFlow (formats, opset, the file, the output directory) run before it is
imported, so a mistake costs no start-up time.
"""

import json
import os
import sys
import zipfile

from zoo.errors import InvalidParameterError


def add_arguments(parser):
    parser.add_argument("model", help="a .keras file (e.g. best_model.keras)")
    parser.add_argument("--format", default="keras,savedmodel,tflite,onnx",
                        help="comma-separated formats: keras, savedmodel, tflite, onnx (default: all)")
    parser.add_argument("--quantize", default="",
                        help="comma-separated TFLite variants: float16, dynamic, int8")
    parser.add_argument("--data", help="dataset for verification and int8 calibration: a bundled name "
                                       "(digits, iris, ...), a .npz with X and y, or a .csv with --target")
    parser.add_argument("--target", help="label column of a CSV --data")
    parser.add_argument("--opset", type=int, help="ONNX opset (default: tf2onnx's)")
    parser.add_argument("--allow-flex", action="store_true",
                        help="let TFLite use TF Select (Flex) ops instead of refusing the model")
    parser.add_argument("--int8-io", action="store_true", help="int8 inputs/outputs for --quantize int8")
    parser.add_argument("--atol", type=float, default=1e-5, help="float32 parity tolerance (default 1e-5)")
    parser.add_argument("--latency-repeats", type=int, default=20,
                        help="timed calls per batch size for the median latency (0 skips)")
    parser.add_argument("--out", help="output directory (default: export/ beside the model file)")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON")


def main(args):
    from export._options import check_options, check_out_dir

    check_options(args.format, args.quantize, args.opset, has_representative_data=args.data is not None)
    _check_model_file(args.model)
    if args.latency_repeats < 0:
        raise InvalidParameterError(
            f"`--latency-repeats` must be an integer >= 0. Received: --latency-repeats={args.latency_repeats}")
    out_dir = args.out or os.path.join(os.path.dirname(os.path.abspath(args.model)), "export")
    check_out_dir(out_dir)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    model = _load_model(args.model)
    representative = samples = labels = None
    if args.data:
        representative, samples, labels = _load_data(args.data, args.target, model)

    from export.core import export_model

    manifest = export_model(model, out_dir, args.format, quantize=args.quantize,
                            representative_data=representative, samples=samples, labels=labels,
                            opset=args.opset, allow_flex=args.allow_flex, int8_io=args.int8_io,
                            atol=args.atol, latency_repeats=args.latency_repeats)
    if args.json:
        print(json.dumps(manifest.to_dict(), indent=2))
    else:
        _print_table(manifest)
    failed = manifest.failed
    for artifact in failed:
        print(f"error: {artifact.name}: {artifact.error}", file=sys.stderr)
    return 1 if failed else 0


def _check_model_file(path):
    if not os.path.isfile(path):
        raise InvalidParameterError(f"`model` must be an existing .keras file. Received: model={path!r}")
    if not path.endswith(".keras") or not zipfile.is_zipfile(path):
        raise InvalidParameterError(
            f"`model` must be a Keras model file (.keras, saved by `model.save`). Received: model={path!r}"
        )


def _load_model(path):
    import keras

    from zoo.saving import load_keras_model

    model = load_keras_model(path, compile=False)  # exports need no optimizer
    if not isinstance(model, keras.Model) or not getattr(model, "inputs", None):
        raise InvalidParameterError(
            f"`model` must hold a Functional or Sequential Keras model with known inputs. Received: model={path!r}"
        )
    return model


def _load_data(source, target, model):
    """(calibration inputs, verification inputs, labels) from a dataset spec: train and test splits."""
    from zoo.data import load_dataset

    input_shape = tuple(model.inputs[0].shape[1:])
    shape = "image" if source == "digits" and len(input_shape) == 3 else "flat"
    data = load_dataset(source, target=target, shape=shape)
    if len(model.inputs) != 1:
        raise InvalidParameterError(
            f"`--data` feeds single-input models only. Received: a model with {len(model.inputs)} inputs")
    got = tuple(data.X_train.shape[1:])
    if len(got) != len(input_shape) or any(e is not None and e != g for e, g in zip(input_shape, got)):
        raise InvalidParameterError(
            f"`--data` samples must match the model input shape {input_shape}. Received: --data={source!r} "
            f"with samples of shape {got}"
        )
    return data.X_train, data.X_test, data.y_test


def _print_table(manifest):
    rows = [("artifact", "status", "size", "parity", "batch-1 ms", "batch-32 ms")]
    reference = manifest.reference["latency_ms"]
    rows.append(("keras model(x)", "reference", "", "", _ms(reference.get("batch_1")),
                 _ms(reference.get("batch_32"))))
    for artifact in manifest.artifacts:
        latency = artifact.latency_ms or {}
        rows.append((artifact.name, artifact.status, _size(artifact.size_bytes), _parity(artifact.parity),
                     _ms(latency.get("batch_1")), _ms(latency.get("batch_32"))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print(f"manifest: {os.path.join(manifest.out_dir, 'manifest.json')}")


def _ms(value):
    return "" if value is None else f"{value:.3f}"


def _size(value):
    return "" if value is None else f"{value / 1024:.1f} KiB"


def _parity(parity):
    if not parity:
        return ""
    first = parity["outputs"][0]
    text = f"max|err| {first['max_abs_error']:.2g}"
    if first.get("agreement") is not None:
        text += f", agree {first['agreement']:.3f}"
    if first.get("accuracy") is not None:
        text += f", acc {first['accuracy']:.3f} (keras {first['keras_accuracy']:.3f})"
    return text
