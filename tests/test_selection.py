"""Selection that does not overfit a small validation split: a table below `search.cv_below` rows
is cross-validated automatically, and the best configuration is refit on the training and
validation rows together for the epochs its validation fit chose (`search.refit`)."""

import numpy as np
import pandas as pd
import pytest

from tuning import search
from tuning.hypermodel import ZooHyperModel
from tuning.tuner import BEST_EPOCH
from zoo.data import dataset_from_frame


@pytest.fixture(scope="module")
def table():
    """A small regression table (a category among the numbers): 150 rows, 105 to train."""
    rng = np.random.default_rng(0)
    n = 150
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                          "c": rng.choice(["x", "y", "z"], n)})
    frame["target"] = 2 * frame.a + frame.b + (frame.c == "x") + rng.normal(scale=0.3, size=n)
    return dataset_from_frame(frame, target="target", seed=0)


class Recording(ZooHyperModel):
    """Records the rows each fit trains on and the epochs it is given."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fits = []

    def fit(self, hp, model, x=None, y=None, validation_data=None, **kwargs):
        self.fits.append((len(x), validation_data is not None, kwargs.get("epochs")))
        return super().fit(hp, model, x, y, validation_data=validation_data, **kwargs)


def recording(table):
    return Recording(["mlp"], input_shape=table.input_shape, num_outputs=1, task="regression",
                     compose=table.compose)


def run(table, tmp_path, hypermodel=None, **options):
    options = {"max_epochs": 3, "max_trials": 2, **options}
    return search(table, algorithm="random", families=["mlp"], seed=0,
                  directory=str(tmp_path / "search"), tracking=False, hypermodel=hypermodel,
                  **options)


def test_a_table_below_cv_below_rows_is_cross_validated_and_says_so(table, tmp_path, capsys):
    hypermodel = recording(table)
    rows = len(table.X_train) + len(table.X_val)
    result = run(table, tmp_path, hypermodel, cv_below=rows + 1, refit=False)
    assert f"trials are scored by 5-fold cross-validation: {rows} rows, below search.cv_below " \
           f"({rows + 1})" in capsys.readouterr().out
    trial_fits = hypermodel.fits[:-1]  # the last one is the retrain
    assert len(trial_fits) == 2 * 5
    assert sorted({n for n, _, _ in trial_fits}) == sorted({rows - rows // 5, rows - (rows + 4) // 5})
    assert result._plan.cv_folds == 5
    best = result._plan.oracle.trials[result.trial_id]
    assert 1 <= best.metrics.get_best_value(BEST_EPOCH) <= 3


def test_a_table_of_cv_below_rows_or_more_keeps_its_validation_split(table, tmp_path, capsys):
    hypermodel = recording(table)
    rows = len(table.X_train) + len(table.X_val)
    result = run(table, tmp_path, hypermodel, cv_below=rows, refit=False)
    assert "cross-validation" not in capsys.readouterr().out
    assert [n for n, _, _ in hypermodel.fits] == [len(table.X_train)] * 3
    assert result._plan.cv_folds is None


def test_the_best_is_refit_on_training_and_validation_rows_for_its_best_epoch(table, tmp_path):
    hypermodel = recording(table)
    result = run(table, tmp_path, hypermodel, cv_below=0, max_epochs=4)
    plan = result._plan
    validation_fit, refit = hypermodel.fits[-2:]
    assert validation_fit == (len(table.X_train), True, 4)
    # the epochs: those after which the validation fit's objective was best
    losses = result.history.history["val_loss"]
    assert plan.refit_epochs == int(np.argmin(losses)) + 1
    assert refit == (len(table.X_train) + len(table.X_val), False, plan.refit_epochs)
    # the model shipped is the refit one: not the validation fit's (its predictions are kept)
    shipped = result.best_model.predict(table.X_val, verbose=0)
    assert not np.allclose(shipped, plan.validation_predictions)


def test_without_refit_the_validation_fit_is_the_model(table, tmp_path):
    hypermodel = recording(table)
    result = run(table, tmp_path, hypermodel, cv_below=0, refit=False)
    assert hypermodel.fits[-1] == (len(table.X_train), True, 3)
    assert result._plan.refit_epochs is None


def test_a_cross_validated_best_is_refit_for_its_folds_mean_best_epoch(table, tmp_path):
    hypermodel = recording(table)
    rows = len(table.X_train) + len(table.X_val)
    result = run(table, tmp_path, hypermodel, cv_below=rows + 1, max_epochs=4)
    best = result._plan.oracle.trials[result.trial_id]
    expected = max(1, round(best.metrics.get_best_value(BEST_EPOCH)))
    assert result._plan.refit_epochs == expected
    assert hypermodel.fits[-1] == (rows, False, expected)


def test_an_ensemble_averages_the_best_distinct_trials_retrained_as_the_best_is(table, tmp_path):
    result = run(table, tmp_path, max_trials=3, ensemble_size=2, refit=False)
    best, second = result.members
    assert best == result.trial_id and second != best
    oracle = result._plan.oracle
    assert oracle.trials[second].score >= oracle.trials[best].score  # val_loss: the next best
    assert [layer.name for layer in result.best_model.layers
            if layer.name.startswith("member_")] == ["member_0", "member_1"]
    # each member is its trial retrained as the best is (seeded as its trial was): the same
    # predictions again, and the shipped model outputs their mean
    members = [result.retrain(trial_id)[0].predict(table.X_test, verbose=0) for trial_id in (best, second)]
    np.testing.assert_allclose(result.best_model.predict(table.X_test, verbose=0),
                               np.mean(members, axis=0), rtol=1e-5, atol=1e-5)
