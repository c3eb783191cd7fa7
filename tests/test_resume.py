"""Resume after SIGKILL for every algorithm: a search process killed inside its third trial,
then the same search run again, finishes the configured trials once each, keeps the trials that
had finished as they were, and carries the algorithm's own state (Hyperband's brackets,
evolution's population, the Bayesian and TPE oracles' observations) and the spent time budget over."""

import json
import signal
import subprocess
import sys

import pytest
from mlflow import MlflowClient

from tuning import search
from tuning.tracking import PARENT_TAG, TRIAL_TAG
from zoo.data import load_dataset

# random search: the CLI test in test_tuning.py (SIGKILL from outside, `zoo tune` run again)
ALGORITHMS = ["grid", "bayesian", "hyperband", "evolution", "tpe"]
TRIALS = 4

# the child: the same search, with a hypermodel that SIGKILLs its own process in the third fit
CHILD = r"""
import os, signal, sys
from keras_zoo.cli import collect_less_while_importing  # the collector as a `zoo` process has it
collect_less_while_importing()
from tuning import search
from tuning.hypermodel import ZooHyperModel
from zoo.data import load_dataset

algorithm, directory, uri = sys.argv[1:4]
calls = []

class Killed(ZooHyperModel):
    def fit(self, hp, model, x=None, y=None, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().fit(hp, model, x, y, **kwargs)

data = load_dataset("iris")
hypermodel = Killed(["perceptron"], input_shape=data.input_shape, num_outputs=3, task="multiclass",
                    params={"learning_rate": 0.05})
search(data, families=["perceptron"], algorithm=algorithm, max_trials=%d, max_epochs=4, seed=0,
       time_budget=3600, directory=directory, tracking_uri=uri, progress=False, retrain=False,
       hypermodel=hypermodel)
""" % TRIALS


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """Every algorithm's search killed in its third trial, the child processes run side by side
    (each one's own sqlite store: SQLite takes one writer at a time)."""
    root = tmp_path_factory.mktemp("killed")
    children = {}
    for algorithm in ALGORITHMS:
        directory = root / algorithm
        directory.mkdir()
        uri = f"sqlite:///{directory}/mlflow.db"
        children[algorithm] = (directory / "search", uri, subprocess.Popen(
            [sys.executable, "-c", CHILD, algorithm, str(directory / "search"), uri],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    outcomes = {}
    for algorithm, (directory, uri, child) in children.items():
        try:
            _, stderr = child.communicate(timeout=300)
        finally:
            if child.poll() is None:
                child.kill()
        outcomes[algorithm] = (directory, uri, child.returncode, stderr)
    return outcomes


def trial_files(directory):
    trials = {}
    for path in sorted((directory / "trials").glob("trial_*/trial.json")):
        trial = json.loads(path.read_text())
        trials[trial["trial_id"]] = trial
    return trials


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_search_killed_mid_trial_resumes_with_its_algorithms_state(algorithm, killed):
    directory, store, returncode, stderr = killed[algorithm]
    assert returncode == -signal.SIGKILL, stderr[-3000:]
    before = trial_files(directory)
    finished = {tid: t for tid, t in before.items() if t["status"] == "COMPLETED"}
    assert len(finished) == 2  # killed inside the third trial
    oracle_state = json.loads((directory / "trials" / "oracle.json").read_text())
    spent = oracle_state["budget_spent_s"]
    assert spent > 0

    data = load_dataset("iris")
    result = search(data, families=["perceptron"], algorithm=algorithm, max_trials=TRIALS, max_epochs=4,
                    seed=0, time_budget=3600, directory=str(directory), tracking_uri=store,
                    progress=False, retrain=False, params={"learning_rate": 0.05})
    after = trial_files(directory)
    for trial_id, trial in finished.items():  # kept as they were, not rerun
        assert after[trial_id]["hyperparameters"]["values"] == trial["hyperparameters"]["values"]
        assert after[trial_id]["score"] == trial["score"]
    values = [tuple(sorted((k, v) for k, v in t["hyperparameters"]["values"].items()
                           if not k.startswith("tuner/"))) for t in after.values()]
    completed = [t for t in after.values() if t["status"] == "COMPLETED"]
    assert 3 <= len(completed) <= TRIALS and len(completed) == len(result.trials)

    client = MlflowClient(store)
    runs = client.search_runs([client.get_run(result.run_id).info.experiment_id],
                              f"tags.`{PARENT_TAG}` = '{result.run_id}'")
    assert sorted(run.data.tags[TRIAL_TAG] for run in runs) == sorted(t["trial_id"] for t in completed)
    assert all(run.info.status == "FINISHED" for run in runs)  # the killed attempt counted once

    state = json.loads((directory / "trials" / "oracle.json").read_text())
    assert state["budget_spent_s"] > spent  # the budget went on from what was spent
    if algorithm == "grid":  # the grid goes on where it stopped: no point twice, in grid order
        assert len(set(values)) == len(values)
        regularization = [dict(v)["perceptron_regularization"] for v in values]
        assert regularization == sorted(regularization)
    if algorithm == "hyperband":  # the bracket bookkeeping survived: rounds point at real trials
        for trial in after.values():
            hp = trial["hyperparameters"]["values"]
            if hp.get("tuner/trial_id"):
                assert hp["tuner/trial_id"] in after
    if algorithm == "evolution":  # population of 2: each later trial mutates one value of the
        trials = list(after.values())  # better of the two trials that finished just before it
        for k in range(2, len(trials)):
            pair = trials[k - 2:k]
            best = max(t["score"] for t in pair)
            parents = [dict(values[k - 2 + i]) for i, t in enumerate(pair) if t["score"] == best]
            assert any(sum(dict(values[k])[name] != p[name] for name in p) == 1 for p in parents), k
        assert state["population_size"] == 2
    if algorithm in ("bayesian", "tpe"):  # TPE rebuilds its Optuna study from these trials
        assert len(state["tried_so_far"]) == len(after)
        assert ("n_startup_trials" in state) == (algorithm == "tpe")


def small_oracle(folder, algorithm):
    """The oracle `search` makes for `algorithm`, over one integer, saving to `folder`/project."""
    from keras_tuner.engine import hyperparameters as hp_module

    from tuning.oracles import make_oracle

    made = make_oracle(algorithm, objective="val_loss", max_trials=5, max_epochs=2, seed=0)
    space = hp_module.HyperParameters()
    space.Int("units", 1, 8)
    made._set_project_dir(str(folder), "project")
    made.update_space(space)
    return made


def test_a_state_save_interrupted_mid_write_leaves_the_last_state_whole(tmp_path, monkeypatch):
    """Keras Tuner truncates `oracle.json` and then writes it: a chief SIGKILLed in between left an
    empty file, and the search run again failed to reload (a JSONDecodeError). Each state file is
    now written to a temp file renamed over it; a save that dies before the rename (here: the
    rename fails) leaves the previous state, which still reloads."""
    import os

    def oracle():
        return small_oracle(tmp_path, "random")

    first = oracle()
    first.create_trial("tuner0")  # saves the oracle
    saved = (tmp_path / "project" / "oracle.json").read_text()
    first.seed += 1  # the next save differs

    def killed(*args):
        raise OSError("killed before the rename")

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(OSError, match="killed before the rename"):
        first.save()
    monkeypatch.undo()
    assert (tmp_path / "project" / "oracle.json").read_text() == saved
    assert [p.name for p in (tmp_path / "project").iterdir() if ".tmp-" in p.name] == []
    again = oracle()
    again.reload()
    assert again.seed == first.seed - 1 and list(again.trials) == ["0"]


@pytest.mark.parametrize("algorithm", ["random", *ALGORITHMS])
def test_a_process_killed_as_a_trial_ended_does_not_run_that_trial_again(tmp_path, algorithm):
    """Keras Tuner's `end_trial` saves the state while the trial is still among the ongoing ones
    (it drops it after the save), and a reload sends the ongoing trials back to be retried: a
    chief SIGKILLed in that window ran the finished trial again when rerun, and MLflow had it twice
    (seen in `test_distributed.py`'s chief kill). The state on disk right after `end_trial` is what
    such a kill leaves; reloaded from it, the next trial is a new one."""
    from keras_tuner.engine.trial import TrialStatus

    def oracle():
        return small_oracle(tmp_path, algorithm)

    first = oracle()
    trial = first.create_trial("tuner0")
    first.update_trial(trial.trial_id, {"val_loss": 0.5})
    trial.status = TrialStatus.COMPLETED
    first.end_trial(trial)  # saves; the process is killed here, before any other save
    again = oracle()
    again.reload()
    assert again.trials[trial.trial_id].status == TrialStatus.COMPLETED
    following = again.create_trial("tuner0")
    assert following.trial_id != trial.trial_id and following.status == TrialStatus.RUNNING


# the child: a search SIGKILLed as its second trial ends, either just after its MLflow run ended
# (the oracle not yet told) or just after the oracle was told
ENDING = r"""
import os, signal, sys
from keras_tuner.src.engine import base_tuner
from tuning import search, tracking
from zoo.data import load_dataset

window, directory, uri = sys.argv[1:4]
ended = []

def killing(original):
    def wrapped(*args, **kwargs):
        result = original(*args, **kwargs)
        ended.append(1)
        if len(ended) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return wrapped

if window == "after_run_ended":
    tracking.Tracker.end_trial = killing(tracking.Tracker.end_trial)
else:
    base_tuner.BaseTuner.on_trial_end = killing(base_tuner.BaseTuner.on_trial_end)
search(load_dataset("iris"), families=["perceptron"], algorithm="random", max_trials=3, max_epochs=2,
       seed=0, directory=directory, tracking_uri=uri, progress=False, retrain=False,
       params={"learning_rate": 0.05})
"""


@pytest.mark.parametrize("window", ["after_run_ended", "after_oracle_told"])
def test_a_process_killed_as_a_trial_ended_logs_every_trial_once_and_finished(tmp_path, window):
    """A process killed between ending a trial's MLflow run and telling the oracle: the oracle runs
    the trial again and its earlier run is replaced. Killed after the oracle was told: the trial
    stays ended, and so does its run (it was ended first). Either way the rerun leaves every trial
    logged once, FINISHED (seen once in `test_distributed.py`'s chief kill: a run left RUNNING,
    then KILLED, for a trial the oracle had as ended)."""
    directory, uri = tmp_path / "search", f"sqlite:///{tmp_path}/mlflow.db"
    child = subprocess.run([sys.executable, "-c", ENDING, window, str(directory), uri],
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
    result = search(load_dataset("iris"), families=["perceptron"], algorithm="random", max_trials=3,
                    max_epochs=2, seed=0, directory=str(directory), tracking_uri=uri, progress=False,
                    retrain=False, params={"learning_rate": 0.05})
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_run(result.run_id).info.experiment_id],
                              f"tags.`{PARENT_TAG}` = '{result.run_id}'")
    assert sorted(run.data.tags[TRIAL_TAG] for run in runs) == sorted(t["trial_id"] for t in trial_files(directory).values())
    assert len(runs) == 3
    assert [run.info.status for run in runs] == ["FINISHED"] * 3
