"""Where figure 6's memory growth comes from: resident memory across repeated trials of plain Keras,
no zoo code. Each trial builds, compiles and fits (1 epoch) an MLP on digits, then clears Keras's
session, as the tuner does; one fresh process per mode:

- `graph`: as `fit` runs by default (a traced train and test function per model), a full gc every
  10th trial (the tuner's GC_EVERY);
- `graph_gc`: a full gc every trial;
- `graph_trim`: as `graph`, then glibc's `malloc_trim(0)` (freed memory handed back to the system);
- `eager`: `run_eagerly=True` (no traced functions).

    python benchmarks/memory_probe.py [--trials 40] [--json PATH]

Prints, per mode, the RSS after trial 5 and after the last, the growth per trial and the number of
functions left in TensorFlow's eager context.
"""

import argparse
import json
import os
import subprocess
import sys

MODES = ("graph", "graph_gc", "graph_trim", "eager")


def child(mode, trials):
    import ctypes
    import gc

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    from sklearn.datasets import load_digits
    from tensorflow.python.eager import context

    def rss_mb():
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype("float32")
    libc = ctypes.CDLL("libc.so.6") if mode == "graph_trim" else None
    after = []
    for trial in range(trials):
        keras.backend.clear_session(free_memory=mode == "graph_gc" or trial % 10 == 0)
        if libc is not None:
            libc.malloc_trim(0)
        model = keras.Sequential([keras.Input((64,)),
                                  keras.layers.Dense(64 + 8 * (trial % 5), activation="relu"),
                                  keras.layers.Dense(10, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"],
                      run_eagerly=mode == "eager")
        model.fit(X, y, epochs=1, batch_size=32, validation_split=0.2, verbose=0)
        del model
        if mode == "graph_gc":
            gc.collect()
        after.append(rss_mb())
    return {"rss_mb": after, "functions": len(context.context().list_function_names())}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.trials)))
        return
    results = {}
    for mode in MODES:
        done = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", mode,
                               "--trials", str(args.trials)], capture_output=True, text=True, check=True)
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
        rss = results[mode]["rss_mb"]
        growth = rss[-1] - rss[4]
        print(f"{mode:10s} RSS after trial 5 {rss[4]:6.0f} MB, after trial {len(rss)} {rss[-1]:6.0f} MB: "
              f"{growth / (len(rss) - 5):5.2f} MB a trial; {results[mode]['functions']} functions "
              f"left in the eager context", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
