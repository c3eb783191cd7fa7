"""The main job, `zoo run`: data → search → retrain the best → evaluate → export, with one tracker
(the search's MLflow parent run) handed to each step."""

import dataclasses
import os

from keras_zoo.config import search_options
from zoo._paths import check_writable_dir


@dataclasses.dataclass
class RunOutcome:
    """What `run` leaves: the search result, the data it ran on, and what each step wrote."""

    result: object
    data: object
    model_path: str
    report: object = None
    manifest: object = None

    @property
    def ok(self):
        return self.manifest is None or self.manifest.ok


def load_data(config):
    """The `zoo.data.Dataset` a config's `data` and `task` describe."""
    from zoo.data import load_dataset

    data = config.data
    if data.series is not None:
        return _load_series(config)
    return load_dataset(data.source, target=data.target, shape=data.shape, task=config.task,
                        test_size=data.test_size, val_size=data.val_size, seed=data.seed,
                        scale=data.scale, columns=data.columns)


def _load_series(config):
    from zoo.data import read_csv
    from zoo.errors import InvalidParameterError
    from zoo.series import dataset_from_series

    data, series = config.data, config.data.series
    if not data.source.lower().endswith(".csv"):
        raise InvalidParameterError(
            f"`data.series` needs a CSV ordered in time. Received: data.source={data.source!r}")
    if config.task not in (None, "regression"):
        raise InvalidParameterError(
            f"`data.series` forecasts a number: `task` must be regression. Received: task={config.task!r}")
    return dataset_from_series(read_csv(data.source), target=series.target, features=series.features,
                               window=series.window, horizon=series.horizon, season=series.season,
                               test_size=data.test_size, val_size=data.val_size,
                               name=os.path.basename(data.source))


def describe_data(data):
    """What the user should see before training: the inferred schema and the notes."""
    lines = []
    if data.schema is not None:
        lines.append(f"schema of {data.name} (target {data.schema.target!r}, task {data.task}):")
        lines += ["  " + line for line in data.schema.describe().splitlines()]
    lines += [f"note: {note}" for note in data.notes if note]
    return "\n".join(lines)


def hypermodel_for(config, data):
    """The `tuning.ZooHyperModel` a config describes for a loaded `Dataset`: the models the
    search trains, the data's preprocessing inside them."""
    from tuning.hypermodel import ZooHyperModel

    model, search = config.model, config.search
    return ZooHyperModel(model.family_names, input_shape=data.feature_shape, compose=data.compose,
                         num_outputs=data.num_outputs, task=data.task, params=model.params,
                         batch_sizes=search.batch_sizes, tune_training=search.tune_training,
                         class_weight=model.class_weight, class_names=data.class_names,
                         transfer=model.transfer)


def check_export(config):
    """Export settings checked before anything runs (no TensorFlow)."""
    if config.export.enabled:
        from export._options import check_options

        check_options(config.export.formats, config.export.quantize, None,
                      has_representative_data=True)


def search_step(config, out_dir, *, verbose=False, runner=None):
    """Load the data and search as the config says; returns `(SearchResult, Dataset)`."""
    from tuning import search

    check_writable_dir(out_dir, "out")
    data = load_data(config)
    described = describe_data(data)
    if described:
        print(described, flush=True)
    options = search_options(config, os.path.join(out_dir, "search"), verbose=verbose)
    return search(data, options, runner=runner), data


def save_best(result, out_dir, data=None):
    """`best_model.keras`: the model on the user's raw data (for a CSV, its raw columns)."""
    path = os.path.join(out_dir, "best_model.keras")
    (data.raw_model(result.best_model) if data is not None else result.best_model).save(path)
    return path


def evaluate_step(result, data, out_dir):
    from evaluation import evaluate_model

    report = evaluate_model(result.best_model, data.X_test, data.y_test, task=data.task,
                            class_names=data.class_names, history=result.history,
                            out_dir=os.path.join(out_dir, "report"),
                            title=f"keras-zoo: {result.family} on {data.name}",
                            allow_missing=data.preprocessor is not None)
    if data.series is not None:  # a forecast is judged against the naive forecasts
        from zoo.series import forecast_baselines

        predictions = result.best_model.predict(data.X_test, verbose=0)
        report.metrics.update(forecast_baselines(data, predictions))
        report.save(os.path.join(out_dir, "report"))
    if result.tracker:
        report.log_to_mlflow(result.run_id, client=result.tracker.client)
    return report


