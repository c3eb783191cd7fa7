"""The defaults on real series with a trend and a season against the naive forecasts on the same
test windows.

Each series ships offline inside a package (`pip install statsmodels islp`; islp with `--no-deps`
is enough: only its CSV is read). A run is `zoo run` as a user starts it (`keras_zoo.pipeline`: the
CSV, a `data.series` section with target, window and season, `search.time_budget`, nothing about
the model; tracking off). Every figure is the run's own, read back from the report.json the
pipeline writes: `mase` (the model), `naive_mase` (the last value) and `seasonal_naive_mase` (the
value one season back), all on the run's test windows, and `baseline`, the one of the two naive
forecasts that erred less on the training windows (`evaluation.baseline`, compared on MAE).

MASE here (`zoo.series.mase`) is a test MAE over ONE scale: the mean absolute change over one
season (`season` entries back; a training target that is missing is not among them) of the
training windows' targets, in time order. The last-value forecast's MASE is therefore not 1 by
definition: on a series whose steps are small beside its yearly swing (weekly CO2) it is well below
1; the seasonal-naive MASE is near 1 only when the test years change as much as the training years
did (CO2's trend quickened after training; elec_equip's training years hold the fall of 2009). A
forecast is at or below the naive one when `mase <= naive_mase` (the same as comparing MAEs: one
scale divides both). Where a test window ends in a gap, the report's naive figures are null (its
naive forecast is the missing value); the naive MASEs are then recomputed on the same windows
with the gap carried forward, as the run's baseline and the model's own graph fill it
(`filled_naive_mase`), and the row's `recomputed` names them (`*` in the table).

`search.time_budget` holds the search and the best trial's retraining and refit together (no trial
starts once the time left is what they are expected to take); a run's seconds add the data
loading, the test report and the trial running when the budget ended.

The series (a CSV of a date column and the target, one row per step; a missing step is a row
with an empty target):

- `co2` (statsmodels `co2`): weekly CO2 at Mauna Loa, 1958-2001, 2,284 weeks, 59 missing, a rising
  trend and a yearly season; window 104 (two years), season 52.
- `elec-equip` (statsmodels `elec_equip`): monthly EU orders of electrical equipment, not
  seasonally adjusted, 1995-2016, 257 months, no gaps, a trend that rises, falls in 2009 and
  recovers, and a yearly season; window 24 (two years: with 257 rows a longer window leaves
  under 100 training windows once the time split's gaps are cut), season 12.
- `bikeshare` (ISLP `Bikeshare`): hourly riders of Washington's bike share in 2011, 8,645 hours
  of 8,760; the 115 hours the table lacks are added as empty rows so that a row is an hour; a
  level that rises to the summer and falls to the winter, and a daily season; window 72
  (three days), season 24.

    python benchmarks/series_quality.py --budget 120 --seeds 0 1 2
    python benchmarks/series_quality.py --budget 300 --seeds 0 1 2 --json benchmarks/results/series_quality_300.json
    python benchmarks/series_quality.py --series elec-equip --budget 15 --seeds 0   # a smoke run
    python benchmarks/series_quality.py --combine a.json b.json --json all.json  # runs together

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

# name -> (source, target, frequency, window, season)
SERIES = {
    "co2": ("statsmodels:co2", "co2", "weekly", 104, 52),
    "elec-equip": ("statsmodels:elec_equip", "orders", "monthly", 24, 12),
    "bikeshare": ("islp:Bikeshare", "bikers", "hourly", 72, 24),
}


def load_series(name):
    """A frame of `date` and the target, one row per step (NaN for a missing one), in time order."""
    source, target, _, _, _ = SERIES[name]
    if source == "islp:Bikeshare":
        from importlib.resources import files

        import pandas as pd

        table = pd.read_csv(files("ISLP").joinpath("data", "Bikeshare.csv"))
        # `day` is the day of 2011 (1-365), `hr` the hour; the missing hours are absent rows
        stamps = (pd.Timestamp("2011-01-01") + pd.to_timedelta(table["day"] - 1, unit="D")
                  + pd.to_timedelta(table["hr"], unit="h"))
        hours = pd.date_range(stamps.min(), stamps.max(), freq="h")
        values = pd.Series(table[target].to_numpy(dtype="float64"), index=stamps).reindex(hours)
        return pd.DataFrame({"date": hours, target: values.to_numpy()})
    from importlib import import_module

    # elec_equip is not among `statsmodels.api.datasets`: its module is imported by name
    frame = import_module(f"statsmodels.datasets.{source.partition(':')[2]}").load().data
    frame.columns = [target]  # elec_equip's column is a Eurostat code
    frame = frame.rename_axis("date").reset_index()
    return frame[["date", target]]


def config_for(csv, name, seed, budget):
    from keras_zoo.config import parse_config

    _, target, _, window, season = SERIES[name]
    return parse_config({"data": {"source": csv, "seed": seed,
                                  "series": {"target": target, "window": window, "season": season}},
                         "search": {"time_budget": budget, "seed": seed},
                         "tracking": {"enabled": False}})


def run_defaults(config, out):
    """`zoo run`'s search and test report: (the report.json it wrote, the data, trials)."""
    from keras_zoo.pipeline import evaluate_step, search_step

    result, data = search_step(config, out)
    evaluate_step(result, data, out)
    with open(os.path.join(out, "report", "report.json")) as handle:
        return json.load(handle), data, len(result.trials)


