"""Figure 3: search quality at equal wall budget on digits (one fixed seeded split).

For each budget point, in rotating order: our default `zoo run` search (examples/digits.yaml:
Hyperband over the catalog CNN, with `search.time_budget` set to the budget, then the best is
retrained as `zoo run` does, tracked in MLflow), plain Keras Tuner random search over a naive MLP
space (the same budget enforced on its oracle, then the best retrained), and scikit-learn's SVC
and MLPClassifier with their defaults. Test accuracy on the held-out split and the actual wall
time (search + retrain) are reported; a budget is a point in time, so a method "has" its result
at budget B only if its wall time was within B.

    python benchmarks/search_quality.py [--quick] [--json PATH]
"""

import os
import shutil
import tempfile
import time

import _common
from _common import ROOT, Stopwatch, figure

COMMAND = "python benchmarks/search_quality.py"
CONFIG = os.path.join(ROOT, "examples", "digits.yaml")


def sizes(quick):
    if quick:
        return {"budgets": [10], "max_epochs": 1, "max_trials": 1, "naive_epochs": 1, "warm_up": False,
                "mlp_iterations": 10}
    return {"budgets": [30, 60, 120], "max_epochs": None, "max_trials": None, "naive_epochs": 20,
            "warm_up": True, "mlp_iterations": 200}


def ours(budget, out_dir, tracking_uri, max_epochs=None, max_trials=None):
    """The default `zoo run` search from examples/digits.yaml under a time budget."""
    import yaml

    from keras_zoo.config import parse_config
    from keras_zoo.pipeline import search_step

    with open(CONFIG) as handle:
        raw = yaml.safe_load(handle)
    raw["search"]["time_budget"] = budget
    if max_epochs:
        raw["search"]["max_epochs"] = max_epochs
    if max_trials:  # quick mode: one trial; the budget clock starts before the search's own set-up
        raw["search"]["max_trials"] = max_trials
    raw["tracking"] = {"uri": tracking_uri,
                       "experiment": "bench-quality"}
    config = parse_config(raw)
    os.makedirs(out_dir, exist_ok=True)
    with Stopwatch() as watch:
        result, data = search_step(config, out_dir)
        accuracy = test_accuracy(result.best_model, data.X_test, data.y_test)
    return {"accuracy": accuracy, "wall": watch.wall, "cpu": watch.cpu,
            "trials": int((result.trials["status"] == "COMPLETED").sum())}


def test_accuracy(model, X, y):
    import numpy as np

    return float(np.mean(np.argmax(model.predict(X, verbose=0), axis=1) == y))


def naive_mlp(hp):
    """What a Keras Tuner user writes first: a Dense stack with tuned width, depth, rate."""
    import keras

    model = keras.Sequential([keras.Input((64,))])
    for index in range(hp.Int("layers", 1, 3)):
        model.add(keras.layers.Dense(hp.Int(f"units_{index}", 32, 512, step=32), activation="relu"))
    model.add(keras.layers.Dense(10, activation="softmax"))
    model.compile(optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-4, 1e-2, sampling="log")),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def plain_kt(budget, out_dir, epochs):
    """Keras Tuner RandomSearch over `naive_mlp`, stopped at the budget, best retrained."""
    import keras
    import keras_tuner as kt

    from zoo.data import load_dataset

    data = load_dataset("digits", seed=0)
    keras.utils.set_random_seed(0)
    with Stopwatch() as watch:
        tuner = kt.RandomSearch(naive_mlp, objective="val_accuracy", max_trials=1000, seed=0,
                                directory=out_dir, project_name="kt", overwrite=True)
        started = time.monotonic()
        populate = tuner.oracle.populate_space

        def budgeted(trial_id):  # no new trial after the budget, as ours does
            if tuner.oracle.trials and time.monotonic() - started >= budget:
                return {"status": kt.engine.trial.TrialStatus.STOPPED, "values": None}
            return populate(trial_id)

        tuner.oracle.populate_space = budgeted
        tuner.search(data.X_train, data.y_train, validation_data=(data.X_val, data.y_val),
                     epochs=epochs, verbose=0)
        best = tuner.get_best_hyperparameters(1)[0]
        keras.backend.clear_session()
        model = naive_mlp(best)
        model.fit(data.X_train, data.y_train, validation_data=(data.X_val, data.y_val),
                  epochs=epochs, verbose=0)
        accuracy = test_accuracy(model, data.X_test, data.y_test)
    trials = sum(t.status == "COMPLETED" for t in tuner.oracle.trials.values())
    return {"accuracy": accuracy, "wall": watch.wall, "cpu": watch.cpu, "trials": trials}


