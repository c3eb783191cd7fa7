"""TPE and pruning on real data: the catalog MLP on breast_cancer and wine (datasets scikit-learn
ships), random search vs TPE vs TPE with the median pruner, the same trial count, split and
seeds, beside scikit-learn's HistGradientBoostingClassifier on the same split.

    python benchmarks/tpe_pruning.py [--quick] [--json PATH]

Reports test accuracy (mean ± std over seeds), search wall seconds and the trials pruned. An
equal *trial* budget, not an equal wall budget: the question here is what each strategy finds in
N trials and what pruning saves of their time (figure 3 compares methods at equal wall budgets).
"""

import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _common import figure  # noqa: E402

COMMAND = "python benchmarks/tpe_pruning.py"
VARIANTS = {"random": ("random", "none"), "tpe": ("tpe", "none"), "tpe + median": ("tpe", "median")}


def sizes(quick):
    if quick:
        return {"datasets": ["breast_cancer"], "seeds": [0], "trials": 3, "epochs": 2}
    return {"datasets": ["breast_cancer", "wine"], "seeds": [0, 1, 2], "trials": 10, "epochs": 8}


def ours(data, algorithm, pruner, seed, trials, epochs, directory):
    import numpy as np

    from tuning import search

    started = time.perf_counter()
    result = search(data, families=["mlp"], algorithm=algorithm, pruner=pruner, max_trials=trials,
                    max_epochs=epochs, seed=seed, directory=directory, tracking=False, progress=False)
    wall = time.perf_counter() - started
    probabilities = result.best_model.predict(data.X_test, verbose=0)
    predicted = (probabilities[:, 0] > 0.5).astype(int) if probabilities.shape[1] == 1 \
        else probabilities.argmax(1)
    return {"accuracy": float(np.mean(predicted == data.y_test)), "wall": wall,
            "pruned": int(result.trials["pruned_after_epoch"].notna().sum())}


def baseline(data, seed):
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier

    started = time.perf_counter()
    model = HistGradientBoostingClassifier(random_state=seed)
    model.fit(np.concatenate([data.X_train, data.X_val]), np.concatenate([data.y_train, data.y_val]))
    return {"accuracy": float((model.predict(data.X_test) == data.y_test).mean()),
            "wall": time.perf_counter() - started, "pruned": 0}


def run(quick=False):
    from zoo.data import load_dataset

    size = sizes(quick)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-tpe-") as work:
        for name in size["datasets"]:
            for seed in size["seeds"]:
                data = load_dataset(name, seed=seed)
                for label, (algorithm, pruner) in VARIANTS.items():
                    results.setdefault((name, label), []).append(ours(
                        data, algorithm, pruner, seed, size["trials"], size["epochs"],
                        os.path.join(work, f"{name}-{label}-{seed}".replace(" ", ""))))
                results.setdefault((name, "HistGradientBoosting"), []).append(baseline(data, seed))
    table = [["dataset", "method", "test accuracy (mean ± std)", "search wall s (mean)", "trials pruned"]]
    for (name, label), runs in results.items():
        accuracy = [r["accuracy"] for r in runs]
        spread = statistics.pstdev(accuracy) if len(accuracy) > 1 else 0.0
        table.append([name, label, f"{statistics.mean(accuracy):.4f} ± {spread:.4f}",
                      f"{statistics.mean(r['wall'] for r in runs):.1f}",
                      str(sum(r["pruned"] for r in runs))])
    tpe = statistics.mean(r["accuracy"] for (n, label), runs in results.items() if label == "tpe" for r in runs)
    rnd = statistics.mean(r["accuracy"] for (n, label), runs in results.items() if label == "random" for r in runs)
    return figure(10, "TPE and pruning at an equal trial budget", metric="TPE - random test accuracy",
                  value=round(tpe - rnd, 4), target=">= 0", passed=tpe >= rnd, table=table,
                  details={f"{n} / {label}": runs for (n, label), runs in results.items()},
                  notes=[f"{size['trials']} trials x {size['epochs']} epochs, catalog MLP, seeds "
                         f"{size['seeds']}; the same split per seed for every method"],
                  command=COMMAND)


if __name__ == "__main__":
    import _common

    _common.run_script(run)
