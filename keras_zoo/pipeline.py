"""The main job, `zoo run`: data → search → retrain the best → evaluate → export, with one tracker
(the search's MLflow parent run) handed to each step."""

import dataclasses
import math
import os

from zoo._paths import check_writable_dir


@dataclasses.dataclass
class RunOutcome:
    """What `run` leaves: the search result, the data it ran on, and what each step wrote."""

    result: object
    data: object
    model_path: str
    report: object = None
    manifest: object = None
    front: list = None  # with export.front: each Pareto-front member's export (front/front.json)

    @property
    def ok(self):
        exported = self.manifest is None or self.manifest.ok
        return exported and all(member["ok"] for member in self.front or ())


def load_data(config):
    """The `zoo.data.Dataset` a config's `data` and `task` describe."""
    from zoo.data import load_dataset

    data = config.data
    if data.series is not None:
        return _load_series(config)
    return load_dataset(data.source, target=data.target, shape=data.shape, task=config.task,
                        test_size=data.test_size, val_size=data.val_size, seed=data.seed,
                        scale=data.scale, columns=data.columns, image_size=data.image_size)


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
    from tuning.space import families_for

    model, search = config.model, config.search
    return ZooHyperModel(model.family_names or families_for(data), input_shape=data.feature_shape,
                         compose=data.compose, num_outputs=data.num_outputs, task=data.task,
                         params=model.params, batch_sizes=search.batch_sizes,
                         tune_training=search.tune_training, class_weight=model.class_weight,
                         class_names=data.class_names, transfer=model.transfer)


def check_export(config):
    """Export settings checked before anything runs (no TensorFlow)."""
    if config.export.front and not config.search.objectives:
        from zoo.errors import InvalidParameterError

        raise InvalidParameterError(
            "`export.front` exports every member of the Pareto front: it needs `search.objectives`. "
            "Received: export.front=True")
    if config.export.enabled:
        from export._options import check_options

        check_options(config.export.formats, config.export.quantize, None,
                      has_representative_data=True)


def fit_step(config, out_dir, *, verbose=False, runner=None):
    """Load the data and fit the `AutoModel` the config describes on it (its search in
    `out_dir/search`, resumed when that holds this config's search); returns the fitted model."""
    from keras_zoo.automodel import AutoModel

    check_writable_dir(out_dir, "out")
    data = load_data(config)
    described = describe_data(data)
    if described:
        print(described, flush=True)
    model = AutoModel.from_config(config, directory=os.path.join(out_dir, "search"),
                                  verbose=2 if verbose else 1)
    model._search(data, model._options(), runner=runner)
    return model


def search_step(config, out_dir, *, verbose=False, runner=None):
    """`fit_step`'s search result and data: `(SearchResult, Dataset)`."""
    model = fit_step(config, out_dir, verbose=verbose, runner=runner)
    return model.search_result_, model.data_


def save_best(result, out_dir, data=None, config=None):
    """`best_model.keras`: the model on the user's raw data (for a CSV, its raw columns); for a
    series, `series.json` beside it (what `zoo predict` needs to forecast from a history)."""
    path = os.path.join(out_dir, "best_model.keras")
    (data.raw_model(result.best_model) if data is not None else result.best_model).save(path)
    if data is not None and data.series is not None and config is not None:
        from keras_zoo.predict import write_series_spec
        from zoo.data import read_csv

        write_series_spec(out_dir, data, target=config.data.series.target,
                          frame=read_csv(config.data.source))
    return path


def evaluate_step(result, data, out_dir):
    """The test report (report/), with the simplest strong baseline beside the model."""
    from evaluation import evaluate_model
    from evaluation.baseline import score_baseline

    report = evaluate_model(result.best_model, data.X_test, data.y_test, task=data.task,
                            class_names=data.class_names, history=result.history,
                            title=f"keras-zoo: {result.family} on {data.name}",
                            allow_missing=data.preprocessor is not None)
    if data.series is not None:  # a forecast is judged against the naive forecasts
        from zoo.series import forecast_baselines

        predictions = result.best_model.predict(data.X_test, verbose=0)
        report.metrics.update(forecast_baselines(data, predictions))
    if result.front is not None:  # a search with several objectives: its front beside the metrics
        report.tables["pareto_front"] = result.front
        report.plots["pareto_front"] = result.front_plot
    baseline = score_baseline(data)
    if baseline is not None:
        report.baseline = baseline.against(report.metrics.get(baseline.metric))
    report.save(os.path.join(out_dir, "report"))
    if result.tracker:
        result.tracker.log_report(result.run_id, report)
    return report


