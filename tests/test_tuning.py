"""The search against a real MLflow sqlite store: runs per trial, failures, CV, algorithms,
the evolution oracle, bad input, and `zoo run` end to end."""

import json
import os
import subprocess
import sys

import keras_tuner as kt
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from zoo_testing import zoo_here

from tuning import SearchFailed, search
from tuning.hypermodel import ZooHyperModel
from tuning.oracles import EvolutionOracle
from tuning.tracking import PARENT_TAG, TRIAL_TAG
from zoo.data import load_dataset
from zoo.errors import InvalidParameterError, UnknownNameError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def iris():
    return load_dataset("iris", seed=0)


def uri_of(tmp_path):
    return f"sqlite:///{tmp_path}/mlflow.db"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One real sqlite store for the module: creating its tables costs seconds per store."""
    return uri_of(tmp_path_factory.mktemp("store"))


def trial_runs(uri, parent_id):
    client = MlflowClient(uri)
    experiment = client.get_run(parent_id).info.experiment_id
    return client, client.search_runs([experiment], f"tags.`{PARENT_TAG}` = '{parent_id}'")


def test_n_trials_leave_n_nested_runs_with_params_and_epoch_histories(tmp_path, iris, store):
    result = search(iris, algorithm="random", families=["mlp"], max_trials=3, max_epochs=3, seed=1,
                    directory=str(tmp_path / "search"), tracking_uri=store,
                    progress=False)
    client, runs = trial_runs(store, result.run_id)
    assert len(runs) == 3
    assert client.get_run(result.run_id).info.status == "FINISHED"
    trials = {row.trial_id: row for row in result.trials.itertuples()}
    for run in runs:
        assert run.info.status == "FINISHED"
        assert run.data.tags["zoo.algorithm"] == "random" and run.data.tags["zoo.family"] == "mlp"
        trial_id = run.data.tags[TRIAL_TAG]
        row = result.trials[result.trials.trial_id == trial_id].iloc[0]
        tuned = {c[3:] for c in result.trials.columns if c.startswith("hp:") and not pd.isna(row[c])}
        assert tuned and set(run.data.params) == tuned  # every tuned value logged, nothing else
        for key, value in run.data.params.items():
            expected = row[f"hp:{key}"]  # the table's integer columns turn float beside NaN
            if isinstance(expected, (int, float, np.number)) and not isinstance(expected, bool):
                assert float(value) == pytest.approx(float(expected))
            else:
                assert str(expected) == value
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert [point.step for point in history] == [0, 1, 2]
        assert run.data.metrics["score"] == pytest.approx(max(p.value for p in history))
    assert set(trials) == {run.data.tags[TRIAL_TAG] for run in runs}
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"trials.csv", "best_hyperparameters.json"} <= artifacts
    assert result.best_model.predict(iris.X_test[:2], verbose=0).shape == (2, 3)
    assert client.get_run(result.run_id).data.metrics["best_score"] == pytest.approx(result.best_score)


def test_tracking_stays_synchronous_when_mlflow_async_logging_is_switched_on(tmp_path, iris, store,
                                                                            monkeypatch):
    """With MLFLOW_ENABLE_ASYNC_LOGGING on, MLflow would queue each write and every trial's
    `set_terminated` would then join the queue's threads (about 0.5 s a trial on 2 cores); the
    tracker's writes never start that queue, and every metric still lands."""
    from mlflow.utils.async_logging.async_logging_queue import AsyncLoggingQueue

    activated = []
    activate = AsyncLoggingQueue.activate
    monkeypatch.setattr(AsyncLoggingQueue, "activate",
                        lambda queue: (activated.append(queue), activate(queue))[1])
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_LOGGING", "true")
    result = search(iris, algorithm="random", families=["mlp"], max_trials=2, max_epochs=2, seed=2, pruner="median",
                    directory=str(tmp_path / "search"), tracking_uri=store, progress=False,
                    retrain=False)
    assert activated == []
    client, runs = trial_runs(store, result.run_id)
    assert len(runs) == 2
    for run in runs:
        steps = [point.step for point in client.get_metric_history(run.info.run_id, "val_accuracy")]
        assert steps == [0, 1] and run.data.params


