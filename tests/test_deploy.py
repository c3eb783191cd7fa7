"""Deployment-aware search: trial costs, constraints, several objectives and the Pareto front.

The two searches on digits are real (Keras training, the TFLite converter, the LiteRT
interpreter, an MLflow store); the oracle tests drive Keras Tuner's own oracles through their
public trial calls with hand-made metrics, so the front and the knee can be checked by hand."""

import json
import os

import keras
import keras_tuner as kt
import mlflow
import numpy as np
import pytest
import yaml
from zoo_testing import zoo_here

from keras_zoo.cli import main
from tuning import deploy
from tuning.oracles import make_oracle
from tuning.tracking import TRIAL_TAG
from zoo.errors import InvalidParameterError

LATENCY = "tflite_latency_ms"


# === checks =====================================================================================
@pytest.mark.parametrize("search, message", [
    ({"constraints": {"latency": 1}},
     "error: Unknown search.constraints key 'latency'."),
    ({"constraints": {"params": -5}},
     "error: `search.constraints.params` must be a number > 0. Received: search.constraints.params=-5"),
    ({"objectives": ["val_accuracy"]},
     "error: `search.objectives` lists at least two objectives (one is `search.objective`). "
     "Received: search.objectives=['val_accuracy']"),
    ({"objectives": ["val_accuracy", "latency_ms"], "algorithm": "tpe"},
     "error: Unknown search.objectives entry 'latency_ms'."),
    ({"objectives": ["val_accuracy", LATENCY]},
     "error: `search.objectives` needs an algorithm that keeps a Pareto front: tpe, evolution, random, "
     "grid (hyperband and bayesian rank trials by one number). Received: search.algorithm='hyperband'"),
    ({"objectives": ["val_accuracy", LATENCY], "objective": "val_loss", "algorithm": "tpe"},
     "error: give `search.objective` or `search.objectives`, not both"),
    ({"select": "knee"},
     "error: `search.select` picks a member of the Pareto front: it needs `search.objectives`. "
     "Received: search.select='knee'"),
    ({"objectives": ["val_accuracy", LATENCY], "algorithm": "tpe", "select": "params"},
     "error: Unknown search.select 'params'."),
])
def test_a_wrong_deployment_setting_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, search, message):
    monkeypatch.chdir(tmp_path)
    config = {"data": {"source": "iris"}, "model": {"name": "mlp"}, "search": search}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", "run.yaml", "--out", "out"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), lines
    assert not (tmp_path / "out").exists()


def test_export_front_without_objectives_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = {"data": {"source": "iris"}, "model": {"name": "mlp"},
              "export": {"enabled": True, "front": True}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", "run.yaml", "--out", "out"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: `export.front` exports every member of the Pareto front: it needs `search.objectives`. "
        "Received: export.front=True")


# === the oracle: feasibility, the front, the knee ================================================
def _oracle(folder, algorithm, deployment):
    oracle = make_oracle(algorithm, objective=kt.Objective("val_accuracy", "max"), max_trials=50,
                         max_epochs=2, seed=0, deployment=deployment)
    oracle._set_project_dir(str(folder), algorithm)
    hp = kt.HyperParameters()
    hp.Int("units", 1, 1000)
    oracle.update_space(hp)
    return oracle


def _finish(oracle, accuracy, **costs):
    """One trial through the oracle's public calls, as a tuner runs it."""
    trial = oracle.create_trial("tuner0")
    oracle.update_trial(trial.trial_id, {"val_accuracy": accuracy, **costs})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    return oracle.trials[trial.trial_id]