def export_step(config, result, data, out_dir):
    folder = os.path.join(out_dir, "export")
    manifest = _export(config, result.best_model, data, folder, result.costs)
    if result.tracker:
        result.tracker.log_artifacts(result.run_id, folder, "export")
    return manifest


def _export(config, model, data, folder, costs):
    manifest = export_artifacts(model, data, folder, formats=config.export.formats,
                                quantize=config.export.quantize, samples=data.X_test[:64],
                                labels=data.y_test[:64] if data.task != "regression" else None)
    if costs:
        manifest.deployment = deployment_agreement(costs, manifest)
        manifest.write()
    return manifest


def export_artifacts(model, data, folder, *, formats, quantize, samples, labels=None):
    """The verified exports of a model trained on `data` (`zoo run`'s and `AutoModel.export`)."""
    from export import export_model

    return export_model(model, folder, formats=formats, quantize=quantize,
                        representative_data=data.X_train[:64], samples=samples, labels=labels,
                        preprocessing=preprocessing_description(data))


# how closely the exported float32 TFLite file must match the search's figures for its trial: the
# same architecture converted the same way gives the same size (the weights' values differ, not
# their number); latency is a median of tens of microseconds on a shared machine
SIZE_TOLERANCE = 0.02  # relative
LATENCY_TOLERANCE = (0.5, 0.05)  # relative, or absolute in ms, whichever is larger


def deployment_agreement(costs, manifest):
    """The search's costs for the exported model beside the export's own measurements of its
    float32 TFLite file, and whether they agree within the stated tolerances."""
    record = {"search": {k: v for k, v in costs.items() if math.isfinite(v)},
              "tolerance": {"tflite_size_kb": f"{SIZE_TOLERANCE:.0%}",
                            "tflite_latency_ms": f"{LATENCY_TOLERANCE[0]:.0%} or "
                                                 f"{LATENCY_TOLERANCE[1]} ms, whichever is larger"}}
    artifact = next((a for a in manifest.artifacts if a.name == "tflite" and a.ok), None)
    if artifact is None or "tflite_size_kb" not in costs:
        return record
    measured = {"tflite_size_kb": artifact.size_bytes / 1024.0,
                "tflite_latency_ms": (artifact.latency_ms or {}).get("batch_1")}
    record["export"] = measured
    agrees = {"tflite_size_kb": abs(measured["tflite_size_kb"] - costs["tflite_size_kb"])
              <= SIZE_TOLERANCE * costs["tflite_size_kb"]}
    if measured["tflite_latency_ms"] is not None and "tflite_latency_ms" in costs:
        allowed = max(LATENCY_TOLERANCE[0] * costs["tflite_latency_ms"], LATENCY_TOLERANCE[1])
        agrees["tflite_latency_ms"] = abs(measured["tflite_latency_ms"] - costs["tflite_latency_ms"]) <= allowed
    record["agrees"] = agrees
    return record


def export_front(config, result, data, out_dir, *, selected_ok):
    """Every member of the Pareto front retrained and exported (verified) to `front/trial_<id>/`;
    the selected member is `export/`. `front/front.json` lists them with their figures."""
    from zoo._json import write_json_atomic

    folder = os.path.join(out_dir, "front")
    members = []
    for row in result.front.to_dict("records"):
        trial_id = row["trial_id"]
        if trial_id == result.trial_id:
            members.append({**row, "export": os.path.join("..", "export"), "ok": selected_ok})
            continue
        model, _ = result.retrain(trial_id)
        manifest = _export(config, model, data, os.path.join(folder, f"trial_{trial_id}"),
                           result.costs_of(trial_id))
        members.append({**row, "export": f"trial_{trial_id}", "ok": manifest.ok})
    write_json_atomic(os.path.join(folder, "front.json"), {"objectives": list(config.search.objectives),
                                                            "members": members})
    return members


