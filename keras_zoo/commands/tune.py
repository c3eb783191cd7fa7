"""`zoo tune CONFIG.yaml`: run the search a config describes (no evaluation or export), its trials
in `search.parallel` local worker processes (`--workers N` sets it), or as one role of a multi-host
search (`--role chief --bind HOST:PORT`, `--role worker --chief HOST:PORT --worker-id ID`). The
cluster token comes from `--token-file` or `ZOO_CLUSTER_TOKEN`, never from the command line.

Importing this module does not import TensorFlow."""

import shutil
import tempfile


def add_arguments(parser):
    parser.add_argument("config", help="run configuration (YAML)")
    parser.add_argument("--out", default="out", help="output directory (default: out)")
    parser.add_argument("--verbose", action="store_true", help="show Keras per-epoch output")
    group = parser.add_argument_group("distributed search (Keras Tuner's chief/worker mode)")
    group.add_argument("--workers", type=int, metavar="N",
                       help="run N trials at once in worker processes on this machine (sets "
                            "search.parallel)")
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
    group.add_argument("--token-file", metavar="PATH",
                       help="chief and workers: a file holding the cluster's shared token (else "
                            "$ZOO_CLUSTER_TOKEN; required for a chief off loopback)")
    group.add_argument("--tls-cert", metavar="PATH", help="chief: serve over TLS with this PEM certificate chain")
    group.add_argument("--tls-key", metavar="PATH", help="chief: the PEM private key of --tls-cert")
    group.add_argument("--tls-ca", metavar="PATH",
                       help="worker: connect over TLS, verifying the chief against this PEM certificate")


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
    owners = {"--bind": "chief", "--worker-timeout": "chief", "--tls-cert": "chief", "--tls-key": "chief",
              "--chief": "worker", "--worker-id": "worker", "--threads": "worker",
              "--chief-timeout": "worker", "--tls-ca": "worker"}
    for option, role in owners.items():
        if getattr(args, option.lstrip("-").replace("-", "_")) is None:
            continue
        if role == "chief" and args.workers and option == "--worker-timeout":
            continue
        if args.role != role:
            refuse(f"`{option}` applies to `--role {role}` only", option)
    if args.token_file is not None and not args.role:
        # local workers get a fresh token of their own through their environment
        refuse("`--token-file` applies to `--role chief` and `--role worker` only", "--token-file")
    if (args.tls_cert is None) != (args.tls_key is None):
        refuse("`--tls-cert` and `--tls-key` go together", "--tls-key" if args.tls_cert else "--tls-cert")
    required = {"chief": ("--bind",), "worker": ("--chief", "--worker-id")}
    for option in required.get(args.role, ()):
        if getattr(args, option.lstrip("-").replace("-", "_")) is None:
            refuse(f"`--role {args.role}` needs `{option}`", option)
    for option in ("--threads", "--worker-timeout", "--chief-timeout"):
        value = getattr(args, option.lstrip("-").replace("-", "_"))
        if value is not None and value <= 0:
            refuse(f"`{option}` must be > 0", option)


def main(args):
    from keras_zoo.config import load_config
    from keras_zoo.pipeline import save_best, search_step

    _check_roles(args)
    config = _with_local_workers(load_config(args.config), args)
    if args.role == "worker":
        return _run_worker(config, args)
    credentials = _chief_credentials(args) if args.role == "chief" else None
    _check_tracking_credentials(config.tracking.uri)
    if credentials is not None:
        result, data = _run_chief(config, args, credentials), None
    else:
        result, data = search_step(config, args.out, verbose=args.verbose)
    path = save_best(result, args.out, data, config)
    print(f"best {result.objective}={result.best_score:.4f} ({result.family}); model: {path}; "
          f"MLflow run: {result.run_id}")
    return 0


def _with_local_workers(config, args):
    """The config with `--workers N` as `search.parallel` and `--worker-timeout` as
    `search.worker_timeout` (neither changes the config's fingerprint)."""
    changes = {"parallel": args.workers, "worker_timeout": args.worker_timeout if args.workers else None}
    changes = {key: value for key, value in changes.items() if value is not None}
    if not changes:
        return config
    return config.model_copy(update={"search": config.search.model_copy(update=changes)})


def _chief_credentials(args):
    """The chief's token (`--token-file`, else $ZOO_CLUSTER_TOKEN) and TLS certificate."""
    from tuning import distributed

    token = distributed.resolve_token(args.token_file)
    certificate = private_key = None
    if args.tls_cert:
        certificate, private_key = distributed.read_certificates(args.tls_cert, args.tls_key)
    return distributed.Credentials(token=token, certificate=certificate, private_key=private_key)


def _check_tracking_credentials(uri):
    """An authenticated tracking server that refuses this process is one line now, not a
    traceback after TensorFlow is imported."""
    from tuning import server
    from tuning.tracking import resolve_uri

    server.check_credentials(resolve_uri(uri))


def _run_chief(config, args, credentials):
    """The chief of a multi-host search: it serves the trials to the workers that join it."""
    from keras_zoo.pipeline import search_step
    from tuning.distributed import WORKER_TIMEOUT, Chief, parse_address

    bind = parse_address(args.bind, "--bind", allow_port_zero=True)
    worker_timeout = args.worker_timeout or config.search.worker_timeout or WORKER_TIMEOUT
    chief = Chief(bind, fingerprint=config.fingerprint(), credentials=credentials,
                  worker_timeout=worker_timeout, verbose=args.verbose)
    result, _ = search_step(config, args.out, verbose=args.verbose, runner=chief)
    return result


def _run_worker(config, args):
    """Join the chief, then run the trials it hands out until it says stop."""
    from keras_zoo.config import search_options
    from keras_zoo.pipeline import load_data
    from tuning import distributed
    from tuning.search import work_trials

    distributed.exit_with_parent()
    distributed.check_worker_id(args.worker_id)
    credentials = distributed.Credentials(
        token=distributed.resolve_token(args.token_file),
        trusted=distributed.read_trusted(args.tls_ca) if args.tls_ca else None)
    link = distributed.WorkerLink(args.chief, args.worker_id, fingerprint=config.fingerprint(),
                                  credentials=credentials,
                                  chief_timeout=args.chief_timeout or distributed.CHIEF_TIMEOUT)
    info = link.join()  # before TensorFlow: a refusal or a silent chief costs no import
    if info.get("state") == "finished":
        print(f"worker {args.worker_id}: the search at {link.address} has finished", flush=True)
        return 0
    if link.tracking_uri:
        _check_tracking_credentials(link.tracking_uri)
    distributed.set_threads(args.threads)
    data = load_data(config)
    directory = tempfile.mkdtemp(prefix=f"zoo-worker-{args.worker_id}-")  # Keras Tuner's scratch
    try:
        work_trials(data, link, search_options(config, directory, verbose=args.verbose))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return 0