class PoisonedHyperModel(ZooHyperModel):
    """Feeds NaN inputs to the fits listed in `poisoned` (counted from 1)."""

    def __init__(self, *args, poisoned=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.poisoned, self.calls = set(poisoned), 0

    def fit(self, hp, model, x, y, **kwargs):
        self.calls += 1
        if self.calls in self.poisoned:  # NaN output weights: a NaN loss whatever the activations
            last = [layer for layer in model.layers if layer.weights][-1]  # (NaN inputs are not: relu(NaN) is 0)
            last.set_weights([np.full_like(w, np.nan) for w in last.get_weights()])
        return super().fit(hp, model, x, y, **kwargs)


def run_tuner(tmp_path, uri, hypermodel, max_trials, max_failures=3):
    from tuning.oracles import make_oracle
    from tuning.tracking import Tracker
    from tuning.tuner import ZooTuner

    tracker = Tracker(uri, "failures")
    parent = tracker.start_parent(name="search", params={}, tags={})
    oracle = make_oracle("random", objective=kt.Objective("val_accuracy", "max"),
                         max_trials=max_trials, max_epochs=2, seed=0,
                         max_consecutive_failures=max_failures)
    tuner = ZooTuner(oracle=oracle, hypermodel=hypermodel, directory=str(tmp_path / "kt"),
                     project_name="p", tracker=tracker, parent_run_id=parent, max_epochs=2,
                     overwrite=True)
    return tuner, tracker, parent


def test_a_nan_trial_is_failed_in_keras_tuner_and_mlflow_and_the_search_goes_on(tmp_path, iris, store):
    hypermodel = PoisonedHyperModel(["mlp"], input_shape=(4,), num_outputs=3, task="multiclass",
                                    poisoned={2})
    tuner, tracker, parent = run_tuner(tmp_path, store, hypermodel, max_trials=3)
    tuner.search(iris.X_train, iris.y_train, validation_data=(iris.X_val, iris.y_val), verbose=0)
    statuses = [tuner.oracle.trials[t].status for t in sorted(tuner.oracle.trials)]
    assert statuses == ["COMPLETED", "FAILED", "COMPLETED"]
    client, runs = trial_runs(store, parent)
    by_trial = {run.data.tags[TRIAL_TAG]: run for run in runs}
    assert by_trial["1"].info.status == "FAILED"
    assert "NaN" in by_trial["1"].data.tags["zoo.failure_reason"]
    assert by_trial["0"].info.status == by_trial["2"].info.status == "FINISHED"


def test_consecutive_failures_stop_the_search_with_a_clear_message(tmp_path, iris):
    hypermodel = PoisonedHyperModel(["mlp"], input_shape=(4,), num_outputs=3, task="multiclass",
                                    poisoned={1, 2, 3, 4})
    with pytest.raises(SearchFailed, match="search stopped: 2 consecutive trials failed"):
        search(iris, algorithm="random", families=["mlp"], hypermodel=hypermodel, max_trials=4, max_epochs=2,
               max_consecutive_failures=2, directory=str(tmp_path / "s"), tracking=False,
               progress=False)
    assert hypermodel.calls == 2


def test_cross_validation_scores_are_the_mean_over_folds(tmp_path, iris, store):
    """Each fold trains the trial's one model from the same start (weights and optimizer as
    built), so its train function is traced once a trial, not once a fold."""
    from sklearn.model_selection import StratifiedKFold

    fits, starts = [], []

    class Recording(ZooHyperModel):
        def fit(self, hp, model, x=None, y=None, validation_data=None, **kwargs):
            starts.append((model, [w.copy() for w in model.get_weights()],
                           [np.array(v) for v in model.optimizer.variables]))
            history = super().fit(hp, model, x, y, validation_data=validation_data, **kwargs)
            fits.append((x, validation_data, max(history.history["val_accuracy"])))
            starts[-1] += (model.train_function,)
            return history

    hypermodel = Recording(["mlp"], input_shape=iris.input_shape, num_outputs=3, task="multiclass")
    result = search(iris, algorithm="random", families=["mlp"], max_trials=1, max_epochs=2, cv_folds=3, seed=0,
                    directory=str(tmp_path / "search"), tracking_uri=store, hypermodel=hypermodel,
                    progress=False, retrain=False)
    # the folds are scikit-learn's stratified folds of train + validation, rebuilt here
    X = np.concatenate([iris.X_train, iris.X_val])
    y = np.concatenate([iris.y_train, iris.y_val])
    splits = list(StratifiedKFold(n_splits=3, shuffle=True, random_state=0).split(X, y))
    assert len(fits) == 3
    model, weights, optimizer, traced = starts[0]
    assert all(v.size == 1 or not v.any() for v in optimizer)  # as built: no step taken yet
    for other, other_weights, other_optimizer, other_traced in starts[1:]:
        assert other is model and other_traced is traced
        for first, later in zip([*weights, *optimizer], [*other_weights, *other_optimizer]):
            np.testing.assert_array_equal(first, later)
    for (x_fit, (x_val, y_val), _), (train_index, val_index) in zip(fits, splits):
        np.testing.assert_array_equal(x_fit, X[train_index])
        np.testing.assert_array_equal(x_val, X[val_index])
        np.testing.assert_array_equal(y_val, y[val_index])
    client, runs = trial_runs(store, result.run_id)
    run = runs[0]
    folds = [max(p.value for p in client.get_metric_history(run.info.run_id, f"fold{i}_val_accuracy"))
             for i in range(3)]
    assert folds == pytest.approx([best for _, _, best in fits])  # what each fold's fit reported
    assert run.data.metrics["score"] == pytest.approx(np.mean(folds), rel=1e-6)
    assert run.data.metrics["val_accuracy_cv_std"] == pytest.approx(np.std(folds), rel=1e-5, abs=1e-7)
    assert result.best_score == pytest.approx(np.mean(folds), rel=1e-6)


@pytest.mark.parametrize("algorithm", ["random", "grid", "bayesian", "hyperband", "evolution", "tpe"])
def test_each_algorithm_runs_end_to_end(tmp_path, algorithm, iris):
    result = search(iris, families=["perceptron"], algorithm=algorithm, max_trials=3, max_epochs=2,
                    directory=str(tmp_path / "s"), tracking=False, progress=False, retrain=False,
                    params={"learning_rate": 0.05, "optimizer": "adam"})
    trials = result.trials
    assert 1 <= len(trials) <= 3
    assert (trials.status == "COMPLETED").all()
    assert result.best_score == pytest.approx(trials.score.max())  # val_accuracy: higher is better
    with open(tmp_path / "s" / "trials" / "oracle.json") as handle:
        state = json.load(handle)  # the oracle that ran saved its own kind of state
    assert {"alpha", "beta"} <= set(state) if algorithm == "bayesian" else "alpha" not in state
    assert ("population_size" in state) == (algorithm == "evolution")
    assert ("n_startup_trials" in state) == (algorithm == "tpe")
    values = [tuple(row) for row in trials[["hp:perceptron_regularizer", "hp:perceptron_regularization"]]
              .itertuples(index=False)]
    if algorithm == "grid":  # Keras Tuner's grid order: the last hyperparameter varies fastest
        assert values == [("none", 0.0), ("none", 0.0025), ("none", 0.005)][:len(values)]
    if algorithm == "hyperband":
        assert set(trials["hp:tuner/epochs"]) <= {1, 2} and "hp:tuner/bracket" in trials
    if algorithm == "evolution":  # population of 2: trial 2 mutates one value of the better parent
        parent = values[int(trials.score.iloc[:2].idxmax())]
        assert sum(a != b for a, b in zip(parent, values[2])) == 1
    if algorithm in ("random", "grid", "evolution"):
        assert len(set(values)) == len(values)  # no configuration tried twice


def test_architecture_search_makes_the_family_a_conditional_hyperparameter(tmp_path):
    digits = load_dataset("digits", shape="image")
    hypermodel = ZooHyperModel(["mlp", "cnn", "resnet"], input_shape=(8, 8, 1), num_outputs=10,
                               task="multiclass")
    hp = kt.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    assert hp.get("family") == "mlp"
    names = {item.name for item in hp.space}
    assert {"family", "mlp_units_count", "train_learning_rate"} <= names
    for family in ("cnn", "resnet"):
        hp.values["family"] = family
        model = hypermodel.build(hp)
        assert model.name == family
    result = search(digits, families=["mlp", "cnn", "resnet"], algorithm="random", max_trials=3,
                    max_epochs=1, seed=3, directory=str(tmp_path / "s"), tracking=False,
                    progress=False, retrain=False)
    assert len(result.trials) == 3


def test_evolution_beats_its_random_initial_population_on_a_toy_objective(tmp_path):
    hp = kt.HyperParameters()
    for index in range(4):
        hp.Int(f"x{index}", 0, 30, default=0)
    oracle = EvolutionOracle(objective=kt.Objective("score", "max"), max_trials=80,
                             population_size=10, sample_size=4, seed=0, hyperparameters=hp)
    oracle._set_project_dir(str(tmp_path), "toy")
    scores = []
    for _ in range(80):
        trial = oracle.create_trial("tuner0")
        values = trial.hyperparameters.values
        score = -sum((values[f"x{i}"] - 17) ** 2 for i in range(4))
        oracle.update_trial(trial.trial_id, {"score": score})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        scores.append(score)
    initial, evolved = scores[:10], scores[-10:]
    assert np.mean(evolved) > np.mean(initial)
    assert max(scores[10:]) > max(initial)


def test_time_budget_stops_new_trials_but_not_the_running_one(tmp_path):
    import time

    from tuning.oracles import make_oracle

    hp = kt.HyperParameters()
    hp.Int("x", 0, 100)
    oracle = make_oracle("random", objective=kt.Objective("score", "max"), max_trials=50,
                         max_epochs=1, seed=0, time_budget=0.5)
    oracle.hyperparameters = hp
    oracle._set_project_dir(str(tmp_path), "budget")
    first = oracle.create_trial("tuner0")
    assert first.status == "RUNNING"
    time.sleep(0.6)  # the running trial outlives the budget and still reports
    oracle.update_trial(first.trial_id, {"score": 1.0})
    first.status = "COMPLETED"
    oracle.end_trial(first)
    assert oracle.create_trial("tuner0").status == "STOPPED"
    assert oracle.trials[first.trial_id].score == 1.0


def test_seed_makes_the_trial_sequence_reproducible(tmp_path, iris):
    kwargs = dict(families=["mlp"], max_trials=3, max_epochs=1, seed=7, tracking=False,
                  progress=False, retrain=False)
    first = search(iris, directory=str(tmp_path / "a"), **kwargs).trials
    second = search(iris, directory=str(tmp_path / "b"), **kwargs).trials
    hp_columns = [c for c in first.columns if c.startswith("hp:")]
    assert first[hp_columns].equals(second[hp_columns])


@pytest.mark.parametrize("kwargs,error,message", [
    ({"algorithm": "genetic"}, UnknownNameError, "Unknown search.algorithm 'genetic'"),
    ({"families": ["mlpp"]}, UnknownNameError, "Did you mean 'mlp'"),
    ({"objective": "val_mae"}, InvalidParameterError, "`search.objective` must be a metric"),
    ({"algorithm": "grid"}, InvalidParameterError, "'train_learning_rate' is continuous"),
    ({"cv_folds": 60}, InvalidParameterError, "`search.cv_folds` must not exceed the smallest class"),
    ({"tracking_uri": "ftp://nowhere"}, InvalidParameterError, "`tracking.uri` has an unknown scheme"),
    ({"tracking_uri": "http://127.0.0.1:9"}, InvalidParameterError, "`tracking.uri` cannot be reached"),
])
def test_bad_input_is_refused_before_anything_is_written(tmp_path, iris, kwargs, error, message):
    arguments = dict(families=["mlp"], max_trials=2, max_epochs=1, progress=False,
                     directory=str(tmp_path / "out" / "search"), tracking_uri=uri_of(tmp_path))
    arguments.update(kwargs)
    with pytest.raises(error, match=message):
        search(iris, **arguments)
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "mlflow.db").exists()


