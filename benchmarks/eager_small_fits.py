"""Where a trial's fit should run eagerly: the wall time of one new catalog model's `fit`
(validation included, as a trial fits) as a traced graph and eagerly, over the number of training
steps. A new model traces its train and test functions once each, so graphs win only once there are
enough steps to repay that; `tuning.hypermodel.EAGER_MAX_STEPS` is set below the crossover.

    python benchmarks/eager_small_fits.py [--rounds 3] [--json PATH]
"""

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

STEPS = (8, 16, 32, 64, 128)


def fit_seconds(family, data, steps, eager, batch_size=32):
    import keras

    import zoo

    rows = len(data.X_train)
    batches = -(-rows // batch_size)
    epochs = max(1, round(steps / batches))
    keras.backend.clear_session()
    model = zoo.create_model(family, input_shape=data.input_shape, num_outputs=data.num_outputs,
                             task=data.task)
    model.run_eagerly = eager
    started = time.perf_counter()
    model.fit(data.X_train, data.y_train, validation_data=(data.X_val, data.y_val), epochs=epochs,
              batch_size=batch_size, verbose=0)
    return time.perf_counter() - started, epochs * batches


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    from zoo.data import load_dataset

    cases = {"mlp on breast_cancer": ("mlp", load_dataset("breast_cancer", seed=0)),
             "cnn on digits images": ("cnn", load_dataset("digits", shape="image", seed=0))}
    fit_seconds("mlp", cases["mlp on breast_cancer"][1], 8, False)  # TensorFlow's own start-up
    results = {}
    for name, (family, data) in cases.items():
        rows = []
        for steps in STEPS:
            graph, eager = [], []
            for _ in range(args.rounds):  # alternating, so both see the same load
                seconds, ran = fit_seconds(family, data, steps, eager=False)
                graph.append(seconds)
                eager.append(fit_seconds(family, data, steps, eager=True)[0])
            rows.append({"steps": ran, "graph_s": statistics.median(graph),
                         "eager_s": statistics.median(eager)})
            print(f"{name:22s} {ran:4d} steps: graph {rows[-1]['graph_s']:6.2f} s, "
                  f"eager {rows[-1]['eager_s']:6.2f} s", flush=True)
        results[name] = rows
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