def preprocessing_description(data):
    """What a deployment must know beside an exported artifact: the label vocabulary, the feature
    names a run on arrays was trained with (so `zoo predict` reads a CSV's columns by name) and,
    for a CSV, the table's description (schema, vocabularies, codes); the export says which inputs
    its artifacts take (`inputs`: raw columns, or the codes matrix) and documents them."""
    description = {"class_names": data.class_names, "task": data.task, "inputs": "raw",
                   "feature_names": list(data.feature_names) if data.feature_names else None}
    if data.schema is not None:
        description["tabular"] = data.preprocessor.to_dict()
    if data.image_input is not None:  # decoded uint8 pixels at a fixed size, and how to get them
        description["images"] = data.image_input
    return description


def run(config, out_dir, *, verbose=False):
    """search → retrain best → `best_model.keras` → report/ → export/ (each step as configured).

    Prints one line per trial and, at the end, what the user came for (`summary`); returns a
    `RunOutcome` (`ok` is False when an exported artifact failed verification)."""
    check_export(config)
    model = fit_step(config, out_dir, verbose=verbose)
    result, data = model.search_result_, model.data_
    outcome = RunOutcome(result=result, data=data, model_path=save_best(result, out_dir, data, config))
    if config.evaluate.enabled:
        outcome.report = evaluate_step(result, data, out_dir)
    if config.export.enabled:
        outcome.manifest = export_step(config, result, data, out_dir)
        if config.export.front and result.front is not None:
            outcome.front = export_front(config, result, data, out_dir, selected_ok=outcome.manifest.ok)
    print(summary(outcome, config, out_dir), flush=True)
    return outcome


# the report's headline metrics, in this order, when present; the rest stay in report.json
HEADLINE_METRICS = ("accuracy_score", "balanced_accuracy_score", "f1_score", "f1_score_macro",
                    "roc_auc_score", "roc_auc_score_ovr_macro", "log_loss", "r2_score",
                    "mean_absolute_error", "root_mean_squared_error", "mase", "naive_mase")


def summary(outcome, config, out_dir):
    """The end of `zoo run`: the test metrics, the MLflow run and how to open it, the paths."""
    result, data = outcome.result, outcome.data
    which = "best" if result.front is None else "chosen"
    lines = [f"{which} {result.objective}={result.best_score:.4f} ({result.family}, on the validation split)"]
    if outcome.report is not None:
        metrics = outcome.report.metrics
        shown = [k for k in HEADLINE_METRICS if metrics.get(k) is not None] or list(metrics)[:6]
        width = max(len(k) for k in shown) if shown else 0
        lines.append(f"test metrics ({len(data.y_test)} held-out rows of {data.name}; all "
                     f"{len(metrics)} in report.json):")
        lines += [f"  {k:<{width}}  {metrics[k]:.4f}" for k in shown]
        if outcome.report.baseline is not None:
            lines.append(outcome.report.baseline.verdict())
    if result.costs:
        lines.append("on-device costs (the search's measurements): " + ", ".join(
            f"{k} {v:.4g}" for k, v in result.costs.items()))
    if result.front is not None:
        lines.append(f"Pareto front of {' vs '.join(config.search.objectives)}: {len(result.front)} "
                     f"members; trial {result.trial_id} chosen by search.select "
                     f"'{config.search.select or 'knee'}' (the front is in report.html and MLflow)")
    lines += _tracking_lines(result, config)
    written = [(outcome.model_path, "the best model, on raw inputs")]
    if outcome.report is not None:
        written.append((os.path.join(out_dir, "report", "report.html"),
                        "test report (report.json, PNG plots)"))
    if outcome.manifest is not None:
        verified = "all verified" if outcome.manifest.ok else "some FAILED verification"
        written.append((os.path.join(out_dir, "export", "manifest.json"),
                        f"exports ({', '.join(config.export.formats)}): {verified}"))
        if config.export.front and result.front is not None:
            written.append((os.path.join(out_dir, "front", "front.json"),
                            "every front member, retrained and exported"))
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
