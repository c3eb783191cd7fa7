"""Figure 3: search quality at equal wall budgets, ours against the Keras-based peers and
scikit-learn, over several datasets and seeds, with a rank table.

Datasets: digits as 8x8 images (catalog CNN), breast_cancer, wine, diabetes (catalog MLP), the
palmerpenguins CSV (strings, gaps; MLP with its preprocessing inside the model) and the yearly
sunspots series (GRU/LSTM, next year from 22), each split by the seed. Methods, each over the same
catalog model and knobs (`keras_zoo.pipeline.hypermodel_for`), the same split and the same wall
budget:

- ours: `zoo run`'s search step (`search_step`, tracked in MLflow) with its defaults, and with
  each algorithm; the best retrained as `zoo run` does;
- Keras Tuner's own `Hyperband` over the same hypermodel (its best checkpoint is its model);
- Optuna (TPE sampler + MedianPruner) over the same knobs, define-by-run: each Keras Tuner
  hyperparameter the catalog builder asks for is asked of the Optuna trial; the best trial's
  model (best epoch's weights) is its model;
- AutoKeras 3 (`ImageClassifier`, `StructuredDataClassifier`/`Regressor`; a series as its flat
  window), in its own virtualenv (see autokeras_peer.py);
- scikit-learn: SVC, HistGradientBoosting and Ridge(Classifier), the best on the validation split
  (for the series also the naive forecast), refitted on train + validation.

Each Keras run is its own process, pinned to one core (`taskset`; `--slots` runs that many side by
side, one core each, so every method gets the same CPU), with the same rule for all: no new trial
after half the budget, then the method's own last step (retrain, refit, best checkpoint); the
process group is ended at the budget plus a grace, and a result counts only if its own wall time
(after imports and data loading) was within the budget. Scores: test accuracy, test R² for
regression and the series. Ranks are per dataset and seed among all methods (a missing result
ranks last), then averaged.

    python benchmarks/search_quality.py [--quick] [--json PATH] [--budgets 60 120] [--seeds 0 1 2]
        [--datasets digits wine] [--methods ours optuna] [--slots 2]
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import _common
from _common import ROOT, Stopwatch, figure

COMMAND = "python benchmarks/search_quality.py"
HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(ROOT, "examples", "digits.yaml")
SOFT_SHARE = 0.5  # no new trial after this share of the budget, for every method
GRACE_S = 45  # imports and data loading (before the clock) and a little past the budget: ended
PEER_EPOCHS = 10  # epochs a trial for the peers (ours: its max_epochs)

DATASETS = {
    "digits": ({"source": "digits", "shape": "image"}, {"name": "cnn"}),
    "breast_cancer": ({"source": "breast_cancer"}, {"name": "mlp"}),
    "wine": ({"source": "wine"}, {"name": "mlp"}),
    "diabetes": ({"source": "diabetes"}, {"name": "mlp"}),
    "penguins": ({"source": "{work}/penguins.csv", "target": "species"}, {"name": "mlp"}),
    "sunspots": ({"source": "{work}/sunspots.csv",
                  "series": {"target": "SUNACTIVITY", "features": ["SUNACTIVITY"], "window": 22,
                             "season": 11}}, {"families": ["gru", "lstm"]}),
}
# our variants: name -> the `search` section beside the budget (empty: the defaults)
OURS = {
    "ours (defaults)": {},
    "ours random": {"algorithm": "random"},
    "ours grid": {"algorithm": "grid"},
    "ours bayesian": {"algorithm": "bayesian"},
    "ours hyperband": {"algorithm": "hyperband"},
    "ours evolution": {"algorithm": "evolution"},
    "ours tpe": {"algorithm": "tpe"},
    "ours tpe + median pruner": {"algorithm": "tpe", "pruner": "median"},
    "ours random + early stopping 3": {"algorithm": "random", "early_stopping_patience": 3},
}
PEERS = ("keras-tuner hyperband", "optuna tpe + median", "autokeras")  # the Keras-based peers


def write_csvs(work, datasets):
    """The real CSVs the chosen datasets need, written from the packages that ship them (no
    download; `pip install -e ".[bench]"`)."""
    if "penguins" in datasets:
        import palmerpenguins

        palmerpenguins.load_penguins().to_csv(os.path.join(work, "penguins.csv"), index=False)
    if "sunspots" in datasets:
        import statsmodels.api as sm

        sm.datasets.sunspots.load_pandas().data.to_csv(os.path.join(work, "sunspots.csv"), index=False)


def config_for(dataset, seed, work, search=None, budget=None, tracking_uri=None):
    from keras_zoo.config import parse_config

    data, model = DATASETS[dataset]
    data = json.loads(json.dumps(data).replace("{work}", work))
    section = {"seed": seed, "max_trials": 1000, **(search or {})}
    if budget:
        section["time_budget"] = budget
    tracking = {"uri": tracking_uri, "experiment": "bench-quality"} if tracking_uri else {"enabled": False}
    return parse_config({"data": {**data, "seed": seed}, "model": model, "search": section,
                         "tracking": tracking})


def score(model_or_predictions, data, split="test"):
    """Accuracy (classification) or R² (regression, series) on `split`, of a model or of its
    predictions."""
    import numpy as np
    from sklearn.metrics import r2_score

    predictions = model_or_predictions
    if hasattr(model_or_predictions, "predict"):
        predictions = model_or_predictions.predict(getattr(data, f"X_{split}"), verbose=0)
    predictions = np.asarray(predictions)
    y = np.asarray(getattr(data, f"y_{split}")).reshape(-1)
    if data.task == "regression":
        return float(r2_score(y, predictions.reshape(-1)))
    if predictions.ndim == 2 and predictions.shape[1] > 1:
        labels = predictions.argmax(1)
    elif predictions.dtype.kind == "f":
        labels = (predictions.reshape(-1) > 0.5).astype(int)
    else:
        labels = predictions.reshape(-1)
    return float(np.mean(labels == y))


def objective_of(data):
    """The objective and its direction, as the search picks them for this task."""
    from tuning.options import default_objective, objective_direction

    name = default_objective(data.task)
    return name, objective_direction(name)


# --- one run, in its own process ---------------------------------------------------------------
def child(spec):
    """Run one (method, dataset, seed, budget); write {score, wall, trials} to spec['out']."""
    import keras

    from keras_zoo.pipeline import load_data

    method, budget, work = spec["method"], spec["budget"], spec["work"]
    soft = budget * SOFT_SHARE
    config = config_for(spec["dataset"], spec["seed"], spec["csvs"], OURS.get(method), soft,
                        f"sqlite:///{os.path.join(work, 'mlflow.db')}" if method in OURS else None)
    if method in OURS:  # the store exists before the clock starts, as a user's would
        from mlflow import MlflowClient

        MlflowClient(config.tracking.uri).create_experiment("bench-quality")
    data = load_data(config)
    keras.utils.set_random_seed(spec["seed"])
    started = time.monotonic()
    if method in OURS:
        outcome = run_ours(config, data, work)
    elif method == "keras-tuner hyperband":
        outcome = run_keras_tuner(config, data, work, soft, started)
    elif method == "optuna tpe + median":
        outcome = run_optuna(config, data, soft, started)
    else:
        raise ValueError(f"unknown method {method!r}")
    outcome["wall"] = time.monotonic() - started
    with open(spec["out"], "w") as handle:
        json.dump(outcome, handle)


def run_ours(config, data, work):
    from keras_zoo.pipeline import search_step

    result, data = search_step(config, os.path.join(work, "out"))
    completed = int((result.trials["status"] == "COMPLETED").sum())
    return {"score": score(result.best_model, data), "trials": completed}


def budgeted(oracle, soft, started):
    """No new trial after `soft` seconds (at least one trial), through the oracle's own hook."""
    import keras_tuner as kt

    populate = oracle.populate_space

    def populate_space(trial_id):
        if oracle.trials and time.monotonic() - started >= soft:
            return {"status": kt.engine.trial.TrialStatus.STOPPED, "values": None}
        return populate(trial_id)

    oracle.populate_space = populate_space


