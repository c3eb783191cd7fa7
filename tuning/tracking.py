"""MLflow tracking for a search through `MlflowClient` (explicit run ids, no global active run, so
the same code serves one process and Keras Tuner's distributed workers)."""

import os
import time

import keras

from zoo.errors import InvalidParameterError

DEFAULT_URI = "sqlite:///mlflow.db"
PARENT_TAG = "mlflow.parentRunId"
TRIAL_TAG = "zoo.trial_id"


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


class Tracker:
    """One parent run per search, one nested run per trial; each epoch's metrics in one batch.

    Batches are synchronous on purpose: MLflow's asynchronous queue is shut down (a thread join
    of up to a second) by every `set_terminated`, which costs more per trial than the few
    milliseconds of one synchronous batch per epoch.
    """

    def __init__(self, uri, experiment):
        from mlflow import MlflowClient

        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)
        existing = self.client.get_experiment_by_name(experiment)
        self.experiment_id = (existing.experiment_id if existing
                              else self.client.create_experiment(experiment))

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
        """A nested run for one trial; an earlier KILLED attempt of the same trial is removed so
        that no trial is logged twice."""
        for run in self.trial_runs(parent_id):
            if run.data.tags.get(TRIAL_TAG) == trial_id and run.info.status == "KILLED":
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
            self.client.log_batch(run_id, metrics=items, synchronous=True)

    def end_trial(self, run_id, *, status, metrics=None, reason=None):
        if metrics:
            self.log_metrics(run_id, metrics)
        if reason:
            self.client.set_tag(run_id, "zoo.failure_reason", reason[:5000])
        self.client.set_terminated(run_id, status=status)

    def log_artifact(self, run_id, path, artifact_path=None):
        self.client.log_artifact(run_id, path, artifact_path)


class EpochLogger(keras.callbacks.Callback):
    """Keras callback logging each epoch's metrics to a trial's run, one batch per epoch."""

    def __init__(self, tracker, run_id, prefix=""):
        super().__init__()
        self.tracker, self.run_id, self.prefix = tracker, run_id, prefix

    def on_epoch_end(self, epoch, logs=None):
        metrics = {f"{self.prefix}{k}": v for k, v in (logs or {}).items()}
        self.tracker.log_metrics(self.run_id, metrics, step=epoch)