def filled_naive_mase(data):
    """{"naive_mase", "seasonal_naive_mase"} on the run's test windows after carrying the last
    observed target forward, as the run's baseline (`evaluation.baseline`) and the model's own
    graph fill a gap: what the report leaves undefined (null) when a test window ends in one."""
    import numpy as np

    from zoo.series import carried_forward, mase, naive_forecast, seasonal_naive_forecast

    index, season, horizon = (data.series[k] for k in ("target_index", "season", "horizon"))
    y_fit = np.concatenate([data.y_train, data.y_val])
    X_test = carried_forward(data.X_test, index, float(np.mean(y_fit)))  # the baseline's fallback
    forecasts = {"naive_mase": naive_forecast(X_test, target_index=index),
                 "seasonal_naive_mase": seasonal_naive_forecast(X_test, target_index=index,
                                                                season=season, horizon=horizon)}
    return {key: mase(data.y_test, forecast, data.y_train, season=season)
            for key, forecast in forecasts.items()}


def run_job(name, seed, budget, folder):
    import numpy as np

    frame = load_series(name)
    _, target, frequency, window, season = SERIES[name]
    csv = os.path.join(folder, f"{name}.csv")
    if not os.path.exists(csv):
        frame.to_csv(csv, index=False)
    out = os.path.join(folder, f"{name}-{seed}-{len(os.listdir(folder))}")
    started = time.monotonic()
    report, data, trials = run_defaults(config_for(csv, name, seed, budget), out)
    seconds = round(time.monotonic() - started, 1)
    metrics, baseline = report["metrics"], report["baseline"]
    naive = {key: metrics.get(key) for key in ("naive_mase", "seasonal_naive_mase")}
    recomputed = [key for key, value in naive.items() if value is None]
    if recomputed:
        filled = filled_naive_mase(data)
        naive.update({key: filled[key] for key in recomputed})
    return {"series": name, "frequency": frequency, "rows": len(frame),
            "missing": int(frame[target].isna().sum()), "window": window, "season": season,
            "seed": seed, "budget_s": budget, "mase": metrics["mase"], **naive,
            "recomputed": recomputed,  # undefined in the report: filled as above, same windows
            "test_windows": len(data.y_test),
            "test_windows_ending_in_gap": int(np.isnan(data.X_test[:, -1, data.series["target_index"]]).sum()),
            "mae": metrics["mean_absolute_error"], "naive_mae": metrics.get("naive_mean_absolute_error"),
            "seasonal_naive_mae": metrics.get("seasonal_naive_mean_absolute_error"),
            "at_or_below_naive": metrics["mase"] <= naive["naive_mase"],
            "baseline": baseline and baseline["name"], "baseline_mae": baseline and baseline["score"],
            "at_or_below_baseline": bool(baseline) and metrics["mean_absolute_error"] <= baseline["score"],
            "verdict": baseline and baseline["verdict"], "seconds": seconds, "trials": trials,
            "notes": data.notes}