def run_keras_tuner(config, data, work, soft, started):
    import keras_tuner as kt

    from keras_zoo.pipeline import hypermodel_for

    name, direction = objective_of(data)
    tuner = kt.Hyperband(hypermodel_for(config, data), objective=kt.Objective(name, direction),
                         max_epochs=PEER_EPOCHS, seed=config.search.seed, directory=work,
                         project_name="kt", overwrite=True)
    budgeted(tuner.oracle, soft, started)
    tuner.search(data.X_train, data.y_train, validation_data=(data.X_val, data.y_val), verbose=0)
    model = tuner.get_best_models(1)[0]
    completed = sum(t.status == "COMPLETED" for t in tuner.oracle.trials.values())
    return {"score": score(model, data), "trials": completed}


def run_optuna(config, data, soft, started):
    import keras
    import keras_tuner as kt
    import optuna
    from keras_tuner.engine import hyperparameters as hp_module

    from keras_zoo.pipeline import hypermodel_for
    from tuning.options import is_better
    from tuning.tpe import _suggest

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    hypermodel = hypermodel_for(config, data)
    name, direction = objective_of(data)

    class Asked(kt.HyperParameters):
        """Each knob the builder asks for, asked of the Optuna trial (define-by-run)."""

        def __init__(self, trial):
            super().__init__()
            self.trial = trial

        def _retrieve(self, hp):
            value = super()._retrieve(hp)
            if value is not None and not isinstance(hp, hp_module.Fixed):
                value = _suggest(self.trial, hp)
                self.values[hp.name] = value
            return value

    class Report(keras.callbacks.Callback):
        def __init__(self, trial):
            super().__init__()
            self.trial, self.pruned = trial, False

        def on_epoch_end(self, epoch, logs=None):
            self.trial.report(float(logs[name]), epoch)
            if self.trial.should_prune():
                self.pruned = self.model.stop_training = True

    best = {"model": None, "value": None}

    def objective(trial):
        keras.backend.clear_session(free_memory=False)
        hp = Asked(trial)
        model = hypermodel.build(hp)
        report = Report(trial)
        keep = keras.callbacks.EarlyStopping(name, mode=direction, patience=PEER_EPOCHS,
                                             restore_best_weights=True)
        history = hypermodel.fit(hp, model, data.X_train, data.y_train,
                                 validation_data=(data.X_val, data.y_val), epochs=PEER_EPOCHS,
                                 callbacks=[report, keep], verbose=0)
        values = history.history[name]
        value = max(values) if direction == "max" else min(values)
        if is_better(value, best["value"], name):
            best.update(model=model, value=value)
        if report.pruned:
            raise optuna.TrialPruned()
        return value

    study = optuna.create_study(
        direction="maximize" if direction == "max" else "minimize",
        sampler=optuna.samplers.TPESampler(seed=config.search.seed),
        pruner=optuna.pruners.MedianPruner())
    study.optimize(objective, timeout=max(1e-3, soft - (time.monotonic() - started)),
                   catch=(ValueError, FloatingPointError))
    return {"score": score(best["model"], data), "trials": len(study.trials)}


