"""Checkpoints inside a trial: a trial killed mid-fit resumes at its next epoch with its MLflow
history continuing, and a later Hyperband round starts from its predecessor's weights."""

import json
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
from mlflow import MlflowClient

from tuning import search
from tuning.hypermodel import ZooHyperModel
from tuning.tracking import PARENT_TAG, TRIAL_TAG
from zoo.data import load_dataset

EPOCHS = 6
KILL_AT = 3  # 0-based: epochs 0, 1, 2 complete, the process dies as epoch 3 begins

CHILD = r"""
import os, signal, sys
from keras_zoo.cli import collect_less_while_importing  # the collector as a `zoo` process has it
collect_less_while_importing()
import keras
from tuning import search
from tuning.hypermodel import ZooHyperModel
from zoo.data import load_dataset

class Die(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == %d:
            os.kill(os.getpid(), signal.SIGKILL)

class Killed(ZooHyperModel):
    def fit(self, hp, model, x=None, y=None, callbacks=(), **kwargs):
        return super().fit(hp, model, x, y, callbacks=[*callbacks, Die()], **kwargs)

data = load_dataset("iris")
hypermodel = Killed(["mlp"], input_shape=data.input_shape, num_outputs=3, task="multiclass",
                    params={"hidden_units": (8,)}, tune_training=False)
search(data, algorithm="random", families=["mlp"], max_trials=1, max_epochs=%d, seed=0, directory=sys.argv[1],
       tracking_uri=sys.argv[2], progress=False, retrain=False, hypermodel=hypermodel)
""" % (KILL_AT, EPOCHS)


class Watched(ZooHyperModel):
    """Records the epochs each fit runs and the weights it starts from."""

    fits = []

    def fit(self, hp, model, x=None, y=None, callbacks=(), **kwargs):
        seen = {"trial": hp.values.get("tuner/trial_id"), "epochs": [], "losses": []}

        class Watch(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                seen["start_weights"] = [w.copy() for w in self.model.get_weights()]

            def on_epoch_begin(self, epoch, logs=None):
                seen["epochs"].append(epoch)

            def on_epoch_end(self, epoch, logs=None):
                seen["losses"].append(logs["loss"])

            def on_train_end(self, logs=None):
                seen["end_weights"] = [w.copy() for w in self.model.get_weights()]

        Watched.fits.append(seen)
        return super().fit(hp, model, x, y, callbacks=[*callbacks, Watch()], **kwargs)


def test_a_trial_killed_mid_fit_resumes_at_its_next_epoch_and_its_history_goes_on(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    directory = tmp_path / "search"
    child = subprocess.run([sys.executable, "-c", CHILD, str(directory), uri], capture_output=True,
                           text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
    parent = json.loads((directory / "zoo_search.json").read_text())["parent_run_id"]
    client = MlflowClient(uri)
    experiment = client.get_run(parent).info.experiment_id
    (killed,) = client.search_runs([experiment], f"tags.`{PARENT_TAG}` = '{parent}'")
    assert killed.info.status == "RUNNING"
    assert [p.step for p in client.get_metric_history(killed.info.run_id, "val_accuracy")] == [0, 1, 2]

    data = load_dataset("iris")
    Watched.fits = []
    hypermodel = Watched(["mlp"], input_shape=data.input_shape, num_outputs=3, task="multiclass",
                         params={"hidden_units": (8,)}, tune_training=False)
    result = search(data, algorithm="random", families=["mlp"], max_trials=1, max_epochs=EPOCHS, seed=0,
                    directory=str(directory), tracking_uri=uri, progress=False, retrain=False,
                    hypermodel=hypermodel)
    assert [fit["epochs"] for fit in Watched.fits] == [[KILL_AT, 4, 5]]  # from the next epoch on
    (run,) = client.search_runs([experiment], f"tags.`{PARENT_TAG}` = '{parent}'")
    assert run.info.run_id == killed.info.run_id and run.info.status == "FINISHED"  # the same run goes on
    assert run.data.tags["zoo.resumed_at_epoch"] == str(KILL_AT + 1) and run.data.tags[TRIAL_TAG] == "0"
    history = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert [p.step for p in history] == list(range(EPOCHS))  # each epoch once
    assert result.best_score == pytest.approx(max(p.value for p in history))  # every epoch scored
    assert not (directory / "trials" / "trial_0" / "backup").exists()  # the backup goes with the fit


def test_a_later_hyperband_round_starts_from_its_predecessors_weights(tmp_path):
    data = load_dataset("iris")
    Watched.fits = []
    hypermodel = Watched(["perceptron"], input_shape=data.input_shape, num_outputs=3, task="multiclass",
                         params={"learning_rate": 0.05}, tune_training=False)
    directory = tmp_path / "search"
    # max_epochs 3, factor 3: three 1-epoch trials, then the best goes on for epochs 2 and 3
    result = search(data, families=["perceptron"], algorithm="hyperband", max_trials=4, max_epochs=3,
                    seed=0, directory=str(directory), tracking=False, progress=False, retrain=False,
                    hypermodel=hypermodel)
    trials = result.trials.set_index("trial_id")
    promoted = trials[trials["hp:tuner/trial_id"].notna()]
    assert len(promoted) == 1
    successor = promoted.index[0]
    predecessor = promoted.loc[successor, "hp:tuner/trial_id"]
    first_round = [fit for fit in Watched.fits if fit["trial"] is None]
    (continued,) = [fit for fit in Watched.fits if fit["trial"] == predecessor]
    before = first_round[int(predecessor)]
    assert continued["epochs"] == [1, 2]  # from tuner/initial_epoch, not from 0
    # it starts from where the predecessor ended: its first epoch's loss is below what a fresh
    # model's first epoch reaches (the predecessor's own first epoch, the same configuration)
    assert continued["losses"][0] < before["losses"][0]
    for start, end in zip(continued["start_weights"], before["end_weights"]):
        np.testing.assert_array_equal(start, end)  # exactly the weights the predecessor ended with
    weights = sorted(p.parent.name for p in (directory / "trials").glob("trial_*/final.weights.h5"))
    assert f"trial_{predecessor}" not in weights  # handed on, then deleted