def export_step(config, result, data, out_dir):
    from export import export_model

    folder = os.path.join(out_dir, "export")
    manifest = export_model(result.best_model, folder, formats=config.export.formats,
                            quantize=config.export.quantize,
                            representative_data=data.X_train[:64], samples=data.X_test[:64],
                            labels=data.y_test[:64] if data.task != "regression" else None,
                            preprocessing=preprocessing_description(data))
    if result.tracker:
        result.tracker.client.log_artifacts(result.run_id, folder, "export")
    return manifest


def preprocessing_description(data):
    """What a deployment must know beside an exported artifact: the label vocabulary and, for a
    CSV, how raw columns become the codes matrix the artifact takes (vocabularies, date formats)."""
    description = {"class_names": data.class_names, "task": data.task,
                   "inputs": "codes" if data.schema is not None else "raw"}
    if data.schema is not None:
        description["tabular"] = data.preprocessor.to_dict()
    return description


def run(config, out_dir, *, verbose=False):
    """search → retrain best → `best_model.keras` → report/ → export/ (each step as configured).

    Prints one line per trial and, at the end, what the user came for (`summary`); returns a
    `RunOutcome` (`ok` is False when an exported artifact failed verification)."""
    check_export(config)
    result, data = search_step(config, out_dir, verbose=verbose)
    outcome = RunOutcome(result=result, data=data, model_path=save_best(result, out_dir, data))
    if config.evaluate.enabled:
        outcome.report = evaluate_step(result, data, out_dir)
    if config.export.enabled:
        outcome.manifest = export_step(config, result, data, out_dir)
    print(summary(outcome, config, out_dir), flush=True)
    return outcome


# the report's headline metrics, in this order, when present; the rest stay in report.json
HEADLINE_METRICS = ("accuracy_score", "balanced_accuracy_score", "f1_score", "f1_score_macro",
                    "roc_auc_score", "roc_auc_score_ovr_macro", "log_loss", "r2_score",
                    "mean_absolute_error", "root_mean_squared_error", "mase", "naive_mase")


def summary(outcome, config, out_dir):
    """The end of `zoo run`: the test metrics, the MLflow run and how to open it, the paths."""
    result, data = outcome.result, outcome.data
    lines = [f"best {result.objective}={result.best_score:.4f} ({result.family}, on the validation split)"]
    if outcome.report is not None:
        metrics = outcome.report.metrics
        shown = [k for k in HEADLINE_METRICS if metrics.get(k) is not None] or list(metrics)[:6]
        width = max(len(k) for k in shown) if shown else 0
        lines.append(f"test metrics ({len(data.y_test)} held-out rows of {data.name}; all "
                     f"{len(metrics)} in report.json):")
        lines += [f"  {k:<{width}}  {metrics[k]:.4f}" for k in shown]
    lines += _tracking_lines(result, config)
    written = [(outcome.model_path, "the best model, on raw inputs")]
    if outcome.report is not None:
        written.append((os.path.join(out_dir, "report", "report.html"),
                        "test report (report.json, PNG plots)"))
    if outcome.manifest is not None:
        verified = "all verified" if outcome.manifest.ok else "some FAILED verification"
        written.append((os.path.join(out_dir, "export", "manifest.json"),
                        f"exports ({', '.join(config.export.formats)}): {verified}"))
    width = max(len(path) for path, _ in written)
    lines.append("written:")
    lines += [f"  {path:<{width}}  {what}" for path, what in written]
    if outcome.manifest is None:
        lines.append("  (no export/: set `export.enabled: true` in the config to export and verify "
                     "SavedModel, TFLite and ONNX)")
    return "\n".join(lines)


# MLflow 3.17's UI picks its GenAI or its model-training pages from this query parameter (else from
# the browser's last choice, GenAI at first); the experiment's `mlflow.experimentKind` tag says the same
UI_WORKFLOW = "workflowType=machine_learning"


def _tracking_lines(result, config):
    if not config.tracking.enabled or result.tracker is None:
        return ["MLflow: not tracked (`tracking.enabled: false`)"]
    tracker, uri = result.tracker, result.tracking_uri
    if tracker.offline:
        journal = os.path.join(result.directory, "tracking_journal.jsonl")
        return [(f"MLflow: {uri} stopped answering; the run is kept in {journal}: replay it with "
                 f"`zoo tracking sync {result.directory}`")]
    page = f"#/experiments/{tracker.experiment_id}/runs/{result.run_id}?{UI_WORKFLOW}"
    lines = [f"MLflow: run {result.run_id} in experiment '{config.tracking.experiment}' ({uri})"]
    if uri.startswith(("http://", "https://")):
        return lines + [f"  open {uri.rstrip('/')}/{page}"]
    return lines + [f"  look at it: mlflow ui --backend-store-uri {uri}",
                    f"          or: zoo tracking-server --backend-store {uri}",
                    f"  then open http://127.0.0.1:5000/{page}"]