AUTOKERAS_CHILD = r'''
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.environ["KERAS_ZOO_ROOT"], "benchmarks"))
spec = json.load(open(sys.argv[1]))
import numpy as np
import autokeras as ak
import keras
import search_quality as q
from autokeras_peer import cast_dense_units
from keras_zoo.pipeline import load_data
cast_dense_units()
config = q.config_for(spec["dataset"], spec["seed"], spec["csvs"])
data = load_data(config)
keras.utils.set_random_seed(spec["seed"])
started = time.monotonic()
options = dict(max_trials=1000, overwrite=True, seed=spec["seed"], directory=spec["work"], project_name="ak")
def table(split):
    X = getattr(data, "X_" + split)
    frame = (data.frames or {}).get(split)
    if frame is not None:  # AutoKeras takes no gaps: strings' become "missing", numbers' the train mean
        frame = frame.drop(columns=[data.schema.target]).copy()
        train = data.frames["train"]
        for column in frame.columns:
            if frame[column].dtype == object:
                frame[column] = frame[column].fillna("missing").astype(str)
            else:
                frame[column] = frame[column].fillna(train[column].mean())
        return frame.to_numpy()
    return np.asarray(X).reshape(len(X), -1)
if spec["dataset"] == "digits":
    model = ak.ImageClassifier(**options)
    fit = lambda split: getattr(data, "X_" + split)
elif data.task == "regression":
    model = ak.StructuredDataRegressor(**options)
    fit = table
else:
    model = ak.StructuredDataClassifier(**options)
    fit = table
q.budgeted(model.tuner.oracle, spec["budget"] * q.SOFT_SHARE, started)
model.fit(fit("train"), data.y_train, validation_data=(fit("val"), data.y_val), epochs=q.PEER_EPOCHS, verbose=0)
predictions = np.asarray(model.predict(fit("test"), verbose=0))
if data.task != "regression":
    predictions = predictions.reshape(-1).astype("int64")
outcome = {"score": q.score(predictions, data), "wall": time.monotonic() - started,
           "trials": sum(t.status == "COMPLETED" for t in model.tuner.oracle.trials.values())}
json.dump(outcome, open(spec["out"], "w"))
'''


