"""The `zoo` command line. `zoo list`, `zoo show` and `--help` never import TensorFlow; the other
commands live in `keras_zoo.commands`, whose modules import their heavy parts when run."""

import argparse
import gc
import importlib
import json
import os
import sys
import textwrap

from keras_zoo._logs import quiet
from zoo._json import jsonable
from zoo.errors import JobFailed, ZooError

# command -> module with `add_arguments(parser)` and `main(args) -> int`; `help` for the listing.
COMMANDS = {
    "tune": ("keras_zoo.commands.tune", "run the hyperparameter search a config describes"),
    "evaluate": ("keras_zoo.commands.evaluate", "evaluate a saved model on a dataset and write a report"),
    "export": ("keras_zoo.commands.export", "export a Keras model to SavedModel/TFLite/ONNX and verify each"),
    "lr-find": ("keras_zoo.commands.lr_find", "learning-rate range test: loss vs LR plot and a suggested LR"),
    "tracking-server": ("keras_zoo.commands.tracking_server", "start an MLflow tracking server (loopback by default)"),
    "predict": ("keras_zoo.commands.predict", "predict raw CSV rows with a saved model or an exported artifact"),
    "tracking": ("keras_zoo.commands.tracking", "tracking sync DIR: replay what a search logged locally while its MLflow server was down"),
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake as one `error:` line and exit code 2."""

    def error(self, message):
        raise _UsageError(message)


class _UsageError(Exception):
    pass


def _add_list(subparsers):
    parser = subparsers.add_parser("list", help="list the catalog's models")
    parser.add_argument("pattern", nargs="?", default="*", help="wildcard pattern, e.g. 'res*'")
    parser.add_argument("--task", help="only models supporting this task")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=_list)


def _list(args):
    import zoo

    names = zoo.list_models(args.pattern, task=args.task)
    rows = []
    for name in names:
        spec = zoo.get_spec(name)
        rows.append({"name": name, "tasks": list(spec.tasks), "input": spec.input_kind,
                     "summary": spec.summary})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max([len(r["name"]) for r in rows] + [4])
    for row in rows:
        print(f"{row['name']:<{width}}  {row['input']:<8}  {','.join(row['tasks']):<28}  {row['summary']}")
    return 0


def describe_model(name):
    """Everything `zoo show` prints about a model, as a dict (no TensorFlow import)."""
    import zoo
    from zoo import training
    from zoo._space import describe_space

    spec = zoo.get_spec(name)
    return {
        "name": name,
        "summary": spec.summary,
        "usage": _usage(spec.builder),
        "tasks": list(spec.tasks),
        "input": {"kind": spec.input_kind, "ranks": list(spec.input_ranks),
                  "example_shape": list(spec.example_input_shape)},
        "parameters": [
            {"name": param, "default": jsonable(spec.defaults[param]),
             "constraint": spec.constraints[param].description}
            for param in spec.constraints
        ],
        "training_options": [
            {"name": option, "default": jsonable(training.DEFAULTS[option]),
             "constraint": training.CONSTRAINTS[option].description}
            for option in training.CONSTRAINTS
        ],
        "search_space": [{k: jsonable(v) for k, v in entry.items()} for entry in describe_space(spec)],
    }


def _usage(builder):
    """The builder's docstring between its summary line and `Args:`: how the model is fed."""
    import inspect

    text = (inspect.getdoc(builder) or "").split("Args:")[0]
    return " ".join(text.split("\n", 1)[1].split()) if "\n" in text else ""


def _add_show(subparsers):
    parser = subparsers.add_parser("show", help="show a model's parameters and search space")
    parser.add_argument("name")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=_show)


def _show(args):
    info = describe_model(args.name)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['name']}: {info['summary']}")
    if info["usage"]:
        print(textwrap.fill(info["usage"], width=100))
    print(f"tasks: {', '.join(info['tasks'])}")
    example = tuple(info["input"]["example_shape"])
    print(f"input: {info['input']['kind']}, rank {' or '.join(map(str, info['input']['ranks']))}, e.g. {example}")
    print("\nparameters:")
    for param in info["parameters"]:
        print(f"  {param['name']} = {param['default']!r}  ({param['constraint']})")
    print("\ntraining options (create_model, config `model.params`):")
    for option in info["training_options"]:
        print(f"  {option['name']} = {option['default']!r}  ({option['constraint']})")
    print("\nsearch space:")
    for entry in info["search_space"]:
        details = ", ".join(f"{k}={v}" for k, v in entry.items() if k not in ("name", "type", "when"))
        when = f"  [when {entry['when']}]" if "when" in entry else ""
        print(f"  {entry['name']}: {entry['type']} ({details}){when}")
    return 0


def _add_run(subparsers):
    parser = subparsers.add_parser(
        "run", help="the main job: load data, search, retrain the best, evaluate, export")
    parser.add_argument("config", help="run configuration (YAML)")
    parser.add_argument("--out", default="out", help="output directory (default: out)")
    parser.add_argument("--verbose", action="store_true", help="show Keras per-epoch output")
    parser.set_defaults(handler=_run)


def _run(args):
    """search → retrain best → `best_model.keras` → report/ → export/ (each step as configured)."""
    from keras_zoo.config import load_config
    from keras_zoo.pipeline import run

    outcome = run(load_config(args.config), args.out, verbose=args.verbose)
    return 0 if outcome.ok else 1


def build_parser():
    parser = _Parser(prog="zoo", description="keras-zoo: a Keras model zoo and AutoML tuner.")
    subparsers = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    _add_list(subparsers)
    _add_show(subparsers)
    _add_run(subparsers)
    for command, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(command, help=help_text)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.main)
    return parser


def main(argv=None):
    """Run the CLI; returns the exit code (0 ok, 2 bad input, 1 internal failure)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep stderr for our own messages
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        if args.command not in ("list", "show", "tracking-server", "tracking"):
            from zoo._backend import check_backend

            check_backend()  # before anything trains or is written
        if getattr(args, "verbose", False):
            return int(args.handler(args) or 0)
        # library log lines and warnings (TensorFlow's runtime, MLflow's database set-up and
        # download bars, Keras) are for --verbose: a mistake gets one line
        with quiet():
            return int(args.handler(args) or 0)
    except (_UsageError, ZooError) as error:
        message = " ".join(str(error).split())
        print(f"error: {message}", file=sys.stderr)
        return 2
    except JobFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `zoo list | head`
        return 0
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


# the young generation's threshold while the stack imports (Python's default is 700)
IMPORTING_THRESHOLD = 50_000


def collect_less_while_importing():
    """Python's cyclic collector while TensorFlow, Keras and MLflow import: about 500,000 objects
    that live as long as the process, scanned again at each full collection (about 1.2 s of CPU of
    a 4-trial `zoo tune` on iris, and 0.26 s at every full collection after it). Until Keras has
    imported, the young generation holds `IMPORTING_THRESHOLD` objects; then what exists is moved
    out of the collector's sight (`gc.freeze`) and the thresholds are restored, so each later
    collection scans what the command itself made. A command that never imports Keras (`zoo
    list`) keeps the larger young generation: it still collects, less often. The console script
    does this; `main` does not (it may run in a process of someone else's)."""
    defaults = gc.get_threshold()
    gc.set_threshold(IMPORTING_THRESHOLD, *defaults[1:])

    def settle():
        gc.freeze()
        gc.set_threshold(*defaults)

    from zoo.saving import after_keras_import

    after_keras_import(settle)


def entry_point():
    collect_less_while_importing()
    sys.exit(main())
