"""Figure 6: the memory of a search's whole process tree across its trials: ours (trials in worker
processes, recycled after `search.trials_per_worker`), ours in one process, plain Keras Tuner.

Each search runs in its own fresh process (so none sees another's allocations). A thread of that
process samples the resident memory of the process and of every descendant (its worker
processes) every 0.1 s, from /proc; each sample is counted against the trial that was running
(fits ended so far + 1, from the files the hypermodel writes when a fit ends). A trial's figure is
the tree's peak while it ran. Growth is the peak over the last trials (46-50) minus the peak over
the first ones (1-5); the peak over trials 1-30 minus trials 1-5 is the issue's test criterion
(<= 100 MB), kept here because a 30-trial search is too slow for the test suite.

    python benchmarks/memory.py [--quick] [--json PATH]
"""

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import _common
from _common import figure

COMMAND = "python benchmarks/memory.py"
HERE = os.path.abspath(__file__)
VARIANTS = ("plain_kt", "ours_inline", "ours")


def sizes(quick):
    if quick:
        return {"trials": 4, "epochs": 1, "first": 2, "middle": 3}
    return {"trials": 50, "epochs": 1, "first": 5, "middle": 30}


def tree_rss_mb(root):
    """Resident MiB of `root` and all its descendants, from /proc."""
    total, pending = 0.0, [root]
    while pending:
        pid = pending.pop()
        try:
            with open(f"/proc/{pid}/status") as handle:
                total += next((int(line.split()[1]) for line in handle if line.startswith("VmRSS:")), 0) / 1024
            with open(f"/proc/{pid}/task/{pid}/children") as handle:
                pending += [int(child) for child in handle.read().split()]
        except (OSError, ValueError):
            continue  # it ended meanwhile
    return total


class TreeSampler:
    """Samples the process tree's RSS every `every` s in a thread: [(fits ended, MiB), ...]."""

    def __init__(self, fits_folder, every=0.1):
        import threading

        self.folder, self.every, self.samples = fits_folder, every, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        root = os.getpid()
        while not self._stop.wait(self.every):
            ended = sum(name.startswith("fit-") for name in os.listdir(self.folder))
            self.samples.append((ended, tree_rss_mb(root)))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False


def child(variant, trials, epochs, out_path):
    """In a fresh process: run the search, sampling its process tree; the samples to `out_path`."""
    import time

    from zoo.data import load_dataset

    data = load_dataset("digits", seed=0)
    from tuning.hypermodel import ZooHyperModel

    work = tempfile.mkdtemp(prefix=f"bench-memory-{variant}-")
    fits = os.path.join(work, "fits")
    os.makedirs(fits)

    class Recording(ZooHyperModel):  # pickled by value to a worker process: no closure over locals
        def fit(self, hp, model, *args, **kwargs):
            try:
                return super().fit(hp, model, *args, **kwargs)
            finally:
                with open(os.path.join(self.fits_folder, f"fit-{time.monotonic_ns()}"), "w"):
                    pass

    hypermodel = Recording(["mlp"], input_shape=data.input_shape, num_outputs=data.num_outputs,
                           task=data.task)
    hypermodel.fits_folder = fits
    started = time.perf_counter()
    try:
        with TreeSampler(fits) as sampler:
            if variant in ("ours", "ours_inline"):
                from tuning import LocalRunner, search

                search(data, families=["mlp"], algorithm="random", max_trials=trials, max_epochs=epochs,
                       seed=0, directory=os.path.join(work, "search"),
                       tracking_uri=f"sqlite:///{os.path.join(work, 'mlflow.db')}",
                       experiment="bench-memory", progress=False, retrain=False, hypermodel=hypermodel,
                       runner=LocalRunner() if variant == "ours_inline" else None)
            else:
                import keras_tuner as kt

                tuner = kt.RandomSearch(hypermodel, objective="val_accuracy", max_trials=trials, seed=0,
                                        directory=work, project_name="kt", overwrite=True)
                tuner.search(data.X_train, data.y_train, validation_data=(data.X_val, data.y_val),
                             epochs=epochs, verbose=0)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the search folder and the store
    peaks = {}
    for ended, rss in sampler.samples:
        trial = min(ended + 1, trials)  # the one running (after the last: the search's end)
        peaks[trial] = max(rss, peaks.get(trial, 0.0))
    with open(out_path, "w") as handle:
        json.dump({"rss_mb": [peaks.get(t, float("nan")) for t in range(1, trials + 1)],
                   "wall": time.perf_counter() - started,
                   "inline": variant == "ours_inline" or bool(os.environ.get("KERAS_ZOO_INLINE_TRIALS"))
                   and variant == "ours"}, handle)