def summarize(rows):
    """Per series: mean MASEs over the seeds and the seeds at or below the naive forecast; overall:
    the series whose mean MASE is at or below the naive's."""
    groups = {}
    for row in rows:
        groups.setdefault(row["series"], []).append(row)
    per_series = []
    for name, group in groups.items():
        ours = [r["mase"] for r in group]
        naive = statistics.fmean(r["naive_mase"] for r in group)  # the same on every seed
        seasonal = [r["seasonal_naive_mase"] for r in group if r["seasonal_naive_mase"] is not None]
        per_series.append({"series": name, **{k: group[0][k] for k in ("frequency", "rows", "missing", "window", "season")},
                           "ours": statistics.fmean(ours),
                           "ours_sd": statistics.stdev(ours) if len(ours) > 1 else 0.0,
                           "naive": naive, "seasonal_naive": statistics.fmean(seasonal) if seasonal else None,
                           "ratio": statistics.fmean(ours) / naive,
                           "wins": sum(r["at_or_below_naive"] for r in group), "seeds": len(group),
                           "baseline": group[0]["baseline"],
                           "baseline_wins": sum(r["at_or_below_baseline"] for r in group),
                           "recomputed": sorted({k for r in group for k in r["recomputed"]}),
                           "trials": statistics.fmean(r["trials"] for r in group),
                           "seconds": statistics.fmean(r["seconds"] for r in group)})
    overall = {"series": len(per_series),
               "series_at_or_below_naive": sum(e["ours"] <= e["naive"] for e in per_series),
               "runs_at_or_below_naive": sum(r["at_or_below_naive"] for r in rows), "runs": len(rows)}
    return per_series, overall


HEADER = ("| series | steps | missing | window / season | ours MASE | naive | seasonal naive | "
          "ours / naive | wins | trials | s/run | ≤ run's baseline |")


def markdown(per_series, overall, args):
    legend = (f"Budget {args.budget:g} s per run, seeds {' '.join(map(str, args.seeds))}. MASE on each "
              "run's test windows, scaled by the training targets' mean change over one season, from "
              "the run's report.json (* where the report has none: recomputed on the same windows with "
              "gaps carried forward, as the run's baseline fills them). Wins: seeds at or below the "
              "naive (last-value) forecast. Last column: seeds at or below the run's own baseline "
              "(the naive forecast that erred less on the training windows), on MAE.")
    lines = [legend, "", HEADER, "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for e in per_series:
        mark = {key: "*" if key in e["recomputed"] else "" for key in ("naive_mase", "seasonal_naive_mase")}
        seasonal = "—" if e["seasonal_naive"] is None else f"{e['seasonal_naive']:.3f}{mark['seasonal_naive_mase']}"
        lines.append(f"| {e['series']} ({e['frequency']}) | {e['rows']} | {e['missing']} | "
                     f"{e['window']} / {e['season']} | {e['ours']:.3f} ± {e['ours_sd']:.3f} | "
                     f"{e['naive']:.3f}{mark['naive_mase']} | {seasonal} | {e['ratio']:.2f} | "
                     f"{e['wins']}/{e['seeds']} | {e['trials']:.0f} | {e['seconds']:.0f} | "
                     f"{e['baseline_wins']}/{e['seeds']} ({e['baseline']}) |")
    lines += ["", (f"Series at or below the naive forecast (mean over seeds): "
                   f"**{overall['series_at_or_below_naive']} of {overall['series']}**; runs: "
                   f"{overall['runs_at_or_below_naive']} of {overall['runs']}.")]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=120.0, help="search.time_budget of each run (s)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--series", nargs="+", default=list(SERIES), choices=list(SERIES))
    parser.add_argument("--json", default=os.path.join(_common.ROOT, "benchmarks", "results", "series_quality.json"))
    parser.add_argument("--markdown", help="default: the JSON's path with .md")
    parser.add_argument("--combine", nargs="+", metavar="JSON",
                        help="summarize the runs of earlier result files together (runs nothing)")
    args = parser.parse_args(argv)
    if args.combine:
        rows = _common.combined_runs(args)
    else:
        rows = []
        with tempfile.TemporaryDirectory() as folder:
            for name in args.series:
                for seed in args.seeds:
                    row = run_job(name, seed, args.budget, folder)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    per_series, overall = summarize(rows)
    _common.write_results(args, rows, {"series": per_series, "summary": overall},
                          markdown(per_series, overall, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