def test_an_infeasible_trial_is_never_the_best_and_costs_travel_in_the_oracle_state(tmp_path):
    deployment = deploy.make_deployment({"params": 1000, LATENCY: 0.5})
    oracle = _oracle(tmp_path, "random", deployment)
    big = _finish(oracle, 0.99, params=5000.0, **{LATENCY: 0.1})  # over the params limit
    slow = _finish(oracle, 0.98, params=500.0, **{LATENCY: 0.9})  # over the latency limit
    unmeasured = _finish(oracle, 0.97, params=500.0)  # TFLite not measured: never chosen
    small = _finish(oracle, 0.90, params=800.0, **{LATENCY: 0.2})
    worse = _finish(oracle, 0.80, params=100.0, **{LATENCY: 0.1})
    assert [t.trial_id for t in oracle.get_best_trials(5)] == [small.trial_id, worse.trial_id]
    assert not any(oracle.is_feasible(t) for t in (big, slow, unmeasured))
    # the costs are trial metrics: they come back with the saved state (resume, the chief's oracle)
    reloaded = _oracle(tmp_path / "again", "random", deployment)
    reloaded.set_state(oracle.get_state())
    reloaded.trials = {t.trial_id: t for t in (big, slow, unmeasured, small, worse)}
    assert reloaded.trial_costs(reloaded.trials[big.trial_id]) == {"params": 5000.0, LATENCY: 0.1}
    assert reloaded.get_best_trials(1)[0].trial_id == small.trial_id


def test_the_front_holds_the_non_dominated_trials_and_the_knee_is_nearest_the_ideal_point(tmp_path):
    deployment = deploy.make_deployment(objectives=["val_accuracy", LATENCY])
    oracle = _oracle(tmp_path, "random", deployment)
    fast = _finish(oracle, 0.90, **{LATENCY: 10.0})
    middle = _finish(oracle, 0.95, **{LATENCY: 20.0})
    dominated = _finish(oracle, 0.94, **{LATENCY: 30.0})  # `middle` is better on both
    accurate = _finish(oracle, 0.99, **{LATENCY: 100.0})
    front = oracle.pareto_front()
    assert [t.trial_id for t in front] == [fast.trial_id, middle.trial_id, accurate.trial_id]
    assert oracle.dominates(middle, dominated) and not oracle.dominates(fast, middle)
    # scaled over the front: fast (0, 0), middle (0.556, 0.111), accurate (1, 1); the ideal is
    # accuracy 1 and latency 0: distances 1.0, 0.458, 1.0
    assert oracle.get_best_trials(1)[0].trial_id == middle.trial_id
    assert {t.trial_id for t in oracle.get_best_trials(10)} == {t.trial_id for t in front}
    for select, expected in (("val_accuracy", accurate), (LATENCY, fast)):
        oracle.set_deployment(deploy.make_deployment(objectives=["val_accuracy", LATENCY], select=select))
        assert oracle.get_best_trials(1)[0].trial_id == expected.trial_id


def test_evolution_picks_parents_by_pareto_dominance_among_feasible_trials(tmp_path):
    deployment = deploy.make_deployment({"params": 1000}, objectives=["val_accuracy", LATENCY])
    oracle = _oracle(tmp_path, "evolution", deployment)
    over = _finish(oracle, 0.99, params=2000.0, **{LATENCY: 1.0})
    good = _finish(oracle, 0.95, params=500.0, **{LATENCY: 1.0})
    dominated = _finish(oracle, 0.90, params=500.0, **{LATENCY: 2.0})
    assert over not in oracle.population() and good in oracle.population()
    assert oracle.prefers(good, dominated) and not oracle.prefers(dominated, good)


def test_tpe_is_told_every_objective_and_the_constraints_and_rebuilds_them_after_a_reload(tmp_path):
    deployment = deploy.make_deployment({"params": 1000}, objectives=["val_accuracy", LATENCY])
    oracle = _oracle(tmp_path, "tpe", deployment)
    _finish(oracle, 0.9, params=2000.0, **{LATENCY: 1.0})
    _finish(oracle, 0.8, params=500.0, **{LATENCY: 2.0})
    study = oracle.study()
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    told = [(t.values, t.constraints) for t in study.trials if t.values]
    assert told == [([0.9, 1.0], {"params": 1000.0}), ([0.8, 2.0], {"params": -500.0})]
    assert [t.values for t in study.best_trials] == [[0.8, 2.0]]  # Optuna keeps only the feasible one
    state = oracle.get_state()
    reloaded = _oracle(tmp_path / "again", "tpe", deployment)
    reloaded.set_state(state)
    reloaded.trials, reloaded.end_order = oracle.trials, oracle.end_order
    rebuilt = reloaded.study()
    assert [(t.values, t.constraints) for t in rebuilt.trials] == told