def run(quick=False):
    size = sizes(quick)
    series = {}
    with tempfile.TemporaryDirectory() as work:
        for variant in (("ours",) if quick else VARIANTS):
            path = os.path.join(work, f"{variant}.json")
            done = subprocess.run([sys.executable, HERE, "--child", variant, str(size["trials"]),
                                   str(size["epochs"]), path], check=False, capture_output=True,
                                  text=True)
            if done.returncode != 0:
                raise RuntimeError(f"memory child {variant} failed:\n{done.stderr[-2000:]}")
            with open(path) as handle:
                series[variant] = json.load(handle)
    first, middle, last = size["first"], size["middle"], size["trials"]

    def peak(rss, upto, after=0):
        return max(value for value in rss[after:upto] if not math.isnan(value))  # NaN: no sample

    growth = {v: peak(s["rss_mb"], last, last - first) - peak(s["rss_mb"], first) for v, s in series.items()}
    to_middle = {v: peak(s["rss_mb"], middle) - peak(s["rss_mb"], first) for v, s in series.items()}
    # quick mode runs ours only (CI time); the full run has the others beside it
    table = [["variant", f"tree peak, trials 1-{first} MB", f"trials {last - first + 1}-{last} MB",
              "growth MB", f"peak 1-{middle} minus 1-{first} MB", "per trial KB", "wall s"]]
    for variant, s in series.items():
        rss = s["rss_mb"]
        table.append([variant, f"{peak(rss, first):.0f}", f"{peak(rss, last, last - first):.0f}",
                      f"{growth[variant]:.1f}", f"{to_middle[variant]:.1f}",
                      f"{growth[variant] * 1024 / max(1, last - first):.0f}", f"{s['wall']:.0f}"])
    value = growth["ours"]
    notes = [(f"catalog MLP on digits, random search, {size['epochs']} epoch(s) per trial; ours with "
              "MLflow tracking to sqlite; each variant in a fresh process; RSS of the whole process "
              "tree (the search's process and its worker processes) sampled every 0.1 s"),
             ("ours: one worker process, replaced after search.trials_per_worker (10) trials; "
              "ours_inline: the same search in one process (runner=LocalRunner(), as before)"),
             (f"the issue's test criterion, a {middle}-trial search's tree peak at most 100 MB above a "
              f"{first}-trial search's: {to_middle['ours']:.1f} MB (here, not a test: too slow for CI)"),
             "tree peak per trial (ours): " + " ".join(f"{v:.0f}" for v in series["ours"]["rss_mb"])]
    if series["ours"].get("inline"):
        notes.append("KERAS_ZOO_INLINE_TRIALS was set (the test suite's quick run): ours ran in one process")
    return figure(
        6, f"Memory: the process tree's RSS across {last} trials of a small search",
        metric=f"tree peak growth, trials 1-{first} -> {last - first + 1}-{last}",
        value=round(value, 1), unit="MB", target="<= 150 MB", passed=value <= 150, table=table,
        details={"series": series, "growth_mb": growth, "peak_to_middle_mb": to_middle}, notes=notes,
        command=COMMAND)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        _common.run_script(run)
