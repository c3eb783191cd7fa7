"""Run every benchmark and write RESULTS.md: each figure with its ratio, target, pass/miss, date,
machine and command.

    python benchmarks/run_all.py            # full sizes; rewrites benchmarks/RESULTS.md and
                                            # benchmarks/results/*.json (the committed table)
    python benchmarks/run_all.py --only 4,5 # rerun those figures, re-render with the others' JSON
    python benchmarks/run_all.py --render   # re-render only, e.g. after a standalone script
                                            # (benchmarks/deployment.py, figure 11) wrote its JSON
    python benchmarks/run_all.py --quick [--out DIR] [--jobs 2]
                                            # tiny sizes for CI, written to DIR (a temp folder by
                                            # default); never touches the committed files
"""

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import _common  # noqa: E402

# script -> the figures it produces, in RESULTS.md order
SCRIPTS = [
    ("search_overhead", (1, 2)),
    ("search_quality", (3,)),
    ("inference_latency", (4,)),
    ("cold_start", (5,)),
    ("memory", (6,)),
    ("distributed_scaling", (7,)),
    ("autokeras_peer", (8,)),
]
# scripts run on their own (longer than the rest); their saved JSON is rendered here, never run
STANDALONE = [("deployment", (11,)), ("deployment_cnn", (12,))]
# the quality benchmarks (issue targets against the simplest strong baselines), run on their own
# for hours; their saved JSON (benchmarks/results/<name>.json) is summarized here
QUALITY = [("tabular_quality", 13, 120), ("tabular_quality_300", 14, 300), ("series_quality", 15, 120)]
TITLES = {1: "Tracking overhead", 2: "Per-trial fixed overhead", 3: "Search quality at equal wall budget",
          4: "Exported inference latency", 5: "Cold start", 6: "Memory across trials",
          7: "Distributed scaling", 8: "Peer: AutoKeras"}


def run_script(name, figures, json_path, quick, timeout):
    command = [sys.executable, os.path.join(HERE, f"{name}.py"), "--json", json_path]
    if quick:
        command.append("--quick")
    started, cpu = time.perf_counter(), _common.cpu_seconds()
    print(f"[run_all] {name} (figure {', '.join(map(str, figures))})...", flush=True)
    # its own process group, ended whole (a script's children, e.g. the AutoKeras process, must
    # not run on and load the machine)
    returncode, _, stderr = _common.run_group(command, timeout)
    failure = (f"timed out after {timeout} s" if returncode is None
               else None if returncode == 0 else stderr.strip()[-2000:])
    wall, used = time.perf_counter() - started, _common.cpu_seconds() - cpu
    if failure is None and os.path.exists(json_path):
        with open(json_path) as handle:
            records = json.load(handle)
        for record in records:  # the child's own clock misses interpreter start-up and imports
            record["wall_s"], record["cpu_s"] = round(wall, 1), round(used, 1)
    else:
        records = [_common.figure(n, TITLES[n], metric="error", value=None, target="", passed=None,
                                  status="error", notes=[f"{name}.py failed: {failure}"],
                                  command=f"python benchmarks/{name}.py")
                   for n in figures]
        for record in records:
            record.update(date=_common.now(), machine=_common.machine(), quick=quick,
                          wall_s=round(wall, 1), cpu_s=round(used, 1))
        with open(json_path, "w") as handle:
            json.dump(records, handle, indent=2)
    print(f"[run_all] {name}: {wall:.0f} s wall, {used:.0f} s CPU; "
          + "; ".join(f"fig {r['figure']} {r['status']} {r['value']}" for r in records), flush=True)
    return records


def quality_records(json_dir):
    """Figures 13-15 from the quality benchmarks' saved results (those present)."""
    records = []
    for name, number, budget in QUALITY:
        path = os.path.join(json_dir, f"{name}.json")
        if not os.path.exists(path):
            continue
        with open(path) as handle:
            saved = json.load(handle)
        seeds = sorted({run["seed"] for run in saved["runs"]})
        machine = dict(saved.get("machine") or {})
        script = name.split("_quality")[0] + "_quality"
        command = f"python benchmarks/{script}.py --budget {budget:g} --seeds {' '.join(map(str, seeds))}"
        if name.startswith("series"):
            records.append(_series_record(number, saved, budget, seeds, command))
        else:
            records.append(_tables_record(number, saved, budget, seeds, command))
        records[-1]["notes"].append(f"written at commit {machine.get('commit', 'unknown')}; the runs' "
                                    "own rows and seeds: benchmarks/results/" + f"{name}.json")
        records[-1].update(machine=machine,
                           wall_s=round(sum(run["seconds"] for run in saved["runs"]), 1))
    return records


