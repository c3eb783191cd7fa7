"""The benchmarks in quick mode: every figure still runs and produces a number (none rots), and
the committed RESULTS.md is left alone."""

import hashlib
import json
import os
import statistics
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "RESULTS.md")


def _median(values):
    return statistics.median(values)


# figure -> its headline value recomputed from the measurements it records, and its rounding
HEADLINE = {
    1: lambda d: d["wall"]["ours_tracked"] / d["wall"]["ours_untracked"],
    2: lambda d: d["shares"]["ours_tracked"]["share"],
    3: lambda d: statistics.fmean(d["ranks"][str(max(d["size"]["budgets"]))]["ours (defaults)"]),
    4: lambda d: min(d["speedups"].values()),
    5: lambda d: _median(d["ours_s"]) / _median(d["tensorflow_s"]),
    6: lambda d: d["growth_mb"]["ours"],
    7: lambda d: (_median([s["per_minute"] for s in d["samples"]["2"]])
                  / _median([s["per_minute"] for s in d["samples"]["1"]])),
    8: lambda d: d["ours"]["accuracy"] - d["autokeras"]["accuracy"],
}
DIGITS = {1: 3, 2: 4, 3: 3, 4: 1, 5: 3, 6: 1, 7: 3, 8: 4}


def _digest(path):
    if not os.path.exists(path):
        return None
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


@pytest.mark.slow
def test_quick_run_produces_a_number_for_every_figure(tmp_path):
    before = _digest(RESULTS)
    done = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "run_all.py"), "--quick",
                           "--out", str(tmp_path), "--jobs", "2"], capture_output=True, text=True,
                          timeout=1800)  # ~2.5 min on an idle 2-core machine; generous for shared CPUs
    assert done.returncode == 0, done.stderr[-3000:]
    assert _digest(RESULTS) == before  # quick mode never rewrites the committed table
    records = []
    for name in sorted(os.listdir(tmp_path)):
        if name.endswith(".json"):
            with open(tmp_path / name) as handle:
                records += json.load(handle)
    assert sorted(r["figure"] for r in records) == list(range(1, 9))
    by_figure = {record["figure"]: record for record in records}
    for record in records:
        assert record["status"] in ("pass", "miss"), record  # a number for every figure, AutoKeras too
        assert record["quick"] is True and record["machine"]["cores"] >= 1 and record["date"]
        assert isinstance(record["value"], (int, float)), record
        assert record["status"] == ("pass" if record["passed"] else "miss"), record
        # each headline number is what its own measurements give, not a constant or a stale value
        assert record["value"] == pytest.approx(HEADLINE[record["figure"]](record["details"]),
                                                abs=10 ** -DIGITS[record["figure"]]), record
    assert "`zoo list` imports tensorflow: False" in by_figure[5]["notes"][0]
    text = (tmp_path / "RESULTS.md").read_text()
    for record in records:  # what the table shows is the record's number
        assert f"{record['value']}{record.get('unit') or ''}" in text or f"{record['value']:.1%}" in text
    assert "quick mode" in text and "## 8." in text and "Library versions" in text