def sklearn_model(kind, mlp_iterations=200):
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC

    from zoo.data import load_dataset

    with Stopwatch() as watch:
        data = load_dataset("digits", seed=0)
        X = __import__("numpy").concatenate([data.X_train, data.X_val])
        y = __import__("numpy").concatenate([data.y_train, data.y_val])
        model = SVC() if kind == "svc" else MLPClassifier(random_state=0, max_iter=mlp_iterations)
        model.fit(X, y)
        accuracy = float((model.predict(data.X_test) == data.y_test).mean())
    return {"accuracy": accuracy, "wall": watch.wall, "cpu": watch.cpu, "trials": 1}


def run(quick=False):
    size = sizes(quick)
    work = tempfile.mkdtemp(prefix="bench-quality-")
    results = {}
    try:
        if size["warm_up"]:
            sklearn_model("svc"), sklearn_model("mlp")  # warm imports
        # one MLflow store for all runs, created before any clock starts, as a user's would be
        uri = f"sqlite:///{os.path.join(work, 'mlflow.db')}"
        from mlflow import MlflowClient

        MlflowClient(uri).create_experiment("bench-quality")
        for index, budget in enumerate(size["budgets"]):
            calls = [
                ("ours (zoo run digits.yaml)",
                 lambda b=budget: ours(b, os.path.join(work, f"ours-{b}"), uri, size["max_epochs"],
                                  size["max_trials"])),
                ("plain KT random, naive MLP",
                 lambda b=budget: plain_kt(b, os.path.join(work, f"kt-{b}"), size["naive_epochs"])),
            ]
            for name, call in (calls if index % 2 == 0 else calls[::-1]):
                results[(name, budget)] = call()
        for name, kind in (("sklearn SVC()", "svc"), ("sklearn MLPClassifier()", "mlp")):
            once = sklearn_model(kind, size["mlp_iterations"])  # no budget knob: one default fit, available at its wall time
            for budget in size["budgets"]:
                results[(name, budget)] = once
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return record(results, size)


def record(results, size):
    methods = list(dict.fromkeys(name for name, _ in results))
    ours_name = methods[0] if methods[0].startswith("ours") else methods[1]
    table = [["method"] + [f"acc @ {b}s (wall s, trials)" for b in size["budgets"]]]
    for name in methods:
        row = [name]
        for budget in size["budgets"]:
            r = results[(name, budget)]
            row.append(f"{r['accuracy']:.4f} ({r['wall']:.0f}s, {r['trials']})")
        table.append(row)

    def at(name, budget):  # the result is only "there" at the budget if it finished by then
        r = results[(name, budget)]
        return r["accuracy"] if r["wall"] <= budget else None

    ahead = {}
    for budget in size["budgets"]:
        mine = results[(ours_name, budget)]["accuracy"]
        ahead[budget] = all(mine > results[(n, budget)]["accuracy"] for n in methods if n != ours_name)
    largest = size["budgets"][-1]
    best = results[(ours_name, largest)]
    within = best["wall"] <= 120
    reach = {}
    for name in methods:
        hits = [b for b in size["budgets"] if results[(name, b)]["accuracy"] >= 0.98]
        reach[name] = (f"{results[(name, hits[0])]['wall']:.0f}s (budget {hits[0]}s)" if hits
                       else "not reached")
    passed = best["accuracy"] >= 0.99 and within and all(ahead.values())
    notes = [f"ours at the largest budget: test accuracy {best['accuracy']:.4f} in {best['wall']:.0f}s "
             f"wall (search + retrain){'' if within else ', over 120 s'}"]
    notes += [f"ahead of every baseline at {b}s: {ok}" for b, ok in ahead.items()]
    notes += [f"time to reach 0.98 test accuracy, {name}: {reach[name]}" for name in methods]
    notes.append("walls exceed the budget by the trial running when it expires plus the retrain; "
                 "the budget stops new trials, as `search.time_budget` does")
    return figure(
        3, "Search quality at equal wall budget on digits", metric="ours test accuracy at the largest budget",
        value=round(best["accuracy"], 4), target=">= 0.99 within 120 s, ahead at every budget",
        passed=passed, table=table,
        details={"results": {f"{n} @ {b}": r for (n, b), r in results.items()}, "ahead": ahead,
                 "reach_0.98": reach},
        notes=notes, command=COMMAND)


if __name__ == "__main__":
    _common.run_script(run)