# === measuring a model ==========================================================================
def test_costs_are_the_models_own_params_flops_and_tflite_file():
    import zoo

    model = zoo.create_model("mlp", input_shape=(64,), num_outputs=10, task="multiclass",
                             hidden_units=(32,))
    row = np.random.default_rng(0).random((4, 64), dtype="float32")
    costs = deploy.measure(model, row, {"flops", "tflite_size_kb", LATENCY})
    assert costs["params"] == 64 * 32 + 32 + 32 * 10 + 10
    multiply_adds = 64 * 32 + 32 * 10
    # two per multiply-add, plus one per bias, activation and softmax element (a few hundred)
    assert 2 * multiply_adds <= costs["flops"] <= 2 * multiply_adds + 300
    # 4 bytes a weight, plus the flatbuffer's own few KB
    assert costs["params"] * 4 / 1024 < costs["tflite_size_kb"] < costs["params"] * 4 / 1024 + 8
    assert 0 < costs[LATENCY] < 5
    wider = zoo.create_model("mlp", input_shape=(64,), num_outputs=10, task="multiclass",
                             hidden_units=(512, 512))
    assert deploy.measure(wider, row, {"flops"})["flops"] > 20 * costs["flops"]


# === real searches on digits ====================================================================
@pytest.fixture(scope="module")
def digits_front(tmp_path_factory):
    """`zoo run` of a two-objective search (accuracy against TFLite latency, TPE), every front
    member exported."""
    folder = tmp_path_factory.mktemp("front")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    config = {"data": {"source": "digits"}, "model": {"name": "mlp"},
              "search": {"algorithm": "tpe", "max_trials": 10, "max_epochs": 2, "seed": 1,
                         "objectives": ["val_accuracy", LATENCY]},
              "tracking": {"uri": uri, "experiment": "front"},
              "export": {"enabled": True, "formats": ["tflite"], "front": True}}
    (folder / "run.yaml").write_text(yaml.safe_dump(config))
    ran = zoo_here("run", "run.yaml", "--out", "out", cwd=folder)
    assert ran.returncode == 0, ran.stderr[-3000:]
    return folder / "out", uri, config


def test_a_two_objective_search_returns_a_front_each_member_exported_and_verified(digits_front):
    from export.runtimes import TFLiteRunner
    from keras_zoo.config import parse_config
    from keras_zoo.pipeline import load_data

    out, _, config = digits_front
    listed = json.loads((out / "front" / "front.json").read_text())
    members = listed["members"]
    # how many trials the front keeps rests on measured latencies (timing on a shared machine: 2
    # or 3 in the same run here): the chosen member and at least one other exported beside it
    assert len(members) >= 2
    by_latency = sorted(members, key=lambda m: m[LATENCY])
    # a front: faster members are less accurate, none is beaten on both
    assert all(a["score"] < b["score"] and a[LATENCY] < b[LATENCY] for a, b in zip(by_latency, by_latency[1:]))
    data = load_data(parse_config(config))  # the rows the run's export checked on
    for member in members:
        folder = out / "front" / member["export"]
        manifest = json.loads((folder / "manifest.json").read_text())
        assert member["ok"] and manifest["status"] == "complete"
        assert [a["status"] for a in manifest["artifacts"]] == ["ok"]
        # the artifact run here in its own runtime: the size the search measured, and on the
        # export's 64 test rows the accuracy its Keras model had
        path = folder / manifest["artifacts"][0]["path"]
        assert abs(path.stat().st_size / 1024 - member["tflite_size_kb"]) <= 0.02 * member["tflite_size_kb"]
        runner = TFLiteRunner(str(path), ["input"])
        rows = data.X_test[:64].astype("float32")
        predicted = np.concatenate([runner([row[None]])[0] for row in rows]).argmax(axis=1)
        assert np.mean(predicted == data.y_test[:64]) == manifest["reference"]["accuracy"][0]
        assert manifest["deployment"]["agrees"] == {"tflite_size_kb": True, LATENCY: True}