# --- the parent ---------------------------------------------------------------------------------
def launch(spec, core):
    """Run one spec in its own process group (pinned to `core` when given); its outcome or an
    error. The whole group is ended at the budget plus the grace."""
    os.makedirs(spec["work"], exist_ok=True)
    spec_path = os.path.join(spec["work"], "spec.json")
    with open(spec_path, "w") as handle:
        json.dump(spec, handle)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT, KERAS_ZOO_ROOT=ROOT)
    if spec["method"] == "autokeras":
        import autokeras_peer

        command = [autokeras_peer.venv_python(), "-c", AUTOKERAS_CHILD, spec_path]
    else:
        command = [sys.executable, os.path.abspath(__file__), "--child", spec_path]
    if core is not None and shutil.which("taskset"):
        command = ["taskset", "-c", str(core)] + command
        env.update(TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1", OMP_NUM_THREADS="1")
    limit = spec["budget"] + GRACE_S  # a result past the budget does not count anyway
    returncode, _, stderr = _common.run_group(command, limit, env=env)
    if returncode is None:
        return {"error": f"ended at {limit} s"}
    if returncode != 0 or not os.path.exists(spec["out"]):
        return {"error": stderr.strip().splitlines()[-1][:300] if stderr.strip() else
                f"exit {returncode}"}
    with open(spec["out"]) as handle:
        return json.load(handle)


def sklearn_best(dataset, seed, csvs):
    """SVC, HistGradientBoosting, Ridge(Classifier): the best on validation, refitted on
    train + validation, scored on test; the series also tries the naive forecast."""
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge, RidgeClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.svm import SVC, SVR

    from keras_zoo.pipeline import load_data

    config = config_for(dataset, seed, csvs)
    data = load_data(config)
    with Stopwatch() as watch:
        def flat(split):
            frame = (data.frames or {}).get(split)
            if frame is not None:
                return frame.drop(columns=[data.schema.target])
            X = np.asarray(getattr(data, "X_" + split))
            return X.reshape(len(X), -1).astype("float64")

        sample = flat("train")
        if hasattr(sample, "columns"):  # a raw CSV: impute, one-hot, scale
            strings = [c for c in sample.columns if sample[c].dtype == object]
            numbers = [c for c in sample.columns if c not in strings]

            def prep():
                return ColumnTransformer([
                    ("n", make_pipeline(SimpleImputer(), StandardScaler()), numbers),
                    ("s", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                        OneHotEncoder(handle_unknown="ignore")), strings)])
        else:
            def prep():
                return StandardScaler()
        regression = data.task == "regression"
        candidates = {
            "SVC" if not regression else "SVR": lambda: make_pipeline(prep(), SVC() if not regression else SVR()),
            "HistGradientBoosting": lambda: make_pipeline(
                prep(), HistGradientBoostingRegressor(random_state=seed) if regression
                else HistGradientBoostingClassifier(random_state=seed)),
            "Ridge" if regression else "RidgeClassifier": lambda: make_pipeline(
                prep(), Ridge() if regression else RidgeClassifier()),
        }
        y_train, y_val = np.asarray(data.y_train).reshape(-1), np.asarray(data.y_val).reshape(-1)
        chosen, chosen_val = None, None
        for name, make in candidates.items():
            model = make().fit(flat("train"), y_train)
            predicted = model.predict(flat("val"))
            value = score(predicted, data, "val")
            if chosen_val is None or value > chosen_val:
                chosen, chosen_val = name, value
        if getattr(data, "series", None):
            index = data.series["target_index"]
            naive_val = score(np.asarray(data.X_val)[:, -1, index], data, "val")
            if naive_val > chosen_val:
                chosen = "naive forecast"
        if chosen == "naive forecast":
            test = score(np.asarray(data.X_test)[:, -1, data.series["target_index"]], data)
        else:
            train, val = flat("train"), flat("val")
            if hasattr(train, "columns"):
                import pandas as pd

                both = pd.concat([train, val])
            else:
                both = np.concatenate([train, val])
            model = candidates[chosen]().fit(both, np.concatenate([y_train, y_val]))
            test = score(model.predict(flat("test")), data)
    return {"score": test, "wall": watch.wall, "trials": len(candidates), "chosen": chosen}


