"""`zoo predict MODEL_OR_RUN_DIR DATA.csv --out PREDICTIONS.csv [--format F]`: raw rows in, one
prediction row out per input row, in the user's own labels or units; for a series run, the CSV is
the history and the forecasts are for the `horizon` steps after it (`--all-windows`: one forecast
per window of it, for backtesting); for a run on images, DATA is an image file, a folder of them or
a CSV of their paths, and each row is `path,prediction,probability_<class>...`."""

import os

from export._options import FORMATS
from zoo.errors import InvalidParameterError


def add_arguments(parser):
    parser.add_argument("model", help="best_model.keras, or a `zoo run` output folder")
    parser.add_argument("data", help="a CSV of raw rows (a target column, if present, is ignored); "
                                     "for a model on images, image files, a folder or a CSV of paths")
    parser.add_argument("--out", required=True, help="the predictions CSV to write")
    parser.add_argument("--format", default="keras", choices=FORMATS,
                        help="run this artifact in its own runtime (default: keras)")
    parser.add_argument("--target", help="the target column to ignore, if the CSV has one")
    parser.add_argument("--all-windows", action="store_true",
                        help="a series model: one forecast per window of the history (backtesting), "
                             "not only the next `horizon` steps")


def main(args):
    from keras_zoo.predict import read_series_spec, resolve
    from zoo._paths import check_writable_dir

    out = os.path.abspath(args.out)
    if os.path.isdir(out):
        raise InvalidParameterError(f"`--out` must be a file path, not a folder. Received: --out={args.out!r}")
    check_writable_dir(os.path.dirname(out), "out")
    path, manifest = resolve(args.model, args.format)
    spec = read_series_spec(args.model)
    if spec is None and args.all_windows:
        raise InvalidParameterError(
            f"`--all-windows` backtests a forecasting model (a `zoo run` with `data.series`, whose "
            f"folder holds series.json); this model is not one. Received: model={args.model!r}")
    table, note = (_forecast if spec is not None else _predict)(args, path, manifest, spec)
    temp = out + ".tmp"
    table.to_csv(temp, index=False)
    os.replace(temp, out)
    print(f"wrote {len(table)} {'forecasts' if spec else 'predictions'} to {args.out} ({args.format}){note}")
    return 0


def _predict(args, path, manifest, spec):
    from keras_zoo.predict import Predictor, image_input, image_predictions, prediction_frame, read_rows

    predictor = Predictor(path, args.format, manifest)
    if image_input(predictor) is not None:  # a run on images: files, a folder or a CSV of paths
        return image_predictions(predictor, args.data)
    frame = read_rows(args.data, args.target or _target_of(manifest))
    outputs, unseen = predictor.predict(frame)
    seen = f"; {unseen} row(s) had a category unseen in training (its out-of-vocabulary slot)" if unseen else ""
    return prediction_frame(outputs, predictor.class_names), seen


def _forecast(args, path, manifest, spec):
    from keras_zoo.predict import Predictor, forecast_frame, read_rows, series_windows

    frame = read_rows(args.data)  # the target is usually a feature too
    series_windows(frame, spec, all_windows=args.all_windows)  # a history too short, before loading
    table = forecast_frame(Predictor(path, args.format, manifest), frame, spec, all_windows=args.all_windows)
    if args.all_windows or len(table) == spec["horizon"]:
        return table, ""
    return table, (f"; a history of {len(frame)} rows gives the last {len(table)} of the "
                   f"{spec['horizon']} steps ({spec['window'] + spec['horizon'] - 1} rows give all)")


def _target_of(manifest):
    tabular = ((manifest or {}).get("preprocessing") or {}).get("tabular") or {}
    return (tabular.get("schema") or {}).get("target")
