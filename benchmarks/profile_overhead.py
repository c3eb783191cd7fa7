"""Profile behind figure 2: where our search's time outside `fit` goes, and what skipping the
full garbage collection in `clear_session` would change.

Two fresh processes run the same tracked search (catalog MLP on digits, 8 trials x 2 epochs):
"as shipped", and with `keras.backend.clear_session` called with `free_memory=False` (the
change proposed for `ZooTuner.on_trial_begin`). Timers wrap `gc.collect`, the tracker's trial
calls and model building. Writes `results/profile_overhead.md`, which run_all appends to
RESULTS.md.

    python benchmarks/profile_overhead.py [--out PATH]
"""

import json
import os
import subprocess
import sys
import time

import _common
from _common import rss_mb

HERE = os.path.dirname(os.path.abspath(__file__))
TRIALS, EPOCHS = 8, 2


def child(mode):
    import functools
    import gc
    import tempfile

    import keras

    timers = {"gc.collect": 0.0, "Tracker.start_trial": 0.0, "Tracker.end_trial": 0.0,
              "hypermodel.build": 0.0}

    def timed(name, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                timers[name] += time.perf_counter() - started
        return wrapper

    gc.collect = timed("gc.collect", gc.collect)
    if mode == "free_memory_false":
        real = keras.backend.clear_session
        keras.backend.clear_session = lambda free_memory=True: real(free_memory=False)
    from tuning import tracking
    from tuning.hypermodel import ZooHyperModel

    tracking.Tracker.start_trial = timed("Tracker.start_trial", tracking.Tracker.start_trial)
    tracking.Tracker.end_trial = timed("Tracker.end_trial", tracking.Tracker.end_trial)
    ZooHyperModel.build = timed("hypermodel.build", ZooHyperModel.build)
    from search_overhead import load, ours

    data = load()
    work = tempfile.mkdtemp(prefix="bench-profile-")
    uri = f"sqlite:///{os.path.join(work, 'mlflow.db')}"
    ours(data, 1, 1, os.path.join(work, "warm"), uri)
    for key in timers:
        timers[key] = 0.0
    result = ours(data, TRIALS, EPOCHS, os.path.join(work, "run"), uri)
    print(json.dumps({"wall": result["wall"], "cpu": result["cpu"], "fit": result["fit"],
                      "timers": timers, "rss_mb": rss_mb()}))


def main():
    out = os.path.join(HERE, "results", "profile_overhead.md")
    if "--out" in sys.argv:
        out = sys.argv[sys.argv.index("--out") + 1]
    rows = {}
    for mode in ("as_shipped", "free_memory_false"):
        done = subprocess.run([sys.executable, __file__, "--child", mode], capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(done.stderr[-2000:])
        rows[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    lines = [f"## Profile: figure 2's time outside fit ({_common.now()})", "",
             f"Command: `python benchmarks/profile_overhead.py`. One tracked search, {TRIALS} trials x "
             f"{EPOCHS} epochs, catalog MLP on digits, each mode in a fresh process; the load average "
             f"at start was {' '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} cores.", "",
             "| mode | search wall s | CPU s | inside fit s | outside fit s | share outside | gc.collect s "
             "| Tracker.start+end_trial s | model build s | RSS at end MB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for mode, r in rows.items():
        t = r["timers"]
        outside = r["wall"] - r["fit"]
        lines.append(f"| {mode} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['fit']:.1f} | {outside:.1f} | "
                     f"{outside / r['wall']:.1%} | {t['gc.collect']:.1f} | "
                     f"{t['Tracker.start_trial'] + t['Tracker.end_trial']:.2f} | {t['hypermodel.build']:.2f} | "
                     f"{r['rss_mb']:.0f} |")
    with open(out, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
