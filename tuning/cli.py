"""`zoo tune CONFIG.yaml`: run the search a config describes (no evaluation or export).

Importing this module does not import TensorFlow."""

import os


def add_arguments(parser):
    parser.add_argument("config", help="run configuration (YAML)")
    parser.add_argument("--out", default="out", help="output directory (default: out)")
    parser.add_argument("--verbose", action="store_true", help="show Keras per-epoch output")


def main(args):
    from tuning.config import load_config

    config = load_config(args.config)
    result, _ = run_config_search(config, args.out, verbose=args.verbose, retrain=True)
    path = os.path.join(args.out, "best_model.keras")
    result.best_model.save(path)
    print(f"best {result.objective}={result.best_score:.4f} ({result.family}); model: {path}; "
          f"MLflow run: {result.run_id}")
    return 0


def run_config_search(config, out_dir, *, verbose=False, retrain=True):
    """`run_search` with the search's own failures turned into exit code 1 messages."""
    from tuning.search import run_search

    return run_search(config, out_dir, verbose=verbose, retrain=retrain)