def test_unwritable_output_directory(iris):
    # /sys refuses new entries even to root, where permission bits would not
    with pytest.raises(InvalidParameterError, match="`out` must be a writable directory"):
        search(iris, algorithm="random", families=["mlp"], directory="/sys/zoo-test/search", tracking=False)


def write_config(tmp_path, **overrides):
    config = yaml.safe_load(open(os.path.join(ROOT, "examples", "digits.yaml")))
    config["search"].update({"max_trials": 2, "max_epochs": 2, "algorithm": "random"})
    config["model"]["params"] = {"filters": [8, 16], "dense_units": [16]}
    config["tracking"]["uri"] = uri_of(tmp_path)
    config["export"]["enabled"] = False
    for section, values in overrides.items():
        config[section].update(values)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def zoo_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "keras_zoo", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


@pytest.mark.slow
def test_zoo_run_on_the_digits_example_writes_a_model_that_loads_safely(tmp_path):
    import keras

    import zoo  # noqa: F401  (registers the catalog's custom objects)

    config = write_config(tmp_path)
    result = zoo_here("run", config, "--out", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    model = keras.saving.load_model(tmp_path / "out" / "best_model.keras", safe_mode=True)
    assert model.output_shape == (None, 10)
    assert (tmp_path / "out" / "report" / "report.html").exists()
    assert "best val_accuracy=" in result.stdout


def test_cli_bad_config_exits_2_with_one_line_and_writes_nothing(tmp_path):
    config = write_config(tmp_path, search={"max_trials": -3})
    result = zoo_cli("tune", config, "--out", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: `search.max_trials`: input should be greater than or equal to 1. Received: search.max_trials=-3"]
    assert not (tmp_path / "out").exists() and not (tmp_path / "mlflow.db").exists()


def test_sigkill_mid_search_then_rerun_resumes_without_duplicates(tmp_path):
    import json
    import signal
    import time

    config = tmp_path / "iris.yaml"
    config.write_text(yaml.safe_dump({
        "data": {"source": "iris"},
        "model": {"name": "mlp", "params": {"hidden_units": [8]}},
        "search": {"algorithm": "random", "max_trials": 4, "max_epochs": 4, "seed": 0},
        "tracking": {"uri": uri_of(tmp_path)},
    }))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "keras_zoo", "tune", str(config), "--out", str(out)]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    second_trial = out / "search" / "trials" / "trial_1" / "trial.json"
    deadline = time.monotonic() + 300
    while not second_trial.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    state = json.loads((out / "search" / "zoo_search.json").read_text())
    running = []
    while not running and process.poll() is None and time.monotonic() < deadline:
        _, runs = trial_runs(uri_of(tmp_path), state["parent_run_id"])
        running = [r for r in runs if r.info.status == "RUNNING" and r.data.tags[TRIAL_TAG] == "1"]
        time.sleep(0.1)
    assert process.poll() is None, "the search ended before it could be killed"
    process.send_signal(signal.SIGKILL)  # inside the second trial
    process.wait()
    client, runs = trial_runs(uri_of(tmp_path), state["parent_run_id"])
    assert any(run.info.status == "RUNNING" for run in runs)  # what the dead process left

    result = zoo_here("tune", config, "--out", out, cwd=tmp_path)  # the rerun, in this process
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming: closed 1 run(s) left RUNNING as KILLED" in result.stdout
    assert json.loads((out / "search" / "zoo_search.json").read_text())["parent_run_id"] == state["parent_run_id"]
    client, runs = trial_runs(uri_of(tmp_path), state["parent_run_id"])
    trial_ids = [run.data.tags[TRIAL_TAG] for run in runs]
    assert sorted(trial_ids) == ["0", "1", "2", "3"]  # as configured, none twice
    assert all(run.info.status == "FINISHED" for run in runs)
    assert client.get_run(state["parent_run_id"]).info.status == "FINISHED"
    finished_first = [r for r in runs if r.data.tags[TRIAL_TAG] == "0"][0]
    assert len(client.get_metric_history(finished_first.info.run_id, "val_accuracy")) == 4