def _tables_record(number, saved, budget, seeds, command):
    summary = saved["summary"]["defaults"]
    mean, worst = summary["mean_gap_points"], summary["worst_gap_points"]
    table = [["table", "task", "rows", "metric", "ours (mean ± sd)", "HistGradientBoosting",
              "gap (points)", "s/run"]]
    for row in saved["tables"]:
        if row["variant"] == "defaults":
            table.append([row["table"], row["task"], str(row["rows"]), row["metric"],
                          f"{row['ours']:.3f} ± {row['ours_sd']:.3f}", f"{row['baseline']:.3f}",
                          f"{row['gap_points']:+.1f}", f"{row['seconds']:.0f}"])
    return _common.figure(
        number, f"Tables vs HistGradientBoosting at {budget:g} s", metric="mean gap, worst gap (points)",
        value=f"{mean:+.1f}, {worst:+.1f}", target="mean >= -1, worst >= -3",
        passed=mean >= -1 and worst >= -3, table=table, command=command,
        notes=[f"{summary['tables']} tables, seeds {', '.join(map(str, seeds))}; accuracy (R² for "
               "regression) on each run's test split, HistGradientBoosting on the same training rows"])


def _series_record(number, saved, budget, seeds, command):
    summary = saved["summary"]
    table = [["series", "window / season", "ours MASE", "naive", "seasonal naive", "wins", "s/run"]]
    for row in saved["series"]:
        table.append([row["series"], f"{row['window']} / {row['season']}",
                      f"{row['ours']:.3f} ± {row['ours_sd']:.3f}", f"{row['naive']:.3f}",
                      f"{row['seasonal_naive']:.3f}", f"{row['wins']}/{row['seeds']}",
                      f"{row['seconds']:.0f}"])
    return _common.figure(
        number, f"Series vs the naive forecast at {budget:g} s", metric="series at or below the naive MASE",
        value=f"{summary['series_at_or_below_naive']} of {summary['series']}",
        target="every series", passed=summary["series_at_or_below_naive"] == summary["series"],
        table=table, command=command,
        notes=[f"runs at or below the naive forecast: {summary['runs_at_or_below_naive']} of "
               f"{summary['runs']} (seeds {', '.join(map(str, seeds))})"])


def git_state():
    def git(*args):
        done = subprocess.run(["git", *args], cwd=_common.ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "zoo", "tuning", "export",
                "evaluation", "keras_zoo")
    return commit or "unknown", bool(dirty)


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(rows):
    if not rows:
        return []
    lines = ["| " + " | ".join(_cell(c) for c in rows[0]) + " |",
             "|" + "|".join("---" for _ in rows[0]) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows[1:]]
    return lines


def _value(record):
    value = record["value"]
    if value is None:
        return record["status"]
    if record.get("unit") == "" and record["metric"] == "share":
        return f"{value:.1%}"
    return f"{value}{record.get('unit') or ''}"


