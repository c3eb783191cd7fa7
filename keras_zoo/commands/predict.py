"""`zoo predict MODEL_OR_RUN_DIR DATA.csv --out PREDICTIONS.csv [--format F]`: raw rows in, one
prediction row out per input row, in the user's own labels or units."""

import os

from export._options import FORMATS
from zoo.errors import InvalidParameterError


def add_arguments(parser):
    parser.add_argument("model", help="best_model.keras, or a `zoo run` output folder")
    parser.add_argument("data", help="a CSV of raw rows (a target column, if present, is ignored)")
    parser.add_argument("--out", required=True, help="the predictions CSV to write")
    parser.add_argument("--format", default="keras", choices=FORMATS,
                        help="run this artifact in its own runtime (default: keras)")
    parser.add_argument("--target", help="the target column to ignore, if the CSV has one")


def main(args):
    from keras_zoo.predict import Predictor, prediction_frame, read_rows, resolve
    from zoo._paths import check_writable_dir

    out = os.path.abspath(args.out)
    if os.path.isdir(out):
        raise InvalidParameterError(f"`--out` must be a file path, not a folder. Received: --out={args.out!r}")
    check_writable_dir(os.path.dirname(out), "out")
    path, manifest = resolve(args.model, args.format)
    frame = read_rows(args.data, args.target or _target_of(manifest))
    predictor = Predictor(path, args.format, manifest)
    outputs, unseen = predictor.predict(frame)
    table = prediction_frame(outputs, predictor.class_names)
    temp = out + ".tmp"
    table.to_csv(temp, index=False)
    os.replace(temp, out)
    seen = f"; {unseen} row(s) had a category unseen in training (its out-of-vocabulary slot)" if unseen else ""
    print(f"wrote {len(table)} predictions to {args.out} ({args.format}){seen}")
    return 0


def _target_of(manifest):
    tabular = ((manifest or {}).get("preprocessing") or {}).get("tabular") or {}
    return (tabular.get("schema") or {}).get("target")
