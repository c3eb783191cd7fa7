"""Faults with real processes: SIGKILL during `zoo export`, the MLflow server stopped in the
middle of a search, a trial that exhausts memory or raises inside `fit`. (SIGKILL during a
search, then resume, is in test_tuning.py.)"""

import json
import os
import signal

import numpy as np
import yaml
from mlflow import MlflowClient
from zoo_testing import start_tracking_server, wait_for, zoo, zoo_here

from keras_zoo.cli import main
from tuning import search
from tuning.hypermodel import ZooHyperModel
from tuning.search import INLINE_ENV
from tuning.tracking import JOURNAL, PARENT_TAG, TRIAL_TAG
from zoo.data import load_dataset


def test_sigkill_during_export_leaves_no_partial_artifact_listed(tmp_path):
    import zoo as catalog
    from export import check_manifest

    model_path = tmp_path / "model.keras"
    catalog.create_model("cnn", input_shape=(8, 8, 1), num_outputs=10).save(model_path)
    out = tmp_path / "export"
    process = zoo("export", model_path, "--out", out, "--format", "keras,savedmodel,tflite,onnx",
                  cwd=tmp_path)
    manifest_path = out / "manifest.json"

    def one_artifact_listed():
        assert process.poll() is None, "the export ended before it could be killed"
        try:
            return len(json.loads(manifest_path.read_text())["artifacts"]) >= 1
        except (OSError, ValueError, KeyError):
            return False

    wait_for(one_artifact_listed, 180, "the first verified artifact")
    process.send_signal(signal.SIGKILL)  # somewhere inside the next artifact
    process.wait(30)
    manifest = json.loads(manifest_path.read_text())
    assert manifest["status"] == "in_progress"
    listed = {artifact["path"] for artifact in manifest["artifacts"]}
    assert check_manifest(out) == []  # every listed file is there, its sha256 matching
    # the export again, in this process (a fresh start from what is on disk; no TensorFlow start-up)
    assert main(["export", str(model_path), "--out", str(out), "--format", "keras,onnx"]) == 0
    names = set(os.listdir(out))
    assert not [n for n in names if n.startswith(".export-tmp-")]  # the killed run's scratch is gone
    assert json.loads(manifest_path.read_text())["status"] == "complete"
    assert listed  # the kill landed after at least one artifact was listed


