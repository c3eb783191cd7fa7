"""`zoo tune CONFIG.yaml`: run the search a config describes (no evaluation or export), in one
process, as a chief with N local workers (`--workers N`), or as one role of a multi-host search
(`--role chief --bind HOST:PORT`, `--role worker --chief HOST:PORT --worker-id ID`).

Importing this module does not import TensorFlow."""

import os


def add_arguments(parser):
    parser.add_argument("config", help="run configuration (YAML)")
    parser.add_argument("--out", default="out", help="output directory (default: out)")
    parser.add_argument("--verbose", action="store_true", help="show Keras per-epoch output")
    group = parser.add_argument_group("distributed search (Keras Tuner's chief/worker mode)")
    group.add_argument("--workers", type=int, metavar="N",
                       help="run a chief and N worker processes on this machine (loopback)")
    group.add_argument("--role", choices=("chief", "worker"), help="this process's role in a multi-host search")
    group.add_argument("--bind", metavar="HOST:PORT", help="chief: the address the oracle listens on")
    group.add_argument("--chief", metavar="HOST:PORT", help="worker: the chief's address")
    group.add_argument("--worker-id", metavar="ID", help="worker: a name unique among the workers")
    group.add_argument("--threads", type=int, metavar="K",
                       help="worker: TensorFlow threads (default: every core of this machine)")
    group.add_argument("--worker-timeout", type=float, metavar="S",
                       help="chief: seconds without contact before a worker's trial is handed on "
                            "(default: config search.worker_timeout, else 30)")
    group.add_argument("--chief-timeout", type=float, metavar="S",
                       help="worker: seconds to wait for the chief to answer (default 60)")


def _check_roles(args):
    """Each option belongs to one mode; a misplaced one is refused rather than ignored."""
    from zoo.errors import InvalidParameterError

    def refuse(message, option):
        value = getattr(args, option.lstrip("-").replace("-", "_"))
        raise InvalidParameterError(f"{message}. Received: {option}={value}")

    if args.workers is not None:
        if args.workers < 1:
            refuse("`--workers` must be an integer >= 1", "--workers")
        if args.role:
            refuse("`--workers` starts its own chief and workers; it cannot be combined with `--role`", "--role")
    owners = {"--bind": "chief", "--worker-timeout": "chief", "--chief": "worker",
              "--worker-id": "worker", "--threads": "worker", "--chief-timeout": "worker"}
    for option, role in owners.items():
        if getattr(args, option.lstrip("-").replace("-", "_")) is None:
            continue
        if role == "chief" and args.workers and option == "--worker-timeout":
            continue
        if args.role != role:
            refuse(f"`{option}` applies to `--role {role}` only", option)
    required = {"chief": ("--bind",), "worker": ("--chief", "--worker-id")}
    for option in required.get(args.role, ()):
        if getattr(args, option.lstrip("-").replace("-", "_")) is None:
            refuse(f"`--role {args.role}` needs `{option}`", option)
    for option in ("--threads", "--worker-timeout", "--chief-timeout"):
        value = getattr(args, option.lstrip("-").replace("-", "_"))
        if value is not None and value <= 0:
            refuse(f"`{option}` must be > 0", option)


def main(args):
    from tuning.config import load_config
    from tuning.search import run_search

    _check_roles(args)
    config = load_config(args.config)
    if args.role == "worker":
        from tuning.distributed import CHIEF_TIMEOUT, run_worker

        return run_worker(config, chief=args.chief, worker_id=args.worker_id, threads=args.threads,
                          chief_timeout=args.chief_timeout or CHIEF_TIMEOUT, verbose=args.verbose)
    if args.role == "chief" or args.workers:
        result = _run_chief(config, args)
    else:
        result, _ = run_search(config, args.out, verbose=args.verbose)
    path = os.path.join(args.out, "best_model.keras")
    result.best_model.save(path)
    print(f"best {result.objective}={result.best_score:.4f} ({result.family}); model: {path}; "
          f"MLflow run: {result.run_id}")
    return 0


def _run_chief(config, args):
    from tuning.distributed import LOCAL_CHIEF_TIMEOUT, WORKER_TIMEOUT, Chief, parse_address
    from tuning.search import run_search

    bind = parse_address(args.bind, "--bind", allow_port_zero=True) if args.bind else ("127.0.0.1", 0)
    worker_timeout = (args.worker_timeout or getattr(config.search, "worker_timeout", None)
                      or WORKER_TIMEOUT)
    chief = Chief(bind, fingerprint=config.fingerprint(), worker_timeout=worker_timeout,
                  local_workers=args.workers or 0, config_path=os.path.abspath(args.config),
                  chief_timeout=LOCAL_CHIEF_TIMEOUT, verbose=args.verbose)
    finished = False
    try:
        # the workers import TensorFlow while the chief does; they join once it serves
        chief.start_local_workers()
        result, _ = run_search(config, args.out, verbose=args.verbose, serve=chief.serve)
        finished = True
    finally:
        # after a search the workers, told to stop, are leaving: give them time; else end them now
        chief.stop_local_workers(grace=30 if finished else 0)
    return result
