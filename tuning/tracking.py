"""MLflow tracking for a search through `MlflowClient` (explicit run ids, no global active run, so
the same code serves one process and Keras Tuner's distributed workers)."""

import contextlib
import json
import math
import os
import shutil
import sys
import time
import types
import uuid

from zoo._json import write_json_atomic
from zoo.errors import InvalidParameterError

DEFAULT_URI = "sqlite:///mlflow.db"
JOURNAL = "tracking_journal.jsonl"
# calls that write: offline they go to the journal; the rest read, and offline find nothing
WRITES = ("create_run", "log_batch", "set_tag", "set_terminated", "update_run", "delete_run",
          "log_artifact", "log_artifacts")
# writes MLflow would queue when MLFLOW_ENABLE_ASYNC_LOGGING is on; each `set_terminated` then
# shuts the queue's threads down (about 0.5 s a trial here), so they always go synchronously
SYNCHRONOUS = ("log_batch", "set_tag", "log_param", "log_metric")
PARENT_TAG = "mlflow.parentRunId"
TRIAL_TAG = "zoo.trial_id"
# what MLflow 3's UI reads to open an experiment under model training, not its GenAI overview
# (the values of its `ExperimentKind`: "genai_development", "custom_model_development", ...)
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
SPLITS = (("train", "training"), ("val", "validation"), ("test", "test"))  # (Dataset's, MLflow's)


def resolve_uri(uri=None):
    """The tracking URI: the config's, else `MLFLOW_TRACKING_URI`, else `sqlite:///mlflow.db`."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def check_reachable(uri):
    """Refuse, with one line, a tracking URI whose store cannot be reached (bounded wait)."""
    if uri.startswith(("http://", "https://")):
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as response:
                response.read()
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise InvalidParameterError(
                f"`tracking.uri` cannot be reached ({reason}). Received: tracking.uri={uri!r}"
            ) from None
        return
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///"):]
        parent = os.path.dirname(os.path.abspath(path)) or "."
        if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
            raise InvalidParameterError(
                f"`tracking.uri` points into a folder that does not exist or is not writable. "
                f"Received: tracking.uri={uri!r}"
            )
        return
    scheme = uri.split("://", 1)[0] if "://" in uri else "file"
    if scheme not in ("file", "postgresql", "mysql", "mssql", "databricks"):
        raise InvalidParameterError(
            f"`tracking.uri` has an unknown scheme {scheme!r}. Received: tracking.uri={uri!r}"
        )


def default_allowed_hosts():
    """MLflow server's own default `--allowed-hosts` (loopback and private addresses)."""
    try:
        from mlflow.server.security_utils import get_default_allowed_hosts
    except ImportError:  # an MLflow without host validation
        return []
    return list(get_default_allowed_hosts())