def sizes(quick):
    if quick:
        return {"budgets": [8], "seeds": [0], "datasets": ["wine"],
                "methods": ["ours (defaults)", "optuna tpe + median"], "slots": 2}
    return {"budgets": [60], "seeds": [0, 1, 2], "datasets": list(DATASETS),
            "methods": list(OURS) + list(PEERS), "slots": 2}


def run(quick=False, args=None):
    size = sizes(quick)
    for key in ("budgets", "seeds", "datasets", "methods", "slots"):
        if args is not None and getattr(args, key, None):
            size[key] = getattr(args, key)
    work = tempfile.mkdtemp(prefix="bench-quality-")
    csvs = os.path.join(work, "csvs")
    os.makedirs(csvs)
    try:
        write_csvs(csvs, size["datasets"])
        if "autokeras" in size["methods"]:
            import autokeras_peer

            ok, why = autokeras_peer.ensure_venv()
            if not ok:
                raise RuntimeError(f"AutoKeras could not be installed here: {why}")
        specs = []
        for budget in size["budgets"]:
            for seed in size["seeds"]:
                for dataset in size["datasets"]:
                    for method in size["methods"]:
                        tag = f"{budget}-{seed}-{dataset}-{method}".replace(" ", "_").replace("+", "p")
                        specs.append({"method": method, "dataset": dataset, "seed": seed,
                                      "budget": budget, "csvs": csvs, "work": os.path.join(work, tag),
                                      "out": os.path.join(work, tag, "outcome.json")})
        results = {}
        slots = max(1, int(size["slots"]))
        cores = list(range(os.cpu_count() or 1))
        free = list(cores[:slots]) if slots > 1 else [None]

        def one(spec):
            core = free.pop()
            try:
                outcome = launch(spec, core)
            finally:
                free.append(core)
            key = f"{spec['method']} | {spec['dataset']} | {spec['seed']} | {spec['budget']}"
            results[key] = {**outcome, "counts": "error" not in outcome and outcome["wall"] <= spec["budget"]}
            print(key, json.dumps(results[key]), file=sys.stderr, flush=True)

        with ThreadPoolExecutor(max_workers=len(free)) as pool:
            list(pool.map(one, specs))
        for budget in size["budgets"]:
            for seed in size["seeds"]:
                for dataset in size["datasets"]:
                    outcome = sklearn_best(dataset, seed, csvs)
                    key = f"scikit-learn | {dataset} | {seed} | {budget}"
                    results[key] = {**outcome, "counts": outcome["wall"] <= budget}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return records(results, size)


