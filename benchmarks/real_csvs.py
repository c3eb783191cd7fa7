"""Real CSVs that ship inside packages, through the product as a user runs it (`zoo run`'s
pipeline: schema inference, preprocessing in the model, search, test report), beside
scikit-learn's HistGradientBoosting (or the naive forecast) on the same split, over 3 seeds.

Needs `pip install palmerpenguins vega_datasets statsmodels` (each ships its data offline).

    python benchmarks/real_csvs.py [--json benchmarks/results/real_csvs.json]
"""

import argparse
import json
import os
import statistics
import sys
import tempfile

import _common  # noqa: F401  (sys.path, quiet TensorFlow)

SEEDS = (0, 1, 2)


def datasets(folder):
    """name -> (csv path, data section, model section, search section)."""
    import palmerpenguins
    import statsmodels.api as sm
    from vega_datasets import data as vega

    penguins = os.path.join(folder, "penguins.csv")
    palmerpenguins.load_penguins().to_csv(penguins, index=False)  # strings and gaps, as shipped
    cars = os.path.join(folder, "cars.csv")
    vega.cars().to_csv(cars, index=False)  # a name column, a date column, gaps
    sunspots = os.path.join(folder, "sunspots.csv")
    sm.datasets.sunspots.load_pandas().data.to_csv(sunspots, index=False)
    search = {"algorithm": "random", "max_trials": 6, "max_epochs": 60,
              "early_stopping_patience": 10}
    return {
        "penguins (species)": (penguins, {"target": "species"}, {"name": "mlp"}, search),
        "cars (Miles_per_Gallon)": (cars, {"target": "Miles_per_Gallon"}, {"name": "mlp"}, search),
        "sunspots (yearly, next year)": (
            sunspots, {"series": {"target": "SUNACTIVITY", "features": ["SUNACTIVITY"],
                                  "window": 22, "season": 11}},
            {"families": ["gru", "lstm"]}, search),
    }


def run_ours(csv, data_section, model_section, search_section, seed, folder):
    from keras_zoo.config import parse_config
    from keras_zoo.pipeline import evaluate_step, search_step

    config = parse_config({"data": {"source": csv, "seed": seed, **data_section},
                           "model": model_section, "search": {**search_section, "seed": seed},
                           "tracking": {"enabled": False}})
    out = os.path.join(folder, f"out-{os.path.basename(csv)}-{seed}")
    result, data = search_step(config, out)
    report = evaluate_step(result, data, out)
    return data, report.metrics


def baseline(data, seed):
    """HistGradientBoosting on the same training rows (categories as native categoricals), or
    the naive forecast for a series."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.metrics import accuracy_score, mean_absolute_error, r2_score

    if getattr(data, "series", None):
        naive = data.X_test[:, -1, data.series["target_index"]]
        return {"naive_mean_absolute_error": float(mean_absolute_error(data.y_test, naive))}
    X_train = np.concatenate([data.X_train, data.X_val])
    y_train = np.concatenate([data.y_train, data.y_val])
    categorical = [c.kind == "categorical" for c in data.schema.features]
    if data.task == "regression":
        model = HistGradientBoostingRegressor(categorical_features=categorical, random_state=seed)
        model.fit(X_train, y_train)
        return {"r2_score": float(r2_score(data.y_test, model.predict(data.X_test)))}
    model = HistGradientBoostingClassifier(categorical_features=categorical, random_state=seed)
    model.fit(X_train, y_train)
    return {"accuracy_score": float(accuracy_score(data.y_test, model.predict(data.X_test)))}


def summary(values):
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values), "runs": values}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, (csv, data_section, model_section, search_section) in datasets(folder).items():
            ours, theirs = {}, {}
            for seed in SEEDS:
                data, metrics = run_ours(csv, data_section, model_section, search_section, seed, folder)
                keys = (["accuracy_score"] if data.task != "regression" else
                        ["mean_absolute_error", "mase", "naive_mase"] if getattr(data, "series", None)
                        else ["r2_score", "mean_absolute_error"])
                for key in keys:
                    ours.setdefault(key, []).append(float(metrics[key]))
                for key, value in baseline(data, seed).items():
                    theirs.setdefault(key, []).append(value)
            results[name] = {"rows": {k: len(v) for k, v in (data.frames or {}).items()},
                             "notes": data.notes, "ours": {k: summary(v) for k, v in ours.items()},
                             "baseline": {k: summary(v) for k, v in theirs.items()}}
            print(name, json.dumps({"ours": {k: round(summary(v)["mean"], 4) for k, v in ours.items()},
                                    "baseline": {k: round(summary(v)["mean"], 4) for k, v in theirs.items()}}),
                  flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
