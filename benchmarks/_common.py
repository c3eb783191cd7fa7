"""Shared pieces of the benchmarks: machine description, timers, RSS, result records."""

import datetime
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # the scripts run as `python benchmarks/x.py` from any folder
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PACKAGES = ("tensorflow", "keras", "keras-tuner", "mlflow", "onnxruntime", "ai-edge-litert",
            "tf2onnx", "scikit-learn", "numpy")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions(packages=PACKAGES):
    from importlib import metadata

    found = {}
    for package in packages:
        for name in (package, f"{package}-cpu"):
            try:
                found[package] = metadata.version(name)
                break
            except metadata.PackageNotFoundError:
                continue
        else:
            found[package] = None
    return found


def machine():
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        "versions": versions(),
        "commit": _git_commit(),
    }


def _git_commit():
    """HEAD, with '+dirty' when the product's tracked files differ from it (others' edits)."""
    def git(*args):
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "zoo", "tuning", "export",
                "evaluation", "keras_zoo")
    return commit + ("+dirty" if dirty else "")


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def cpu_seconds():
    """User + system CPU time of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def rss_mb():
    """Resident set size of this process in MiB, from /proc (no psutil needed)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def median(values):
    return float(statistics.median(values)) if values else float("nan")


class Stopwatch:
    """Wall and CPU seconds of a block: `with Stopwatch() as watch: ...; watch.wall`."""

    def __enter__(self):
        self._wall, self._cpu = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self._wall
        self.cpu = cpu_seconds() - self._cpu
        return False


def figure(number, title, *, metric, value, target, passed, unit="", table=None, details=None,
           notes=None, status=None, command=None):
    """One figure's record: what run_all renders into RESULTS.md and the quick test checks."""
    if status is None:
        status = "pass" if passed else "miss"
    return {
        "figure": number, "title": title, "metric": metric, "value": value, "unit": unit,
        "target": target, "passed": passed, "status": status, "table": table or [],
        "details": details or {}, "notes": notes or [], "command": command,
    }


def run_script(module_run, argv=None):
    """`python benchmarks/x.py [--quick] [--json PATH]`: run the figures and print/write them."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for CI")
    parser.add_argument("--json", help="write the figure records here")
    args = parser.parse_args(argv)
    started, cpu = time.perf_counter(), cpu_seconds()
    figures = module_run(quick=args.quick)
    if isinstance(figures, dict):
        figures = [figures]
    wall, used = time.perf_counter() - started, cpu_seconds() - cpu
    for record in figures:
        record.setdefault("wall_s", round(wall, 1))
        record.setdefault("cpu_s", round(used, 1))
        record["date"] = now()
        record["machine"] = machine()
        record["quick"] = args.quick
    text = json.dumps(figures, indent=2, default=_jsonable)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(text)
    else:
        print(text)
    return figures


def _jsonable(value):
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:
        pass
    return str(value)


def python():
    """The interpreter running the benchmarks (the project's virtualenv)."""
    return sys.executable


def run_group(command, timeout, **kwargs):
    """Run `command` in its own process group, ended whole (its children too) when it finishes or
    at `timeout` seconds; (returncode, stdout, stderr), returncode None when it timed out."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, **kwargs)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
        returncode = process.returncode
    except subprocess.TimeoutExpired:
        returncode = None
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # anything it left behind
        except ProcessLookupError:
            pass
    if returncode is None:
        stdout, stderr = process.communicate()
    return returncode, stdout or "", stderr or ""


def run_quiet(command, **kwargs):
    return subprocess.run(command, capture_output=True, text=True, **kwargs)


def write_results(args, rows, summary, markdown_text):
    """A benchmark's runs and `summary` ({key: value}, e.g. per table and overall) as JSON at
    `args.json` (its arguments beside them, that path relative to the repository), its markdown
    table next to it (or at `args.markdown`), and the table printed."""
    import json

    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as handle:
        json.dump({"machine": machine(), "args": {**vars(args), "json": os.path.relpath(args.json, ROOT)},
                   "runs": rows, **summary}, handle, indent=2)
    with open(args.markdown or os.path.splitext(args.json)[0] + ".md", "w") as handle:
        handle.write(markdown_text + "\n")
    print(markdown_text)


def combined_runs(args):
    """The runs of the result files `args.combine` names, one list, with `args.seeds` and
    `args.budget` set from them: earlier runs summarized together, nothing run again."""
    import json

    rows = []
    for path in args.combine:
        with open(path) as handle:
            rows += json.load(handle)["runs"]
    args.seeds = sorted({row["seed"] for row in rows})
    args.budget = rows[0]["budget_s"]
    return rows
