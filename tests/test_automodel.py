"""`AutoModel` is a scikit-learn estimator (the contract's checks, `clone`, `cross_val_score`,
`GridSearchCV`), every fit is a fresh search unless asked to resume, and the one declaration of the
options gives `AutoModel`, `tuning.search()` and the config the same defaults."""

import os
import pathlib
import re

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.metrics import accuracy_score

ROOT = pathlib.Path(__file__).resolve().parents[1]

# the estimator checks that need no training (sklearn.utils.estimator_checks)
CONTRACT_CHECKS = ("check_parameters_default_constructible", "check_get_params_invariance",
                   "check_set_params", "check_no_attributes_set_in_init", "check_estimators_unfitted",
                   "check_do_not_raise_errors_in_init_or_set_params", "check_estimator_repr")


@pytest.mark.parametrize("check", CONTRACT_CHECKS)
@pytest.mark.parametrize("name", ["AutoModel", "AutoClassifier", "AutoRegressor"])
def test_the_estimator_contract_checks_that_need_no_training_pass(name, check):
    from sklearn.utils import estimator_checks

    from keras_zoo import automodel

    estimator_class = getattr(automodel, name)
    getattr(estimator_checks, check)(name, estimator_class())


def test_clone_keeps_every_parameter_and_the_declared_defaults():
    from sklearn.base import clone, is_classifier, is_regressor

    from keras_zoo.automodel import AutoClassifier, AutoModel, AutoRegressor

    model = AutoModel(max_trials=3, families=("mlp", "perceptron"), tracking=False)
    copy = clone(model)
    assert copy.get_params() == model.get_params() and copy is not model
    assert copy.max_trials == 3 and copy.algorithm == "hyperband"
    assert is_classifier(AutoClassifier()) and is_regressor(AutoRegressor())
    assert is_classifier(AutoModel(task="binary")) and is_regressor(AutoModel(task="regression"))
    assert not is_classifier(AutoModel()) and not is_regressor(AutoModel())


def test_before_fit_predict_raises_not_fitted_error():
    from sklearn.exceptions import NotFittedError

    from keras_zoo import AutoModel

    for method in ("predict", "predict_proba"):
        with pytest.raises(NotFittedError):
            getattr(AutoModel(), method)(np.zeros((2, 4)))
    with pytest.raises(NotFittedError):
        AutoModel().score(np.zeros((2, 4)), [0, 1])


def test_a_parameter_out_of_range_is_refused_at_fit_naming_the_parameter(tmp_path, monkeypatch):
    from keras_zoo import AutoModel
    from zoo.errors import InvalidParameterError

    monkeypatch.chdir(tmp_path)
    X, y = load_iris(return_X_y=True)
    with pytest.raises(InvalidParameterError, match=r"`max_trials`: input should be greater than or "
                                                    r"equal to 1. Received: max_trials=-3"):
        AutoModel(max_trials=-3).fit(X, y)
    with pytest.raises(InvalidParameterError, match=r"`tracking_uri`"):
        AutoModel(tracking_uri=5).fit(X, y)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("loader", [load_breast_cancer, load_iris], ids=["binary", "multiclass"])
def test_cross_val_score_runs_one_fresh_search_per_fold(loader, tmp_path, monkeypatch):
    """With the default directory and tracking: each fold is its own search (its own MLflow parent
    run), the integer labels stay integers, nothing but MLflow's store is left in the folder."""
    from sklearn.model_selection import cross_validate

    from keras_zoo import AutoModel

    monkeypatch.chdir(tmp_path)
    X, y = loader(return_X_y=True)
    done = cross_validate(AutoModel(max_trials=1, max_epochs=1), X, y, cv=2, return_estimator=True,
                          return_indices=True, error_score="raise")
    first, second = done["estimator"]
    assert first.run_id_ != second.run_id_
    for estimator, test, score in zip(done["estimator"], done["indices"]["test"], done["test_score"]):
        predicted = estimator.predict(X[test])  # the labels' own type: accuracy_score takes them
        assert predicted.dtype == y.dtype and score == accuracy_score(y[test], predicted)
    assert sorted(os.listdir(tmp_path)) == ["mlflow.db", "mlruns"]


def test_grid_search_cv_over_one_parameter_refits_the_best(tmp_path, monkeypatch):
    from sklearn.model_selection import GridSearchCV

    from keras_zoo.automodel import AutoClassifier

    monkeypatch.chdir(tmp_path)
    X, y = load_iris(return_X_y=True)
    grid = GridSearchCV(AutoClassifier(max_trials=1, max_epochs=1, tracking=False),
                        {"max_epochs": [1, 2]}, cv=2, error_score="raise").fit(X, y)
    assert grid.best_params_["max_epochs"] in (1, 2)
    assert grid.best_estimator_.max_epochs == grid.best_params_["max_epochs"]
    assert grid.predict(X[:5]).dtype == y.dtype
    assert os.listdir(tmp_path) == []  # no tracking, no directory: nothing left


