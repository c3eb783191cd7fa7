"""`zoo lr-find CONFIG.yaml`: the learning-rate range test on the model a config describes (its
default configuration), writing `lr_finder.png` and `lr_finder.json`.

Importing this module does not import TensorFlow."""

import os


def add_arguments(parser):
    parser.add_argument("config", help="run configuration (YAML)")
    parser.add_argument("--out", default="out", help="output directory (default: out)")
    parser.add_argument("--min-lr", type=float, default=1e-6, help="first learning rate (default: 1e-6)")
    parser.add_argument("--max-lr", type=float, default=1.0, help="last learning rate (default: 1)")
    parser.add_argument("--steps", type=int, default=100, help="batches in the sweep (default: 100)")


def main(args):
    from keras_zoo.config import load_config
    from keras_zoo.pipeline import hypermodel_for, load_data
    from zoo import lr_finder
    from zoo._paths import check_writable_dir

    config = load_config(args.config)
    options = lr_finder.check_options(min_lr=args.min_lr, max_lr=args.max_lr, steps=args.steps,
                                      batch_size=config.search.batch_sizes[0], seed=config.search.seed)
    check_writable_dir(args.out, "out")
    data = load_data(config)

    import keras
    import keras_tuner as kt

    hypermodel = hypermodel_for(config, data)
    keras.utils.set_random_seed(config.search.seed)
    model = hypermodel.build(kt.HyperParameters())  # the default configuration of the first family
    result = lr_finder.find_learning_rate(model, data.X_train, data.y_train, **options)
    os.makedirs(args.out, exist_ok=True)
    plot = result.plot(os.path.join(args.out, "lr_finder.png"))
    result.save(os.path.join(args.out, "lr_finder.json"))
    diverged = f"; loss diverged at {result.diverged_at:.3g}" if result.diverged_at else ""
    print(f"suggested learning_rate={result.suggested_learning_rate:.3g} "
          f"({hypermodel.family_of({})}, {model.optimizer.name}{diverged}); plot: {plot}")
    return 0