def records(results, size):
    """The rank table and the per-dataset scores (mean ± std over seeds)."""
    methods = list(size["methods"]) + ["scikit-learn"]
    figures = []
    table = [["method"] + [f"{d} @ {b}s" for b in size["budgets"] for d in size["datasets"]]
             + [f"mean rank @ {b}s" for b in size["budgets"]]]
    # a method is ranked at a budget only where it was run at that budget (runs merged from
    # several files need not all cover every budget); sklearn has no budget
    ran = {b: [m for m in methods if m == "scikit-learn" or any(
        key.startswith(f"{m} | ") and key.endswith(f" | {b}") for key in results)] for b in size["budgets"]}
    ranks = {b: {m: [] for m in ran[b]} for b in size["budgets"]}
    for budget in size["budgets"]:
        for seed in size["seeds"]:
            for dataset in size["datasets"]:
                scored = []
                for method in ran[budget]:
                    r = results.get(f"{method} | {dataset} | {seed} | {budget}", {})
                    scored.append((r.get("score") if r.get("counts") else None, method))
                for value, method in scored:  # ties share their mean rank; a missing one is last
                    key = value if value is not None else float("-inf")
                    above = sum(1 for v, _ in scored if (v if v is not None else float("-inf")) > key)
                    tied = sum(1 for v, _ in scored if (v if v is not None else float("-inf")) == key)
                    ranks[budget][method].append(above + (tied + 1) / 2)
    mean_rank = {b: {m: statistics.fmean(v) for m, v in ranks[b].items() if v} for b in ranks}
    for method in methods:
        row = [method]
        for budget in size["budgets"]:
            for dataset in size["datasets"]:
                if method not in ran[budget]:
                    row.append("not run")
                    continue
                values = [results.get(f"{method} | {dataset} | {s} | {budget}", {}) for s in size["seeds"]]
                counted = [v["score"] for v in values if v.get("counts")]
                cell = (f"{statistics.fmean(counted):.3f} ± {statistics.pstdev(counted):.3f}"
                        if counted else "—")
                if len(counted) < len(values):
                    cell += f" ({len(values) - len(counted)} over budget/failed)"
                row.append(cell)
        row += [f"{mean_rank[b][method]:.2f} of {len(ran[b])}" if method in mean_rank[b] else "—"
                for b in size["budgets"]]
        table.append(row)
    top = max(size["budgets"])
    ours_default = mean_rank[top].get("ours (defaults)")
    peers = {m: mean_rank[top][m] for m in PEERS if m in mean_rank[top]}
    first = ours_default is not None and all(ours_default < v for v in peers.values())
    within = max((b for b in size["budgets"] if b <= 120), default=None)  # "within 120 s"
    digits = [results.get(f"ours (defaults) | digits | {s} | {within}", {}) for s in size["seeds"]
              if within is not None and "digits" in size["datasets"]]
    notes = [f"seeds {size['seeds']}, budgets {size['budgets']} s; no new trial after "
             f"{SOFT_SHARE:.0%} of the budget for every method; a result counts only if its wall "
             "time (after imports and data loading) was within the budget",
             "scores: test accuracy, R² for diabetes and sunspots; ranks per dataset and seed (ties "
             "share their mean rank, a missing result is last), then the mean",
             f"peers: {PEER_EPOCHS} epochs a trial; ours: its own max_epochs (default); every run "
             "one process on one core"]
    digits_ok = bool(digits) and all(d.get("counts") and d["score"] >= 0.99 for d in digits)
    if digits and all(d.get("counts") for d in digits):
        notes.append(f"ours (defaults) on digits at {within} s, per seed: "
                     + ", ".join(f"{d['score']:.4f}" for d in digits) + " (target ≥ 0.99)")
    figures.append(figure(
        3, "Search quality at equal wall budgets: ours vs Keras Tuner, Optuna, AutoKeras, scikit-learn",
        metric=f"ours (defaults) mean rank @ {top}s", value=round(ours_default, 3) if ours_default else None,
        target="first among the Keras-based methods at 120 s; digits ≥ 0.99 within 120 s",
        passed=bool(first and top >= 120 and digits_ok), table=table,
        details={"results": results, "mean_rank": mean_rank, "ranks": ranks, "size": size,
                 "keras_based_peer_ranks": peers}, notes=notes, command=COMMAND))
    return figures