def test_the_front_is_logged_to_mlflow_and_shown_in_the_report(digits_front):
    out, uri, _ = digits_front
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("front")
    parent = client.search_runs([experiment.experiment_id], "tags.`zoo.kind` = 'search'")[0]
    names = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"pareto_front.csv", "pareto_front.png"} <= names
    front = json.loads((out / "front" / "front.json").read_text())["members"]
    assert parent.data.metrics["pareto_front_size"] == len(front)
    trials = client.search_runs([experiment.experiment_id],
                                f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    feasible = {r.data.tags[TRIAL_TAG]: r.data.tags["zoo.feasible"] for r in trials}
    assert all(feasible[m["trial_id"]] == "true" for m in front)
    assert all(LATENCY in r.data.metrics and "params" in r.data.metrics for r in trials)
    report = json.loads((out / "report" / "report.json").read_text())
    assert "pareto_front" in report["tables"] and (out / "report" / "pareto_front.png").is_file()
    html = (out / "report" / "report.html").read_text()
    assert "pareto_front" in html


def test_a_constrained_search_returns_a_model_within_its_limits_in_the_tflite_interpreter(tmp_path):
    from export import export_model
    from export.runtimes import TFLiteRunner
    from tuning import search
    from zoo.data import load_dataset

    data = load_dataset("digits")
    limits = {"params": 25000, "tflite_size_kb": 100, LATENCY: 1.0}
    # seed 1: among its 5 trials, some over the limit and a feasible one behind an earlier one
    result = search(data, families=["mlp"], algorithm="random", max_trials=5, max_epochs=2, seed=1,
                    constraints=limits, directory=str(tmp_path / "search"), tracking=False)
    trials = result.trials.set_index("trial_id")
    chosen = trials.loc[result.trial_id]
    assert chosen["feasible"] and chosen["params"] <= 25000 and chosen["tflite_size_kb"] <= 100
    over = trials[trials["params"] > 25000]
    assert len(over) and not over["feasible"].any()  # the limit bites: some trials were over it
    # TFLite is converted only for a trial that could be chosen: within the cheap limits, and
    # better than the best feasible trial before it
    unmeasured = trials[trials["tflite_size_kb"].isna() & (trials["params"] <= 25000)]
    assert len(unmeasured) and (unmeasured["score"] <= chosen["score"]).all()
    manifest = export_model(result.best_model, str(tmp_path / "export"), formats=("tflite",),
                            samples=data.X_test[:32])
    path = manifest.path_of("tflite")
    assert os.path.getsize(path) / 1024 <= 100
    assert manifest["tflite"].latency_ms["batch_1"] <= 1.0
    runner = TFLiteRunner(path, [t.name for t in result.best_model.inputs])
    np.testing.assert_allclose(runner([data.X_test[:1].astype("float32")])[0],
                               keras.ops.convert_to_numpy(result.best_model(data.X_test[:1])), atol=1e-5)
    with pytest.raises(InvalidParameterError):  # the Python API checks as the config does
        search(data, algorithm="random", families=["mlp"], constraints={"watts": 3}, directory=str(tmp_path / "x"), tracking=False)


def test_automodel_takes_the_same_constraints(tmp_path):
    """`AutoModel` is the same pipeline: a limit no model meets fails its search with the reason."""
    from sklearn.datasets import load_iris

    from keras_zoo import AutoModel
    from tuning.search import SearchFailed

    X, y = load_iris(return_X_y=True)
    model = AutoModel(max_trials=1, max_epochs=1, tracking=False, directory=str(tmp_path / "s"),
                      constraints={"params": 10})
    with pytest.raises(SearchFailed, match=r"no trial met search.constraints \(params <= 10\)"):
        model.fit(X, y)
    fitted = AutoModel(max_trials=1, max_epochs=1, tracking=False, directory=str(tmp_path / "t"),
                       constraints={"params": 100000}).fit(X, y)
    assert fitted.costs_["params"] == fitted.model_.count_params()
