"""`search.pruner`: an unpromising trial stops at an epoch end through the oracle's `update_trial`,
is marked in Keras Tuner and MLflow, and its best epoch still counts."""

import numpy as np
import pytest
from mlflow import MlflowClient

from tuning import search
from tuning.hypermodel import ZooHyperModel
from tuning.tracking import PARENT_TAG, TRIAL_TAG
from zoo.data import load_dataset
from zoo.errors import UnknownNameError

EPOCHS = 8


class Sabotaged(ZooHyperModel):
    """Trials from the fourth on train on shuffled labels: they cannot learn, so a pruner should stop them."""

    calls = 0

    def fit(self, hp, model, x=None, y=None, **kwargs):
        Sabotaged.calls += 1
        if Sabotaged.calls > 3:
            y = np.random.default_rng(Sabotaged.calls).permutation(y)
        return super().fit(hp, model, x, y, **kwargs)


@pytest.fixture(scope="module")
def iris():
    return load_dataset("iris")


def run(iris, tmp_path, pruner, trials=6, tracking=True, algorithm="random"):
    Sabotaged.calls = 0
    hypermodel = Sabotaged(["perceptron"], input_shape=iris.input_shape, num_outputs=3, task="multiclass",
                           params={"learning_rate": 0.05}, tune_training=False)
    tmp_path.mkdir(exist_ok=True)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = search(iris, families=["perceptron"], hypermodel=hypermodel, max_trials=trials, max_epochs=EPOCHS,
                    algorithm=algorithm,
                    pruner=pruner, directory=str(tmp_path / "s"), tracking_uri=uri, progress=False,
                    retrain=False, tracking=tracking)
    if not tracking:
        return result, None, {}
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_run(result.run_id).info.experiment_id],
                              f"tags.`{PARENT_TAG}` = '{result.run_id}'")
    return result, client, {run.data.tags[TRIAL_TAG]: run for run in runs}


def test_the_median_rule_stops_the_trials_that_cannot_learn(iris, tmp_path):
    result, client, runs = run(iris, tmp_path, "median")
    table = result.trials.set_index("trial_id")
    assert table.loc[["0", "1", "2"], "pruned_after_epoch"].isna().all()  # the first three run out
    pruned = table[table.pruned_after_epoch.notna()]
    assert set(pruned.index) == {"3", "4", "5"}  # every sabotaged trial, and only those
    assert (pruned.status == "COMPLETED").all()
    for trial_id, row in pruned.iterrows():
        epochs = int(row.pruned_after_epoch)
        assert 2 <= epochs < EPOCHS  # after the warm-up epoch, before the end
        trial_run = runs[trial_id]
        assert trial_run.info.status == "FINISHED"
        assert trial_run.data.tags["zoo.pruned"] == "true"
        assert trial_run.data.tags["zoo.pruned_after_epoch"] == str(epochs)
        history = client.get_metric_history(trial_run.info.run_id, "val_accuracy")
        assert len(history) == epochs  # it stopped there
        assert row.score == pytest.approx(max(point.value for point in history))  # its best epoch counts
    for trial_id in ("0", "1", "2"):
        assert "zoo.pruned" not in runs[trial_id].data.tags
        assert len(client.get_metric_history(runs[trial_id].info.run_id, "val_accuracy")) == EPOCHS
    import json

    state = json.loads((tmp_path / "s" / "trials" / "oracle.json").read_text())
    assert state["pruner"] == "median" and sorted(state["pruned_trials"]) == ["3", "4", "5"]
    message = json.loads((tmp_path / "s" / "trials" / "trial_3" / "trial.json").read_text())["message"]
    assert message == f"pruned after epoch {int(table.loc['3', 'pruned_after_epoch'])} (median rule)"


def test_successive_halving_stops_sabotaged_trials_and_no_pruner_stops_none(iris, tmp_path):
    result, _, _ = run(iris, tmp_path / "sh", "successive_halving", tracking=False)
    table = result.trials.set_index("trial_id")
    assert table.loc["0", "pruned_after_epoch"] != table.loc["0", "pruned_after_epoch"]  # NaN: the first runs out
    assert table.loc[["3", "4", "5"], "pruned_after_epoch"].notna().all()
    result, _, _ = run(iris, tmp_path / "none", "none", trials=4, tracking=False)
    assert result.trials.pruned_after_epoch.isna().all()


def test_pruning_works_with_tpe_whose_study_is_its_own(iris, tmp_path):
    result, _, _ = run(iris, tmp_path / "tpe", "median", tracking=False, algorithm="tpe")
    table = result.trials.set_index("trial_id")
    assert set(table[table.pruned_after_epoch.notna()].index) == {"3", "4", "5"}


def test_an_unknown_pruner_is_refused_with_its_choices(iris, tmp_path):
    with pytest.raises(UnknownNameError, match="search.pruner"):
        search(iris, algorithm="random", families=["mlp"], pruner="hyperband", directory=str(tmp_path / "s"), tracking=False)