def test_a_fit_says_how_the_model_stands_against_gradient_boosting():
    """`baseline_`: HistGradientBoosting fitted on the fit's training rows, scored beside the model
    on its validation rows (recomputed here on the same split)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from keras_zoo import AutoModel
    from zoo.data import split_indices

    X, y = load_breast_cancer(return_X_y=True)
    model = AutoModel(max_trials=1, max_epochs=1, tracking=False).fit(X, y)
    train, val, _ = split_indices(len(X), stratify=y, test_size=0.0, val_size=0.1, seed=0)
    boosting = HistGradientBoostingClassifier(random_state=0).fit(X[train], y[train])
    assert model.baseline_score_ == pytest.approx(boosting.score(X[val], y[val]))
    assert model.baseline_.model_score == pytest.approx(model.score(X[val], y[val]))
    verdict = model.baseline_.verdict()
    assert ("beats" if model.baseline_.model_wins else "loses to") in verdict


def test_two_new_automodels_in_one_folder_each_search_their_own_data(tmp_path, monkeypatch):
    """The second fit is not the first's search reloaded (it was, before: same folder, no
    fingerprint); `warm_start=True` resumes the previous search (the same MLflow parent run)."""
    from keras_zoo import AutoModel

    monkeypatch.chdir(tmp_path)
    X_cancer, y_cancer = load_breast_cancer(return_X_y=True)
    X_wine, y_wine = load_wine(return_X_y=True)
    cancer = AutoModel(max_trials=1, max_epochs=1).fit(X_cancer, y_cancer)
    wine = AutoModel(max_trials=1, max_epochs=1).fit(X_wine, y_wine)
    assert wine.run_id_ != cancer.run_id_
    assert wine.task_ == "multiclass" and list(wine.classes_) == [0, 1, 2]
    assert wine.model_.input_shape[-1] == X_wine.shape[1]
    assert wine.search_directory_ is None  # the temporary search folder is gone

    warm = AutoModel(max_trials=1, max_epochs=1, warm_start=True).fit(X_wine, y_wine)
    again = warm.fit(X_wine, y_wine)
    assert again.run_id_ == warm.run_id_ and os.path.isdir(warm.search_directory_)
    assert list(again.trials_["trial_id"]) == list(warm.trials_["trial_id"])
    fresh = AutoModel(max_trials=1, max_epochs=1).fit(X_wine, y_wine)
    assert fresh.run_id_ != warm.run_id_


def test_a_named_directory_resumes_its_own_search_and_refuses_another(tmp_path):
    from keras_zoo import AutoModel
    from zoo.errors import InvalidParameterError

    X, y = load_iris(return_X_y=True)
    folder = str(tmp_path / "search")
    first = AutoModel(max_trials=1, max_epochs=1, tracking=False, directory=folder).fit(X, y)
    assert os.path.isfile(os.path.join(folder, "zoo_search.json"))
    resumed = AutoModel(max_trials=1, max_epochs=1, tracking=False, directory=folder).fit(X, y)
    assert resumed.best_hyperparameters_ == first.best_hyperparameters_
    with pytest.raises(InvalidParameterError, match="`directory` holds a search of other options or data"):
        AutoModel(max_trials=1, max_epochs=1, tracking=False, directory=folder).fit(X[:120], y[:120])


def test_automodel_search_and_an_empty_config_have_the_same_defaults():
    from keras_zoo import AutoModel
    from keras_zoo.config import parse_config
    from tuning import SearchOptions
    from tuning.options import AUTOMODEL, SEARCH, parameters

    config = parse_config({"data": {"source": "iris"}})
    automodel = AutoModel().get_params()
    search = SearchOptions()

    def in_config(item):
        value = config
        for key in item.path:
            value = getattr(value, key)
        return value

    for name, item in parameters(AUTOMODEL).items():
        assert automodel[name] == in_config(item), name
    for name, item in parameters(SEARCH).items():
        assert getattr(search, name) == in_config(item), name
    assert set(parameters(SEARCH)) <= set(parameters(AUTOMODEL))
    assert config.search.algorithm == "hyperband" and config.search.max_epochs == 10


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_config_validates(path):
    from keras_zoo.config import load_config

    assert load_config(path).data.source


def readme_config_reference():
    """The README's commented config reference: {section: [keys]}."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Search, evaluate, export: `zoo run`", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    return yaml.safe_load(block)


def test_the_readme_config_reference_lists_every_declared_option_and_no_other():
    from keras_zoo.config import RunConfig
    from tuning.options import SECTIONS, declared

    reference = readme_config_reference()
    listed = {(key,) for key, value in reference.items() if not isinstance(value, dict)}
    listed |= {(section, key) for section in SECTIONS for key in reference.get(section) or {}}
    assert listed == {item.path for item in declared(RunConfig)}


def test_the_readme_config_reference_shows_the_declared_defaults():
    """Where the reference's comment says `default:`, it is the declared default."""
    from tuning.options import declared

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Search, evaluate, export: `zoo run`", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    defaults = {item.path[-1]: item.default for item in declared()}
    checked = 0
    for key, stated in re.findall(r"^\s*(\w+):.*?# default ([^\s;:,)]+)", block, flags=re.M):
        if key in defaults:
            assert str(defaults[key]).lower() == stated.strip("`").lower(), key
            checked += 1
    assert checked >= 5


def test_another_keras_backend_is_refused_before_anything_runs(tmp_path, monkeypatch, capfd):
    from keras_zoo import AutoModel
    from keras_zoo.cli import main
    from zoo.errors import InvalidParameterError

    (tmp_path / "run.yaml").write_text(yaml.safe_dump({"data": {"source": "iris"}}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert main(["run", "run.yaml", "--out", "out"]) == 2
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "KERAS_BACKEND='jax'" in lines[0]
    with pytest.raises(InvalidParameterError, match="TensorFlow backend"):
        AutoModel().fit(*load_iris(return_X_y=True))
    assert sorted(os.listdir(tmp_path)) == ["run.yaml"]
