"""`zoo evaluate MODEL.keras --data SPEC [--out DIR]`: evaluate a saved model on a dataset split.

Importing this module imports nothing heavy; Keras, TensorFlow and scikit-learn load in `main`.
"""

import os

from zoo.errors import InvalidParameterError
from zoo.tasks import CLASSIFICATION_TASKS, SUPERVISED_TASKS

SPLITS = ("test", "val", "train")


def add_arguments(parser):
    parser.add_argument("model", help="a saved Keras model (.keras)")
    parser.add_argument("--data", required=True,
                        help="dataset: digits, iris, wine, breast_cancer, diabetes, or a .npz/.csv path")
    parser.add_argument("--target", help="label column of a CSV dataset")
    parser.add_argument("--task", choices=(*SUPERVISED_TASKS, "reconstruction"),
                        help="default: the dataset's task; 'reconstruction' for autoencoders")
    parser.add_argument("--split", choices=SPLITS, default="test",
                        help="which split of the seeded train/val/test split to evaluate (default: test)")
    parser.add_argument("--seed", type=int, default=0, help="split seed, as used for training (default: 0)")
    parser.add_argument("--test-size", type=float, default=0.2, help="test fraction, as used for training")
    parser.add_argument("--val-size", type=float, default=0.1, help="validation fraction, as used for training")
    parser.add_argument("--out", default="report", help="folder for report.json, report.html and PNGs (default: report)")
    parser.add_argument("--run-id", help="log metrics and the report to this MLflow run")
    parser.add_argument("--experiment", help="log to a new MLflow run in this experiment")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or MLflow's default)")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")


def load_model(path):
    """A `.keras` file loaded with `safe_mode=True`; a missing or unreadable file is bad input."""
    from zoo.saving import load_keras_model

    return load_keras_model(str(path), compile=False)  # predictions need no optimizer


def _input_rank(model):
    inputs = getattr(model, "inputs", None)
    return len(inputs[0].shape) - 1 if inputs and len(inputs) == 1 else None


def main(args):
    import json

    from zoo.data import load_dataset

    for option in ("test_size", "val_size"):
        if not 0.0 <= getattr(args, option) < 1.0:
            flag = option.replace("_", "-")
            raise InvalidParameterError(f"`--{flag}` must be a float in [0, 1). Received: {flag}={getattr(args, option)}")
    if args.run_id and args.experiment:
        raise InvalidParameterError(
            f"`--run-id` and `--experiment` are exclusive: log to one run. Received: run-id={args.run_id!r}, "
            f"experiment={args.experiment!r}"
        )
    supervised_task = None if args.task == "reconstruction" else args.task
    options = {"target": args.target, "task": supervised_task, "seed": args.seed, "test_size": args.test_size,
               "val_size": args.val_size}
    # data mistakes are reported before the slow TensorFlow import that loading the model needs
    data = load_dataset(args.data, **options)
    model = load_model(args.model)
    if len(getattr(model, "inputs", None) or []) > 1:
        names = ", ".join(f"'{tensor.name}'" for tensor in model.inputs)
        raise InvalidParameterError(
            f"`model` takes {len(model.inputs)} inputs ({names}) and `--data` gives one array; "
            f"evaluate it from Python with `evaluation.evaluate_model(model, [...], y)`. "
            f"Received: model={args.model!r}")
    if args.data == "digits" and _input_rank(model) == 3:  # the one bundled dataset with an image shape
        data = load_dataset(args.data, shape="image", **options)
    X, y = getattr(data, f"X_{args.split}"), getattr(data, f"y_{args.split}")
    if len(X) == 0:
        raise InvalidParameterError(f"`--split` {args.split!r} of {args.data!r} is empty. Received: split={args.split!r}")

    import evaluation

    task = args.task or data.task
    report = evaluation.evaluate_model(
        model, X, None if task == "reconstruction" else y, task=task,
        class_names=data.class_names if task in CLASSIFICATION_TASKS else None,
        title=f"{os.path.basename(args.model)} on {args.data} ({args.split})")
    report.meta.update({"model_file": os.path.abspath(args.model), "data": args.data, "split": args.split,
                        "seed": args.seed})
    paths = report.save(args.out)

    run_id = args.run_id
    if args.experiment:
        run_id = _new_run(args.experiment, args.tracking_uri, name=f"evaluate {os.path.basename(args.model)}")
    if run_id:
        _log(report, run_id, args.tracking_uri, finish=bool(args.experiment))

    if args.json:
        print(json.dumps({"metrics": report.to_dict()["metrics"], "report": paths["html"], "run_id": run_id}, indent=2))
        return 0
    width = max(len(k) for k in report.metrics)
    for name, value in report.metrics.items():
        print(f"{name:<{width}}  {'—' if value is None else f'{value:.4f}'}")
    print(f"\nwrote {paths['json']}, {paths['html']} and {len(report.plots)} plots")
    if run_id:
        print(f"logged to MLflow run {run_id}")
    return 0


def _new_run(experiment, tracking_uri, *, name):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    return client.create_run(experiment_id, run_name=name).info.run_id


def _log(report, run_id, tracking_uri, *, finish):
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        report.log_to_mlflow(run_id, tracking_uri=tracking_uri)
        if finish:
            MlflowClient(tracking_uri).set_terminated(run_id)
    except MlflowException as error:
        first = str(error.message).strip().splitlines()[0]
        raise InvalidParameterError(f"`--run-id` could not be logged to ({first}). Received: run-id={run_id!r}") from None
