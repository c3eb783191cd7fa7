"""Figure 7: parallel trials on one machine, trials per minute with `zoo tune --workers 2`
(`search.parallel: 2`: two worker processes, each with half the cores' TensorFlow threads) vs 1.

Runs only once `tuning/distributed` is on main (committed); until then the figure is recorded
as pending. Both runs use the same config (catalog MLP on digits, random search), alternate, and
count completed trials from Keras Tuner's trial files. The headline counts the whole command's
wall (start-up included); the trial phase (from the chief serving to the last trial's line) is
shown beside it.

    python benchmarks/distributed_scaling.py [--quick] [--json PATH]
"""

import glob
import json
import os
import subprocess
import sys
import tempfile

import _common
from _common import ROOT, Stopwatch, figure, median

COMMAND = "python benchmarks/distributed_scaling.py"


def sizes(quick):
    if quick:
        return {"trials": 2, "epochs": 1, "rounds": 1}
    return {"trials": 8, "epochs": 2, "rounds": 1}


def available():
    """(True, '') when tuning/distributed is committed on this checkout, else (False, why)."""
    path = os.path.join(ROOT, "tuning", "distributed")
    if not os.path.exists(path):
        return False, "tuning/distributed does not exist yet"
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", "tuning/distributed"],
                             check=False, cwd=ROOT, capture_output=True)
    if tracked.returncode != 0 and os.path.isdir(os.path.join(ROOT, ".git")):
        return False, "tuning/distributed is not committed on main yet (work in progress)"
    return True, ""


def write_config(folder, size):
    import yaml

    config = {
        "data": {"source": "digits", "seed": 0},
        "model": {"name": "mlp"},
        "search": {"algorithm": "random", "max_trials": size["trials"], "max_epochs": size["epochs"],
                   "seed": 0},
        "tracking": {"uri": f"sqlite:///{os.path.join(folder, 'mlflow.db')}",
                     "experiment": "bench-distributed"},
    }
    path = os.path.join(folder, "config.yaml")
    with open(path, "w") as handle:
        yaml.safe_dump(config, handle)
    return path


def completed_trials(out_dir):
    count = 0
    for path in glob.glob(os.path.join(out_dir, "**", "trial.json"), recursive=True):
        with open(path) as handle:
            count += json.load(handle).get("status") == "COMPLETED"
    return count


def tune(config, out_dir, workers):
    """One `zoo tune --workers N`: its wall, completed trials, and the trial phase's seconds (its
    stdout read as it comes: from "chief serving" to the last "trial i/n" line)."""
    import time

    command = [sys.executable, "-m", "keras_zoo", "tune", config, "--out", out_dir, "--workers", str(workers)]
    serving = last_trial = None
    with Stopwatch() as watch:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   cwd=os.path.dirname(config))
        for line in process.stdout:
            if line.startswith("chief serving") and serving is None:
                serving = time.perf_counter()
            elif line.startswith("trial "):
                last_trial = time.perf_counter()
        stderr = process.stderr.read()
        process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}: {stderr[-1500:]}")
    trials = completed_trials(out_dir)
    phase = last_trial - serving if serving and last_trial else None  # None: trials ran inline
    return {"wall": watch.wall, "trials": trials, "per_minute": trials / watch.wall * 60,
            "trial_phase_s": phase, "phase_per_minute": trials / phase * 60 if phase else None}


def run(quick=False):
    ok, why = available()
    if not ok:
        return figure(7, "Distributed scaling: 2 workers vs 1", metric="trials/minute ratio",
                      value=None, target=">= 1.7", passed=None, status="pending",
                      notes=[f"pending: {why}; this script runs it once it lands"], command=COMMAND)
    size = sizes(quick)
    samples, retried = {1: [], 2: []}, []
    with tempfile.TemporaryDirectory(prefix="bench-distributed-") as work:
        config = write_config(work, size)
        from mlflow import MlflowClient  # the store exists before any clock starts, as a user's would

        MlflowClient(f"sqlite:///{os.path.join(work, 'mlflow.db')}").create_experiment("bench-distributed")
        for index in range(size["rounds"]):
            for workers in ((1, 2) if index % 2 == 0 else (2, 1)):
                folder = os.path.join(work, f"r{index}-w{workers}")
                try:
                    samples[workers].append(tune(config, folder, workers))
                except RuntimeError as error:  # e.g. a worker gave up on a slow chief: once more
                    retried.append(f"--workers {workers}: {str(error).strip().splitlines()[-2][:300]}")
                    try:
                        samples[workers].append(tune(config, folder + "-retry", workers))
                    except RuntimeError as again:
                        return figure(7, "Distributed scaling: 2 workers vs 1", metric="trials/minute ratio",
                                      value=None, target=">= 1.7", passed=None, status="error",
                                      notes=[(f"`zoo tune --workers {workers}` failed twice: "
                                             f"{str(again).strip().splitlines()[-2][:400]}")] + retried,
                                      command=COMMAND)
    rate = {w: median([s["per_minute"] for s in runs]) for w, runs in samples.items()}
    ratio = rate[2] / rate[1]
    phase = {w: median([s["phase_per_minute"] for s in runs if s["phase_per_minute"]]) for w, runs in samples.items()}
    table = [["workers", "median trials/min", "median wall s", "trial phase trials/min", "trials per run"]]
    for workers, runs in samples.items():
        table.append([str(workers), f"{rate[workers]:.2f}", f"{median([s['wall'] for s in runs]):.1f}",
                      f"{phase[workers]:.2f}", ",".join(str(s["trials"]) for s in runs)])
    return figure(7, "Distributed scaling: 2 workers vs 1", metric="trials/minute ratio",
                  value=round(ratio, 3), target=">= 1.7", passed=ratio >= 1.7, table=table,
                  details={"samples": samples},
                  notes=[(f"{size['trials']} trials x {size['epochs']} epochs, catalog MLP on digits; "
                         f"wall includes the chief's and workers' start-up"),
                         f"trial phase only (the chief serving to the last trial): {phase[2] / phase[1]:.3f}x",
                         *[f"failed once and was rerun: {r}" for r in retried],
                         f"{os.cpu_count()} cores on this machine"],
                  command=COMMAND)


if __name__ == "__main__":
    _common.run_script(run)
