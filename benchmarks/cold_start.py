"""Figure 5: cold start of `zoo list` vs `python -c "import tensorflow"`, fresh processes,
alternating, medians; plus `-X importtime`'s heaviest imports of `zoo list` as the profile.

    python benchmarks/cold_start.py [--quick] [--json PATH]
"""

import os
import shutil
import subprocess
import sys
import time

import _common  # noqa: F401
from _common import figure, median

COMMAND = "python benchmarks/cold_start.py"


def zoo_command():
    script = os.path.join(os.path.dirname(sys.executable), "zoo")
    if os.path.exists(script):
        return [script, "list"], "zoo list"
    found = shutil.which("zoo")
    if found:
        return [found, "list"], "zoo list"
    return [sys.executable, "-m", "keras_zoo", "list"], "python -m keras_zoo list"


def timed(command):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed: {done.stderr[-500:]}")
    return wall


def import_profile(top=8):
    """The heaviest cumulative imports of `zoo list` (python -X importtime)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "keras_zoo", "list"],
                          capture_output=True, text=True)
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self_us, cumulative_us, name = line[len("import time:"):].split("|")
        rows.append((int(cumulative_us), name.strip()))
    heavy = sorted(rows, reverse=True)[:top]
    imported = {name for _, name in rows}
    return heavy, "tensorflow" in imported, len(rows)


def run(quick=False):
    repeats = 1 if quick else 9
    ours_command, label = zoo_command()
    baseline = [sys.executable, "-c", "import tensorflow"]
    ours_times, base_times = [], []
    if not quick:
        timed(ours_command)  # page cache warm for both; not counted
        timed(baseline)
    for index in range(repeats):
        pair = [(ours_command, ours_times), (baseline, base_times)]
        for command, bucket in (pair if index % 2 == 0 else pair[::-1]):
            bucket.append(timed(command))
    ours, base = median(ours_times), median(base_times)
    ratio = ours / base
    heavy, imports_tf, count = import_profile()
    table = [["command", "median s", "runs"],
             [label, f"{ours:.3f}", str(repeats)],
             ['python -c "import tensorflow"', f"{base:.3f}", str(repeats)]]
    profile = [["`zoo list` import (python -X importtime)", "cumulative ms"]]
    profile += [[name, f"{us / 1000:.0f}"] for us, name in heavy]
    return figure(
        5, "Cold start: `zoo list` vs `import tensorflow`", metric="wall ratio", value=round(ratio, 3),
        target="<= 0.15", passed=ratio <= 0.15 and not imports_tf, table=table,
        details={"ours_s": ours_times, "tensorflow_s": base_times, "profile": profile,
                 "zoo_list_imports_tensorflow": imports_tf, "modules_imported": count},
        notes=[f"`zoo list` imports tensorflow: {imports_tf}; {count} modules imported",
               "interpreter start-up alone is part of both numbers"],
        command=COMMAND)


if __name__ == "__main__":
    _common.run_script(run)