def render(records, quick, command, json_dir):
    commit, dirty = git_state()
    machines = {json.dumps({k: r["machine"][k] for k in ("cores", "cpu_model", "versions")},
                           sort_keys=True) for r in records if r.get("machine")}
    first = next((r["machine"] for r in records if r.get("machine")), _common.machine())
    lines = [
        "# keras-zoo benchmarks" + (" (quick mode: tiny sizes, numbers not meaningful)" if quick else ""),
        "",
        f"Generated by `{command}` on {_common.now()}. Each script runs the baseline and ours in the "
        "same script, alternating where it makes sense, and reports medians. Rerun one figure with "
        "`python benchmarks/run_all.py --only N`.",
        "",
        f"Machine: {first['cores']} cores, {first['cpu_model']}, Python {first['python']}, "
        f"{first['platform']}; code at commit {commit}"
        + (" with uncommitted changes in zoo/tuning/export/evaluation" if dirty else "")
        + ".",
        "",
        "Library versions: " + ", ".join(f"{k} {v}" for k, v in first["versions"].items() if v) + ".",
        "",
        "This machine's CPUs were shared with other jobs while these ran; each figure lists the load "
        "average when it started and its own wall and CPU seconds. Ratios come from alternating "
        "runs, so both sides saw the same load; absolute times are noisier.",
        "",
        "## Summary",
        "",
    ]
    if len(machines) > 1:
        lines[7:7] = ["Note: figures were produced on more than one machine/version set; see each figure.", ""]
    summary = [["#", "figure", "metric", "value", "target", "status", "date", "wall s", "CPU s", "load at start"]]
    for r in records:
        summary.append([str(r["figure"]), r["title"], r["metric"], _value(r), r["target"], r["status"].upper(),
                        r.get("date", "")[:10], str(r.get("wall_s", "")), str(r.get("cpu_s", "")),
                        " ".join(map(str, r.get("machine", {}).get("load_average_at_start", [])))])
    lines += _table(summary) + [""]
    for r in records:
        lines += [f"## {r['figure']}. {r['title']}", "",
                  f"**{r['metric']}: {_value(r)}** (target {r['target']}): **{r['status'].upper()}**", "",
                  f"Command: `{r.get('command')}`" + (" --quick" if quick else "")
                  + (f" · date {r['date']}" if r.get("date") else "")
                  + f" · {r.get('wall_s', '?')} s wall"
                  + (f", {r['cpu_s']} s CPU" if r.get("cpu_s") is not None else ""), ""]
        lines += _table(r.get("table"))
        if r.get("table"):
            lines.append("")
        for extra in r.get("details", {}).get("profile_tables", []):
            lines += _table(extra) + [""]
        if r.get("details", {}).get("profile") and r["figure"] == 5:
            lines += _table(r["details"]["profile"]) + [""]
        lines += [f"- {note}" for note in r.get("notes", [])]
        lines.append("")
    for name in sorted(os.listdir(json_dir)):  # profiles written by benchmarks/profile_*.py
        if name.startswith("profile_") and name.endswith(".md"):
            with open(os.path.join(json_dir, name)) as handle:
                lines += [handle.read().rstrip(), ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI); writes to --out, never to the committed files")
    parser.add_argument("--out", help="folder for RESULTS.md and the JSON (quick: a temp folder by default)")
    parser.add_argument("--only", help="comma-separated figure numbers to rerun (full mode re-renders with the others' saved JSON)")
    parser.add_argument("--render", action="store_true", help="only re-render RESULTS.md from the saved JSON")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per script")
    parser.add_argument("--jobs", type=int, default=1,
                        help="scripts run side by side (quick mode only: timings of scripts that share "
                             "the machine are not comparable; the full run is always one at a time)")
    args = parser.parse_args(argv)
    if args.jobs < 1 or (args.jobs > 1 and not args.quick):
        parser.error("--jobs N needs N >= 1, and N > 1 only with --quick")
    if args.quick:
        out = args.out or tempfile.mkdtemp(prefix="keras-zoo-bench-quick-")
        json_dir = out
    else:
        out = args.out or HERE
        json_dir = os.path.join(out, "results")
    os.makedirs(json_dir, exist_ok=True)
    wanted = {int(n) for n in args.only.split(",")} if args.only else None
    if args.render:
        wanted = set()
    timeout = args.timeout or (900 if args.quick else 1800)
    records, chosen = [], []
    for name, figures in SCRIPTS:
        json_path = os.path.join(json_dir, f"{name}.json")
        if wanted is None or wanted & set(figures):
            chosen.append((name, figures, json_path))
        elif os.path.exists(json_path):
            with open(json_path) as handle:
                records += json.load(handle)
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_script, name, figures, json_path, args.quick, timeout)
                   for name, figures, json_path in chosen]
        for future in futures:
            records += future.result()
    if not args.quick:
        for name, _ in STANDALONE:
            json_path = os.path.join(json_dir, f"{name}.json")
            if os.path.exists(json_path):
                with open(json_path) as handle:
                    records += json.load(handle)
        records += quality_records(json_dir)
    present = {r["figure"] for r in records}
    for name, figures in SCRIPTS:  # a figure with no saved result says so rather than vanishing
        for number in figures:
            if number not in present:
                records.append(_common.figure(
                    number, TITLES[number], metric="not run", value=None, target="", passed=None,
                    status="not run", notes=[f"no result saved yet: run `python benchmarks/run_all.py --only {number}`"],
                    command=f"python benchmarks/{name}.py"))
    records.sort(key=lambda r: r["figure"])
    command = "python benchmarks/run_all.py" + (" --quick" if args.quick else "")
    path = os.path.join(out, "RESULTS.md")
    with open(path, "w") as handle:
        handle.write(render(records, args.quick, command, json_dir))
    print(f"[run_all] wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
