"""Figure 6: resident memory across the trials of one small search, ours vs plain Keras Tuner.

Each search runs in its own fresh process (so neither sees the other's allocations): ours is
`tuning.search` with MLflow tracking, the baseline Keras Tuner's `RandomSearch` over the same
hypermodel. RSS (from /proc) is read when each trial's `fit` returns.

    python benchmarks/memory.py [--quick] [--json PATH]
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import _common
from _common import figure

COMMAND = "python benchmarks/memory.py"
HERE = os.path.abspath(__file__)


def sizes(quick):
    if quick:
        return {"trials": 4, "epochs": 1, "first": 2}
    return {"trials": 50, "epochs": 1, "first": 5}


def child(variant, trials, epochs, out_path):
    """In a fresh process: run the search, write the RSS after each trial's fit to `out_path`."""
    import time

    from _common import rss_mb
    from zoo.data import load_dataset

    data = load_dataset("digits", seed=0)
    from tuning.hypermodel import ZooHyperModel

    after = []

    class Recording(ZooHyperModel):
        def fit(self, hp, model, *args, **kwargs):
            try:
                return super().fit(hp, model, *args, **kwargs)
            finally:
                after.append(rss_mb())

    hypermodel = Recording(["mlp"], input_shape=data.input_shape, num_outputs=data.num_outputs,
                           task=data.task)
    work = tempfile.mkdtemp(prefix=f"bench-memory-{variant}-")
    started = time.perf_counter()
    try:
        if variant == "ours":
            from tuning import search

            search(data, families=["mlp"], algorithm="random", max_trials=trials, max_epochs=epochs,
                   seed=0, directory=os.path.join(work, "search"),
                   tracking_uri=f"sqlite:///{os.path.join(work, 'mlflow.db')}",
                   experiment="bench-memory", progress=False, retrain=False, hypermodel=hypermodel)
        else:
            import keras_tuner as kt

            tuner = kt.RandomSearch(hypermodel, objective="val_accuracy", max_trials=trials, seed=0,
                                    directory=work, project_name="kt", overwrite=True)
            tuner.search(data.X_train, data.y_train, validation_data=(data.X_val, data.y_val),
                         epochs=epochs, verbose=0)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the search folder and the store
    with open(out_path, "w") as handle:
        json.dump({"rss_mb": after, "final_mb": rss_mb(), "wall": time.perf_counter() - started},
                  handle)


def run(quick=False):
    size = sizes(quick)
    series = {}
    with tempfile.TemporaryDirectory() as work:
        for variant in (("ours",) if quick else ("plain_kt", "ours")):
            path = os.path.join(work, f"{variant}.json")
            done = subprocess.run([sys.executable, HERE, "--child", variant, str(size["trials"]),
                                   str(size["epochs"]), path], capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"memory child {variant} failed:\n{done.stderr[-2000:]}")
            with open(path) as handle:
                series[variant] = json.load(handle)
    first, last = size["first"], size["trials"]
    growth = {v: s["rss_mb"][last - 1] - s["rss_mb"][first - 1] for v, s in series.items()}
    # quick mode runs ours only (CI time); the full run has plain Keras Tuner beside it
    table = [["variant", f"RSS after trial {first} MB", f"after trial {last} MB",
              f"growth {first}->{last} MB", "per trial KB", "peak MB"]]
    for variant, s in series.items():
        rss = s["rss_mb"]
        table.append([variant, f"{rss[first - 1]:.0f}", f"{rss[last - 1]:.0f}",
                      f"{growth[variant]:.1f}",
                      f"{growth[variant] * 1024 / max(1, last - first):.0f}", f"{max(rss):.0f}"])
    value = growth["ours"]
    return figure(
        6, f"Memory: RSS across {last} trials of a small search", metric=f"growth trial {first}->{last}",
        value=round(value, 1), unit="MB", target="<= 150 MB", passed=value <= 150, table=table,
        details={"series": series, "growth_mb": growth},
        notes=[f"catalog MLP on digits, random search, {size['epochs']} epoch(s) per trial; ours with "
               f"MLflow tracking to sqlite; each variant in a fresh process",
               "RSS every trial (ours): " + " ".join(f"{v:.0f}" for v in series["ours"]["rss_mb"])],
        command=COMMAND)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        _common.run_script(run)