def test_tracking_server_stopped_mid_search_loses_no_metric(tmp_path):
    # a server of its own, not the session's `tracking_server`: this test stops it mid-search
    db = f"sqlite:///{tmp_path}/mlflow.db"
    MlflowClient(db).search_experiments()  # create the tables first: the server starts sooner

    server, uri = start_tracking_server(tmp_path, db, "server1.log")
    config = tmp_path / "iris.yaml"
    config.write_text(yaml.safe_dump({
        "data": {"source": "iris"},
        "model": {"name": "mlp", "params": {"hidden_units": [8]}},
        "search": {"algorithm": "random", "max_trials": 4, "max_epochs": 3, "seed": 0},
        "tracking": {"uri": uri, "experiment": "outage"}}))
    out = tmp_path / "out"
    # its trials in a worker process, as a user's run has them (conftest.py runs searches inline)
    tune = zoo("tune", config, "--out", out, cwd=tmp_path,
               env={key: value for key, value in os.environ.items() if key != INLINE_ENV})
    client = MlflowClient(uri)

    def stopped_after_a_trial_with_trials_left():
        """SIGSTOP the search; keep it stopped once a trial but not every one has finished on the
        server (its parent run id), else SIGCONT it: its state decides, not the clock."""
        assert tune.poll() is None, tune.stderr.read()[-2000:]
        state = out / "search" / "zoo_search.json"
        if not state.exists():
            return False
        tune.send_signal(signal.SIGSTOP)
        parent = json.loads(state.read_text())["parent_run_id"]
        experiment = client.get_experiment_by_name("outage").experiment_id
        runs = client.search_runs([experiment], f"tags.`{PARENT_TAG}` = '{parent}'")
        finished = sum(run.info.status == "FINISHED" for run in runs)
        assert finished < 4, "the search finished every trial before the server could be stopped"
        if finished:
            return parent
        tune.send_signal(signal.SIGCONT)
        return False

    parent = wait_for(stopped_after_a_trial_with_trials_left, 240, "the first trial on the server")
    server.send_signal(signal.SIGTERM)
    server.wait(60)
    tune.send_signal(signal.SIGCONT)  # the rest of the search, with the server gone
    _, stderr = tune.communicate(timeout=600)
    assert tune.returncode == 0, stderr[-3000:]
    warnings = [line for line in stderr.splitlines() if line.startswith("warning:")]
    # once by each process that found the server gone: the worker (its trials), the chief (the
    # parent run); both journal to the one file
    assert 1 <= len(warnings) <= 2 and all("zoo tracking sync" in w for w in warnings), stderr[-3000:]
    assert (out / "search" / JOURNAL).exists()

    server, uri = start_tracking_server(tmp_path, db, "server2.log")  # the same store, back on another port
    try:
        sync = zoo_here("tracking", "sync", out / "search", "--tracking-uri", uri, cwd=tmp_path)
        assert sync.returncode == 0, sync.stderr[-2000:]
        assert not (out / "search" / JOURNAL).exists()
        client = MlflowClient(uri)
        experiment = client.get_run(parent).info.experiment_id
        runs = client.search_runs([experiment], f"tags.`{PARENT_TAG}` = '{parent}'")
        assert sorted(run.data.tags[TRIAL_TAG] for run in runs) == ["0", "1", "2", "3"]
        for run in runs:
            assert run.info.status == "FINISHED"
            steps = [p.step for p in client.get_metric_history(run.info.run_id, "val_accuracy")]
            assert steps == [0, 1, 2], (run.data.tags[TRIAL_TAG], steps)
            assert "score" in run.data.metrics
        parent_run = client.get_run(parent)
        assert parent_run.info.status == "FINISHED" and "best_score" in parent_run.data.metrics
        artifacts = {a.path for a in client.list_artifacts(parent)}
        assert {"trials.csv", "best_hyperparameters.json", "best_model"} <= artifacts
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)


class FaultyHyperModel(ZooHyperModel):
    """The second fit asks for more memory than any machine has; the third raises."""

    calls = 0

    def fit(self, hp, model, x=None, y=None, **kwargs):
        type(self).calls += 1
        if self.calls == 2:
            np.ones((2**40, 2**10))  # numpy refuses the 8 EiB allocation: a real MemoryError
        if self.calls == 3:
            raise RuntimeError("a bug inside fit")
        return super().fit(hp, model, x, y, **kwargs)


def test_trials_that_exhaust_memory_or_raise_in_fit_fail_and_the_search_goes_on(tmp_path):
    iris = load_dataset("iris")
    hypermodel = FaultyHyperModel(["mlp"], input_shape=(4,), num_outputs=3, task="multiclass",
                                  params={"hidden_units": (4,)})
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = search(iris, algorithm="random", families=["mlp"], hypermodel=hypermodel, max_trials=4, max_epochs=1,
                    directory=str(tmp_path / "s"), tracking_uri=uri, progress=False, retrain=False)
    assert result.trials.status.tolist() == ["COMPLETED", "FAILED", "FAILED", "COMPLETED"]
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_run(result.run_id).info.experiment_id],
                              f"tags.`{PARENT_TAG}` = '{result.run_id}'")
    reasons = {r.data.tags[TRIAL_TAG]: r.data.tags.get("zoo.failure_reason", "") for r in runs
               if r.info.status == "FAILED"}
    assert "MemoryError" in reasons["1"] and "a bug inside fit" in reasons["2"]