# figure 8 (autokeras_peer.py) compares with the digits example as shipped
def ours(budget, out_dir, tracking_uri, max_epochs=None, max_trials=None):
    """The `zoo run` search of examples/digits.yaml under a time budget, as figure 8 uses it."""
    import yaml

    from keras_zoo.config import parse_config
    from keras_zoo.pipeline import search_step

    with open(CONFIG) as handle:
        raw = yaml.safe_load(handle)
    raw["search"]["time_budget"] = budget
    if max_epochs:
        raw["search"]["max_epochs"] = max_epochs
    if max_trials:
        raw["search"]["max_trials"] = max_trials
    raw["tracking"] = {"uri": tracking_uri, "experiment": "bench-quality"}
    config = parse_config(raw)
    os.makedirs(out_dir, exist_ok=True)
    with Stopwatch() as watch:
        result, data = search_step(config, out_dir)
        accuracy = score(result.best_model, data)
    return {"accuracy": accuracy, "wall": watch.wall, "cpu": watch.cpu,
            "trials": int((result.trials["status"] == "COMPLETED").sum())}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        with open(argv[1]) as handle:
            child(json.load(handle))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--budgets", nargs="+", type=int)
    parser.add_argument("--seeds", nargs="+", type=int)
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS))
    parser.add_argument("--methods", nargs="+", choices=list(OURS) + list(PEERS))
    parser.add_argument("--slots", type=int)
    parser.add_argument("--merge", nargs="+", metavar="JSON",
                        help="no runs: one figure from the results of earlier runs' JSON files")
    parser.add_argument("--rename", nargs="+", default=[], metavar="A=B",
                        help="with --merge: method A's results are method B's (e.g. 'ours "
                             "tpe=ours (defaults)' once the defaults are that variant; each "
                             "method once, so the ranks count no run twice)")
    args, rest = parser.parse_known_args(argv)
    if args.merge:
        pairs = lambda items: [tuple(item.split("=", 1)) for item in items]  # noqa: E731
        _common.run_script(lambda quick: merge(args.merge, pairs(args.rename)), rest)
        return
    _common.run_script(lambda quick: run(quick, args), rest)


def merge(paths, rename=()):
    """One figure from several runs' records (e.g. peers and our variants run apart): their
    results side by side, ranked together; a cell no run filled counts as missing."""
    results, size = {}, {"budgets": [], "seeds": [], "datasets": [], "methods": []}
    spent = {"wall_s": 0.0, "cpu_s": 0.0}  # the runs' own, not this merge's
    for path in paths:
        with open(path) as handle:
            for record in json.load(handle):
                if record["figure"] != 3:
                    continue
                results.update(record["details"]["results"])
                spent["wall_s"] += record.get("wall_s", 0.0)
                spent["cpu_s"] += record.get("cpu_s", 0.0)
                for key in size:
                    size[key] += [v for v in record["details"]["size"][key] if v not in size[key]]
    renamed = dict(rename)  # all at once: 'A=B B=C' moves A to B and B to C
    results = {renamed.get(key.split(" | ", 1)[0], key.split(" | ", 1)[0]) + " | " + key.split(" | ", 1)[1]: value
               for key, value in results.items()}
    size["methods"] = [renamed.get(m, m) for m in size["methods"]]
    size["methods"] = list(dict.fromkeys(m for m in size["methods"] if m != "scikit-learn"))
    order = list(OURS) + list(PEERS)
    size["methods"].sort(key=order.index)
    size["datasets"].sort(key=list(DATASETS).index)
    figures = records(results, size)
    for record in figures:
        record.update({key: round(value, 1) for key, value in spent.items()})
        record["notes"].append(f"merged from {len(paths)} runs' records"
                               + "".join(f"; {old!r} shown as {new!r}" for old, new in rename))
    return figures


if __name__ == "__main__":
    main()
