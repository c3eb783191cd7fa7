"""Which rule should `zoo lr-find` suggest with? Each rule reads the same LR range test sweeps
(the finder on the default model of a config, as `zoo lr-find` runs it); each is judged against
the best fixed learning rate of a short grid (the same model trained for a few epochs at each
rate, best validation loss).

Configs: mlp on breast_cancer (bundled), mlp on the penguins and cars CSVs, cnn on digits
(8x8 images), lstm on the yearly sunspots series. Needs `pip install palmerpenguins
vega_datasets statsmodels` (each ships its data offline).

    python benchmarks/lr_find_rules.py [--seeds 3] [--json benchmarks/results/lr_find_rules.json]
    python benchmarks/lr_find_rules.py --rescore benchmarks/results/lr_find_rules.json
"""

import argparse
import json
import math
import os
import sys
import tempfile

import _common  # noqa: F401  (sys.path, quiet TensorFlow)
import numpy as np

GRID = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1]


def configs(folder):
    """name -> (config mapping, grid epochs)."""
    import palmerpenguins
    import statsmodels.api as sm
    from vega_datasets import data as vega

    penguins = os.path.join(folder, "penguins.csv")
    palmerpenguins.load_penguins().to_csv(penguins, index=False)
    cars = os.path.join(folder, "cars.csv")
    vega.cars().to_csv(cars, index=False)
    sunspots = os.path.join(folder, "sunspots.csv")
    sm.datasets.sunspots.load_pandas().data.to_csv(sunspots, index=False)
    return {
        "mlp / breast_cancer": ({"data": {"source": "breast_cancer"}, "model": {"name": "mlp"}}, 20),
        "mlp / penguins.csv": ({"data": {"source": penguins, "target": "species"},
                                "model": {"name": "mlp"}}, 20),
        "mlp / cars.csv": ({"data": {"source": cars, "target": "Miles_per_Gallon"},
                            "model": {"name": "mlp"}}, 20),
        "cnn / digits": ({"data": {"source": "digits", "shape": "image"}, "model": {"name": "cnn"}}, 6),
        "lstm / sunspots.csv": ({"data": {"source": sunspots, "series": {
            "target": "SUNACTIVITY", "features": ["SUNACTIVITY"], "window": 22}},
            "model": {"name": "lstm"}}, 20),
    }


# --- the rules compared; each takes (learning_rates, smoothed losses) up to divergence ---------

def steepest(rates, losses):
    """The former rule: steepest slope of the smoothed loss over the whole descent."""
    stop = int(np.argmin(losses)) + 1
    rates, losses = np.asarray(rates[:stop]), np.asarray(losses[:stop])
    if len(losses) < 3:
        return float(rates[0])
    return float(rates[int(np.argmin(np.gradient(losses, np.log(rates))))])


def steepest_interior(rates, losses, skip=10):
    """Steepest slope of the smoothed loss, skipping the EMA's first `skip` points (its warm-up)
    and the points near the minimum."""
    rates, losses = np.asarray(rates), np.asarray(losses)
    stop = int(np.argmin(losses))
    start = min(skip, max(stop - 3, 0))
    if stop - start < 3:
        return float(rates[start])
    slopes = np.gradient(losses[start:stop], np.log(rates[start:stop]))
    return float(rates[start + int(np.argmin(slopes[:-1] if len(slopes) > 3 else slopes))])


def valley(rates, losses):
    """fastai's valley: in the longest decreasing subsequence of the smoothed loss, the point half
    way between its first and second third."""
    losses = np.asarray(losses)
    n = len(losses)
    longest = [1] * n
    end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and longest[i] < longest[j] + 1:
                longest[i] = longest[j] + 1
        if longest[i] > longest[end]:
            end = i
    start = end - longest[end]
    section = (end - start) / 3
    return float(rates[max(start + int(section) + int(section / 2), 0)])


def minimum_over_10(rates, losses):
    """The rate at the minimum of the smoothed loss, divided by 10."""
    return float(rates[int(np.argmin(losses))] / 10)


def chosen(rates, losses):
    """What `zoo.lr_finder.suggest` does now."""
    from zoo.lr_finder import suggest

    return suggest(rates, losses)


