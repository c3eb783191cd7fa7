"""Deployment-aware search against a plain accuracy search: accuracy at equal TFLite latency.

    python benchmarks/deployment.py [--family mlp|cnn] [--quick] [--json PATH]

Digits (mlp: the 64 pixels flat, figure 11; cnn: the 8x8 images, figure 12, whose latencies
spread wider), the catalog model, the product's split per seed, the same algorithm
(TPE), trial count and epochs for both searches:
- "accuracy only": `objective: val_accuracy`; each trial's float32 TFLite latency is measured
  afterwards, on a model built from its hyperparameters (latency depends on the architecture, not
  the weights), with the same function the search uses;
- "front": `objectives: [val_accuracy, tflite_latency_ms]`, the latency measured inside the search.

For each latency limit (the 25th, 50th and 75th percentiles of every trial's latency, pooled over
both methods and all seeds) the figure gives the best validation accuracy among the trials at or
under that latency, mean ± std over seeds, and the test accuracy of the member each search would
export (the front's knee; the plain search's best). It also reports what measuring costs the front
search in wall time.
"""

import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _common import figure  # noqa: E402

COMMAND = "python benchmarks/deployment.py [--family cnn]"
LATENCY = "tflite_latency_ms"
METHODS = ("accuracy only", "front")


FIGURES = {"mlp": 11, "cnn": 12}


def sizes(quick, family="mlp"):
    if quick:
        return {"seeds": [0], "trials": 4, "epochs": 2}
    if family == "cnn":  # a CNN trial costs about 3 MLP trials here
        return {"seeds": [0, 1, 2], "trials": 12, "epochs": 4}
    return {"seeds": [0, 1, 2], "trials": 20, "epochs": 5}


def one_search(data, method, seed, trials, epochs, directory, family="mlp"):
    import keras
    import numpy as np

    from tuning import deploy, search

    objectives = ["val_accuracy", LATENCY] if method == "front" else None
    started = time.perf_counter()
    result = search(data, families=[family], algorithm="tpe", objectives=objectives, max_trials=trials,
                    max_epochs=epochs, seed=seed, directory=directory, tracking=False, progress=False)
    wall = time.perf_counter() - started
    frame = result.trials[result.trials["status"] == "COMPLETED"]
    if method == "accuracy only":  # the latency of each trial's architecture, measured afterwards
        latencies = []
        for trial_id in frame["trial_id"]:
            keras.backend.clear_session()
            latencies.append(deploy.measure(result.build(trial_id), data.X_train, {LATENCY})[LATENCY])
        frame = frame.assign(**{LATENCY: latencies})
    predicted = result.best_model.predict(data.X_test, verbose=0).argmax(axis=1)
    return {"wall": wall, "trials": [(float(s), float(l)) for s, l in zip(frame["score"], frame[LATENCY])],
            "exported_test_accuracy": float(np.mean(predicted == data.y_test)),
            "exported_latency_ms": float(result.costs[LATENCY]) if result.costs else
            float(deploy.measure(result.best_model, data.X_train, {LATENCY})[LATENCY])}


def best_under(trials, limit):
    scores = [score for score, latency in trials if latency <= limit]
    return max(scores) if scores else None


def run(quick=False, family="mlp"):
    import numpy as np

    from keras_zoo.config import parse_config
    from keras_zoo.pipeline import load_data

    size = sizes(quick, family)
    shape = "image" if family == "cnn" else "flat"
    runs = {method: [] for method in METHODS}
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as work:
        for seed in size["seeds"]:
            data = load_data(parse_config({"data": {"source": "digits", "seed": seed, "shape": shape},
                                           "model": {"name": family}}))
            for method in METHODS:
                runs[method].append(one_search(data, method, seed, size["trials"], size["epochs"],
                                               os.path.join(work, f"{method}-{seed}".replace(" ", "")),
                                               family))
    pooled = [latency for method in METHODS for run_ in runs[method] for _, latency in run_["trials"]]
    limits = [float(np.percentile(pooled, q)) for q in (25, 50, 75)]

    def spread(values):
        values = [v for v in values if v is not None]
        if not values:
            return "none under it"
        deviation = statistics.pstdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.4f} ± {deviation:.4f} ({len(values)} seeds)"

    table = [["method"] + [f"best val accuracy at <= {limit * 1000:.1f} µs" for limit in limits]
             + ["exported: test accuracy", "exported: latency µs", "search wall s"]]
    gains = []
    for method in METHODS:
        cells = [spread([best_under(r["trials"], limit) for r in runs[method]]) for limit in limits]
        table.append([method] + cells + [
            spread([r["exported_test_accuracy"] for r in runs[method]]),
            f"{statistics.mean(r['exported_latency_ms'] for r in runs[method]) * 1000:.1f}",
            f"{statistics.mean(r['wall'] for r in runs[method]):.1f}"])
    for limit in limits:
        for plain, front in zip(runs["accuracy only"], runs["front"]):
            a, b = best_under(plain["trials"], limit), best_under(front["trials"], limit)
            if a is not None and b is not None:
                gains.append(b - a)
    gain = statistics.mean(gains) if gains else None
    # a gain counts when it is larger than its standard error over the limits x seeds
    error = statistics.stdev(gains) / len(gains) ** 0.5 if len(gains) > 1 else 0.0
    cost = statistics.mean(r["wall"] for r in runs["front"]) / statistics.mean(
        r["wall"] for r in runs["accuracy only"])
    return figure(FIGURES[family], f"Deployment-aware search: accuracy at equal TFLite latency ({family})",
                  metric="front - accuracy-only, best val accuracy at equal latency (mean over limits x seeds)",
                  value=None if gain is None else round(gain, 4),
                  target="> its standard error (the front more accurate at equal latency)",
                  passed=None if gain is None else gain > error, table=table,
                  details={method: runs[method] for method in METHODS},
                  notes=[f"digits ({shape}), catalog {family}, TPE, {size['trials']} trials x {size['epochs']} "
                         f"epochs per search, seeds {size['seeds']}; latency limits are the 25th/50th/75th "
                         f"percentiles of all trials' latencies",
                         f"the difference's standard error over limits x seeds: {error:.4f}",
                         f"the front search's wall time is {cost:.2f}x the accuracy-only search's "
                         f"(its TFLite conversion and timing, every trial)"],
                  command=COMMAND)


if __name__ == "__main__":
    import argparse

    import _common

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--family", choices=sorted(FIGURES), default="mlp")
    known, rest = parser.parse_known_args()
    _common.run_script(lambda quick: run(quick, known.family), rest)