class _ResilientClient:
    """`MlflowClient` that, when the tracking server stops answering mid-search, warns once and
    keeps every later write in a local journal (replayed by `replay_journal`)."""

    def __init__(self, uri, journal_dir):
        from mlflow import MlflowClient

        self._client = MlflowClient(tracking_uri=uri)
        self._uri = uri
        self._journal_dir = journal_dir
        self.offline = False

    def __getattr__(self, name):
        method = getattr(self._client, name)

        def call(*args, **kwargs):
            if name in SYNCHRONOUS:  # MLFLOW_ENABLE_ASYNC_LOGGING would cost a thread join a trial
                kwargs.setdefault("synchronous", True)
            if not self.offline:
                try:
                    return method(*args, **kwargs)
                except Exception as error:  # noqa: BLE001 - only a dead server is absorbed
                    if not self._journal_dir or not server_down(self._uri):
                        raise
                    self._go_offline(error)
            if name not in WRITES:
                return [] if name.startswith("search") else None
            return self._record(name, *args, **kwargs)

        return call

    def _go_offline(self, error):
        self.offline = True
        os.makedirs(self._journal_dir, exist_ok=True)
        reason = " ".join(str(error).split())[:120]
        print(f"warning: MLflow tracking at {self._uri} stopped answering ({reason}); the search "
              f"goes on and logs to {os.path.join(self._journal_dir, JOURNAL)}; replay it with "
              f"`zoo tracking sync {self._journal_dir}` (the next run does it too)",
              file=sys.stderr, flush=True)

    def _record(self, name, *args, **kwargs):
        from mlflow.entities import Metric, Param, RunTag

        def encode(value):
            if isinstance(value, Metric):
                return ["metric", value.key, value.value, value.timestamp, value.step]
            if isinstance(value, (Param, RunTag)):
                return ["param" if isinstance(value, Param) else "tag", value.key, value.value]
            if isinstance(value, (list, tuple)):
                return [encode(item) for item in value]
            if isinstance(value, dict):
                return {k: encode(v) for k, v in value.items()}
            return value

        kwargs.pop("synchronous", None)
        result = None
        if name == "create_run":
            local_id = f"offline-{uuid.uuid4().hex}"
            kwargs["local_id"] = local_id
            result = types.SimpleNamespace(info=types.SimpleNamespace(run_id=local_id))
        if name in ("log_artifact", "log_artifacts"):  # temp files may vanish: keep a copy
            source = args[1]
            copy = os.path.join(self._journal_dir, "artifacts", uuid.uuid4().hex, os.path.basename(source))
            (shutil.copytree if os.path.isdir(source) else shutil.copy2)(
                source, copy if os.path.isdir(source) else _mkdir_for(copy))
            args = (args[0], copy, *args[2:])
        entry = {"op": name, "args": encode(list(args)), "kwargs": encode(kwargs),
                 "uri": self._uri}
        with open(os.path.join(self._journal_dir, JOURNAL), "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
        return result


def _mkdir_for(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def server_down(uri):
    """Whether the tracking store at `uri` is down (only a server can stop answering)."""
    if not uri.startswith(("http://", "https://")):
        return False
    try:
        check_reachable(uri)
    except InvalidParameterError:
        return True
    return False


def replay_journal(directory, uri=None):
    """Replay the writes a search kept locally while its tracking server was down; return how
    many. Progress is saved after each write, so an interrupted replay goes on where it stopped."""
    from mlflow import MlflowClient

    path = os.path.join(directory, JOURNAL)
    if not os.path.isfile(path):
        return 0
    with open(path, encoding="utf-8") as handle:
        entries = [json.loads(line) for line in handle if line.strip()]
    progress_path = path + ".progress"
    progress = {"done": 0, "ids": {}}
    if os.path.isfile(progress_path):
        with open(progress_path, encoding="utf-8") as handle:
            progress = json.load(handle)
    clients = {}
    for index, entry in enumerate(entries):
        if index < progress["done"]:
            continue
        target = uri or entry["uri"]
        client = clients.setdefault(target, MlflowClient(tracking_uri=target))
        args, kwargs = _decode(entry["args"], progress["ids"]), _decode(entry["kwargs"], progress["ids"])
        local_id = kwargs.pop("local_id", None)
        result = getattr(client, entry["op"])(*args, **kwargs)
        if local_id:
            progress["ids"][local_id] = result.info.run_id
        progress["done"] = index + 1
        write_json_atomic(progress_path, progress, indent=None)
    os.remove(path)
    os.remove(progress_path)
    shutil.rmtree(os.path.join(directory, "artifacts"), ignore_errors=True)
    return len(entries)


def _decode(value, ids):
    """A journaled argument as MLflow takes it: run ids made offline mapped to the real ones,
    metrics, params and tags rebuilt as MLflow's entities."""
    from mlflow.entities import Metric, Param, RunTag

    if isinstance(value, str):
        return ids.get(value, value)
    if isinstance(value, list) and value and value[0] in ("metric", "param", "tag"):
        kind, *fields = value
        return {"metric": Metric, "param": Param, "tag": RunTag}[kind](*fields)
    if isinstance(value, list):
        return [_decode(item, ids) for item in value]
    if isinstance(value, dict):
        return {k: _decode(v, ids) for k, v in value.items()}
    return value


class Tracker:
    """One parent run per search, one nested run per trial; each epoch's metrics in one batch.

    Writes are synchronous on purpose (see SYNCHRONOUS): MLflow's asynchronous queue is shut down
    (a thread join of up to a second) by every `set_terminated`, which costs more per trial than
    the few milliseconds of one synchronous batch per epoch.
    """

    def __init__(self, uri, experiment, journal_dir=None):
        self.uri = uri
        if uri.startswith(("http://", "https://")):  # a dead server must not stall each call
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
        self.client = _ResilientClient(uri, journal_dir)
        existing = self.client.get_experiment_by_name(experiment)
        if existing is None:
            self.experiment_id = self.client.create_experiment(
                experiment, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
        else:
            self.experiment_id = existing.experiment_id
            if EXPERIMENT_KIND_TAG not in existing.tags:  # a kind someone chose stays
                self.client.set_experiment_tag(self.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)

    @property
    def offline(self):
        """True once the server stopped answering and writes go to the local journal."""
        return self.client.offline

    # --- parent -------------------------------------------------------------------------------
    def start_parent(self, *, name, params, tags, run_id=None):
        """Create the search's parent run, or reopen `run_id` when resuming."""
        if run_id is not None:
            self.client.update_run(run_id, status="RUNNING")
            self.client.set_tag(run_id, "zoo.resumed", "true")
            return run_id
        run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
        self.log_params(run.info.run_id, params)
        return run.info.run_id

    def close_stale_trials(self, parent_id):
        """Runs left RUNNING by a process that died are closed as KILLED; returns their ids."""
        stale = self.trial_runs(parent_id, status="RUNNING")
        for run in stale:
            self.client.set_terminated(run.info.run_id, status="KILLED")
        return [run.info.run_id for run in stale]

    def trial_runs(self, parent_id, status=None):
        query = f"tags.`{PARENT_TAG}` = '{parent_id}'"
        if status:
            query += f" and attributes.status = '{status}'"
        return self.client.search_runs([self.experiment_id], filter_string=query, max_results=10000)

    # --- trials --------------------------------------------------------------------------------
    def start_trial(self, parent_id, *, trial_id, params, tags):
        """A nested run for one trial; an earlier attempt of the same trial (killed, or ended by a
        process that died before the oracle heard of it) is removed so that no trial is logged
        twice."""
        earlier = self.client.search_runs(
            [self.experiment_id], max_results=100,
            filter_string=f"tags.`{PARENT_TAG}` = '{parent_id}' and tags.`{TRIAL_TAG}` = '{trial_id}'")
        for run in earlier:
            self.client.delete_run(run.info.run_id)
        tags = {PARENT_TAG: parent_id, TRIAL_TAG: trial_id, **tags}
        run = self.client.create_run(self.experiment_id, run_name=f"trial-{trial_id}", tags=tags)
        self.log_params(run.info.run_id, params)
        return run.info.run_id

    def log_params(self, run_id, params):
        from mlflow.entities import Param

        items = [Param(str(k), str(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[start:start + 100])

    def log_metrics(self, run_id, metrics, step=None):
        """Log a dict of metrics as one batch (None values are skipped)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step or 0) for k, v in metrics.items() if v is not None]
        if items:
            self.client.log_batch(run_id, metrics=items)

    def end_trial(self, run_id, *, status, metrics=None, reason=None):
        if metrics:
            self.log_metrics(run_id, metrics)
        if reason:
            self.client.set_tag(run_id, "zoo.failure_reason", reason[:5000])
        self.client.set_terminated(run_id, status=status)

    def log_dataset(self, run_id, data):
        """Each split of a `zoo.data.Dataset` as an MLflow dataset input of `run_id` (name,
        digest, schema; context training/validation/test): the UI's Dataset column."""
        import mlflow.data
        from mlflow.entities import DatasetInput, InputTag
        from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

        inputs = []
        for split, context in SPLITS:
            X, y = getattr(data, f"X_{split}"), getattr(data, f"y_{split}")
            if X is None or len(X) == 0:
                continue
            frame, name = (data.frames or {}).get(split), data.name or None
            paths = getattr(X, "paths", None)
            if paths is not None:  # images streamed from disk: the files and their labels
                import pandas as pd

                dataset = mlflow.data.from_pandas(pd.DataFrame({"path": paths, "label": y}),
                                                  targets="label", name=name)
            elif frame is not None:  # the user's raw columns, the target among them
                dataset = mlflow.data.from_pandas(frame, targets=data.schema.target, name=name)
            else:  # several model inputs (a graph's features and adjacency) as named arrays
                features = {f"input_{i}": x for i, x in enumerate(X)} if isinstance(X, (list, tuple)) else X
                dataset = mlflow.data.from_numpy(features, targets=y, name=name)
            inputs.append(DatasetInput(dataset._to_mlflow_entity(),
                                       tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)]))
        self.client.log_inputs(run_id, datasets=inputs)

    def log_artifact(self, run_id, path, artifact_path=None):
        self.client.log_artifact(run_id, path, artifact_path)

    def log_artifacts(self, run_id, folder, artifact_path=None):
        self.client.log_artifacts(run_id, folder, artifact_path)

    def set_tags(self, run_id, tags):
        for key, value in tags.items():
            self.client.set_tag(run_id, key, str(value))

    def set_status(self, run_id, status):
        """Reopen (RUNNING) or end (FINISHED, FAILED, KILLED) a run."""
        if status == "RUNNING":
            self.client.update_run(run_id, status="RUNNING")
        else:
            self.client.set_terminated(run_id, status=status)

    def log_report(self, run_id, report):
        """An `evaluation.Report`'s metrics, tables and plots on `run_id` (through this tracker's
        client, so an offline server's writes are journaled like the rest)."""
        report.log_to_mlflow(run_id, client=self.client)


def log_search(tracker, result, data, register_model, search_seconds, fit_seconds):
    """What a finished search leaves on its parent run: the trials table, the best
    hyperparameters, the front, the splits, the logged best model; then the run is finished."""
    import tempfile

    parent = result.run_id
    with tempfile.TemporaryDirectory() as folder:
        trials_path = os.path.join(folder, "trials.csv")
        result.trials.to_csv(trials_path, index=False)
        best_path = os.path.join(folder, "best_hyperparameters.json")
        write_json_atomic(best_path, result.best_hyperparameters)
        tracker.log_artifact(parent, trials_path)
        tracker.log_artifact(parent, best_path)
        if result.front is not None:  # the Pareto front: a table and a plot on the parent run
            front_path = os.path.join(folder, "pareto_front.csv")
            result.front.to_csv(front_path, index=False)
            tracker.log_artifact(parent, front_path)
            plot_path = os.path.join(folder, "pareto_front.png")
            with open(plot_path, "wb") as handle:
                handle.write(result.front_plot)
            tracker.log_artifact(parent, plot_path)
    tracker.log_metrics(parent, {"best_score": result.best_score, "search_seconds": search_seconds,
                                 "fit_seconds": fit_seconds,
                                 "trials_completed": int((result.trials["status"] == "COMPLETED").sum()),
                                 "trials_failed": int((result.trials["status"] != "COMPLETED").sum())})
    tracker.set_tags(parent, {"zoo.best_family": result.family, "zoo.stop_reason": result.stop_reason,
                              **({"zoo.refit_epochs": result.refit_epochs} if result.refit_epochs else {}),
                              **({"zoo.final_training": "; ".join(result.final_notes)}
                                 if result.final_notes else {}),
                              **({"zoo.ensemble_members": ",".join(result.members)}
                                 if result.members and len(result.members) > 1 else {})})
    if result.costs:
        tracker.log_metrics(parent, {f"best_{k}": v for k, v in result.costs.items() if math.isfinite(v)})
    if result.front is not None:
        tracker.log_metrics(parent, {"pareto_front_size": len(result.front)})
    if not tracker.offline:  # the splits as MLflow dataset inputs: the UI's Dataset column
        tracker.log_dataset(parent, data)
    if result.best_model is not None:
        _log_best_model(tracker, result, data, register_model)
    tracker.set_status(parent, "FINISHED")


def _log_best_model(tracker, result, data, register_model):
    """The best model as an MLflow model on the user's raw data (`_raw_data_model`), on the parent
    run (registered as `register_model` when given); kept in the search folder and journaled when
    the tracking server is down."""
    import tempfile

    import mlflow

    with tempfile.TemporaryDirectory() as scratch:
        model = _raw_data_model(result.best_model, data, scratch)
        try:
            if tracker.offline:
                raise ConnectionError("tracking server offline")
            with _global_tracking_uri(result.tracking_uri), mlflow.start_run(run_id=result.run_id):
                mlflow.pyfunc.log_model(name="best_model", registered_model_name=register_model, **model)
        except Exception:  # noqa: BLE001 - a dead server: keep the MLflow model for the replay
            if not tracker.offline and not server_down(result.tracking_uri):
                raise
            folder = os.path.join(result.directory, "best_model_mlflow")
            shutil.rmtree(folder, ignore_errors=True)
            mlflow.pyfunc.save_model(folder, **model)
            tracker.log_artifacts(result.run_id, folder, "best_model")


def _raw_data_model(model, data, folder):
    """`mlflow.pyfunc.log_model`'s arguments for `model` on the user's raw data: for a table the
    raw-column model (`Dataset.raw_model`) and a signature of the raw columns, for arrays the model
    and the named features (or its arrays); predictions in the user's labels with a probability per
    class, or in units (`zoo.serving.RawDataModel`). The `zoo` package goes with it as code, so the
    catalog's layers load in a process that imported nothing."""
    import mlflow.pyfunc

    import zoo
    from zoo.serving import MODEL_ARTIFACT, RawDataModel, raw_inputs

    raw = data.raw_model(model)
    path = os.path.join(folder, "model.keras")
    raw.save(path)
    config = raw_inputs(data)
    example, signature = _raw_example_and_signature(RawDataModel(raw, config), data, config)
    # a class made here is pickled by value: the logged model needs `zoo` and MLflow, not `tuning`
    python_model = type("RawDataModel", (RawDataModel, mlflow.pyfunc.PythonModel), {})()
    return {"python_model": python_model, "artifacts": {MODEL_ARTIFACT: path},
            "model_config": config, "signature": signature, "input_example": example,
            "code_paths": [os.path.dirname(os.path.abspath(zoo.__file__))],
            "pip_requirements": _requirements()}


def _raw_example_and_signature(predictor, data, config):
    """A few training rows as the user gives them, and the signature: a table's raw columns
    (strings as strings, True/False columns as booleans, numbers as doubles; each may hold missing
    values), named features as doubles, other arrays as tensors; and the outputs of `predictor`
    (`prediction`, `probability_<label>`)."""
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from mlflow.types import ColSpec, DataType, Schema

    inputs = None
    if config.get("schema"):
        columns = [c for c in config["schema"]["columns"] if c["kind"] != "drop"]
        example = data.frames["train"].head(3)[[c["name"] for c in columns]]
        inputs = Schema([ColSpec(DataType.string if c["source"] == "string" else
                                 DataType.boolean if c["kind"] == "boolean" else DataType.double,
                                 c["name"]) for c in columns])
    elif config.get("feature_names"):
        example = pd.DataFrame(data.X_train[:3], columns=config["feature_names"])
        inputs = Schema([ColSpec(DataType.double, name) for name in config["feature_names"]])
    elif isinstance(data.X_train, (list, tuple)):  # several inputs: named tensors
        example = {tensor.name: x[:3] for tensor, x in zip(predictor.model.inputs, data.X_train)}
    else:
        example = np.asarray(data.X_train[:3])
    signature = infer_signature(example, predictor.predict(None, example))
    if inputs is not None:
        signature.inputs = inputs
    return example, signature


@contextlib.contextmanager
def _global_tracking_uri(uri):
    """MLflow's fluent API (`log_model`) on `uri`, then the process's own setting back:
    `mlflow.set_tracking_uri` also sets `MLFLOW_TRACKING_URI`, which would send the user's next
    search (and their own MLflow calls) to this one's store."""
    import mlflow

    before, variable = mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)
        if variable is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = variable


def _requirements():
    """The model's pip requirements, given explicitly (MLflow's inference of them reloads the model
    in a subprocess, seconds a search): the `zoo` package travels as code, so what it and the
    wrapper import, pinned to this environment's versions."""
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for package in ("tensorflow", "keras", "numpy", "pandas"):
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pass
    return pins