RULES = {"steepest (before)": steepest, "steepest, interior": steepest_interior,
         "valley": valley, "minimum / 10": minimum_over_10, "suggest (now)": chosen}


# --- the measurements --------------------------------------------------------------------------

def build(config, data, seed):
    import keras
    import keras_tuner as kt

    from keras_zoo.pipeline import hypermodel_for

    keras.utils.set_random_seed(seed)
    return hypermodel_for(config, data).build(kt.HyperParameters())


def sweep(config, data, seed):
    from zoo import lr_finder

    model = build(config, data, seed)
    result = lr_finder.find_learning_rate(model, data.X_train, data.y_train,
                                          batch_size=config.search.batch_sizes[0], seed=seed)
    return result.learning_rates, result.losses


def grid(config, data, epochs, seed=0):
    """Best validation loss of the default model trained at each fixed rate of `GRID`."""
    scores = {}
    for rate in GRID:
        model = build(config, data, seed)
        model.optimizer.learning_rate = rate
        history = model.fit(data.X_train, data.y_train, validation_data=(data.X_val, data.y_val),
                            epochs=epochs, batch_size=config.search.batch_sizes[0], verbose=0).history
        values = [v for v in history["val_loss"] if math.isfinite(v)]
        scores[rate] = min(values) if values else math.inf
    return scores


def grid_rank(rate, scores):
    """Rank (1 = best) of the grid rate nearest to `rate` (in log) by validation loss."""
    nearest = min(scores, key=lambda r: abs(math.log(r / rate)))
    return 1 + sum(1 for value in scores.values() if value < scores[nearest])


def measure(seeds):
    from keras_zoo.config import parse_config
    from keras_zoo.pipeline import load_data

    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, (raw, epochs) in configs(folder).items():
            raw = {**raw, "search": {"algorithm": "random", "max_trials": 1}, "tracking": {"enabled": False}}
            config = parse_config(raw)
            data = load_data(config)
            scores = grid(config, data, epochs)
            sweeps = [sweep(config, data, seed) for seed in range(seeds)]
            results[name] = {"grid": {str(k): v for k, v in scores.items()}, "grid_epochs": epochs,
                             "sweeps": [{"learning_rates": list(map(float, r)), "losses": list(map(float, v))}
                                        for r, v in sweeps]}
            print(f"{name}: grid {', '.join(f'{k:g}: {v:.4g}' for k, v in scores.items())}", flush=True)
    return results


def table(results):
    """The markdown table: each rule's suggestions per config, how far from the grid's best."""
    names = list(results)
    lines = ["| rule | " + " | ".join(names) + " | median factor off | worst factor off | "
             "within 10x | mean grid rank |", "|---|" + "---|" * (len(names) + 4)]
    for rule, fn in RULES.items():
        factors, ranks, cells = [], [], []
        for entry in results.values():
            scores = {float(k): v for k, v in entry["grid"].items()}
            best = min(scores, key=scores.get)
            values = [fn(np.asarray(s["learning_rates"]), np.asarray(s["losses"])) for s in entry["sweeps"]]
            factors += [max(v / best, best / v) for v in values]
            ranks += [grid_rank(v, scores) for v in values]
            cells.append(", ".join(f"{v:.1e}" for v in values))
        within = sum(f <= 10 for f in factors)
        lines.append(f"| {rule} | " + " | ".join(cells) + f" | {np.median(factors):.1f}x | "
                     f"{max(factors):.0f}x | {within}/{len(factors)} | {np.mean(ranks):.1f} |")
    bests = [min(e["grid"], key=e["grid"].get) for e in results.values()]
    lines.append("| grid best | " + " | ".join(f"{float(b):.0e}" for b in bests) + " | | | | 1 |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="finder sweeps per config (default: 3)")
    parser.add_argument("--json", help="write the sweeps and grids here")
    parser.add_argument("--rescore", metavar="JSON", help="score the rules on sweeps a run wrote")
    args = parser.parse_args(argv)
    if args.rescore:
        with open(args.rescore) as handle:
            results = json.load(handle)
    else:
        results = measure(args.seeds)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
