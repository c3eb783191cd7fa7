"""`zoo tracking-server`: an `mlflow server` with a database backend, bound to loopback by default,
that every process of a distributed search logs to.

Importing this module does not import TensorFlow or MLflow."""

import os
import signal
import socket
import subprocess
import sys

from zoo.errors import InvalidParameterError


def add_arguments(parser):
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to listen on (default: 127.0.0.1, this machine only; "
                             "0.0.0.0 for workers on other hosts)")
    parser.add_argument("--port", type=int, default=5000, help="port (default: 5000)")
    parser.add_argument("--backend-store", default="sqlite:///mlflow.db", metavar="URI",
                        help="database for runs and metrics (default: sqlite:///mlflow.db; "
                             "postgresql://... for many workers)")
    parser.add_argument("--artifacts", default="mlartifacts", metavar="URI",
                        help="where the server keeps artifacts it is sent (default: ./mlartifacts)")
    parser.add_argument("--server-workers", type=int, default=1, metavar="K",
                        help="mlflow server's request-handling processes (default: 1)")


def check_port_free(host, port):
    """Refuse, in one line, a port something already listens on (before starting anything)."""
    if not 1 <= port <= 65535:
        raise InvalidParameterError(f"`--port` must be in [1, 65535]. Received: --port={port}")
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # as servers do: connections of an earlier server in TIME_WAIT do not block the port
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        raise InvalidParameterError(
            f"`--port` {port} on {host} cannot be used ({error.strerror or error}). "
            f"Received: --host={host} --port={port}") from None


def mlflow_command(*, host, port, backend_store, artifacts, server_workers=1):
    command = [sys.executable, "-m", "mlflow", "server", "--host", host, "--port", str(port),
               "--backend-store-uri", backend_store, "--artifacts-destination", artifacts,
               "--workers", str(server_workers)]
    if host not in ("127.0.0.1", "localhost", "::1"):
        # MLflow refuses Host headers other than localhost and private addresses by default
        command += ["--allowed-hosts", "*"]
    return command


def main(args):
    if args.server_workers < 1:
        raise InvalidParameterError(
            f"`--server-workers` must be an integer >= 1. Received: --server-workers={args.server_workers}")
    check_port_free(args.host, args.port)
    if args.backend_store.startswith("sqlite:///"):
        folder = os.path.dirname(os.path.abspath(args.backend_store[len("sqlite:///"):]))
        if not os.path.isdir(folder):
            raise InvalidParameterError(
                f"`--backend-store` points into a folder that does not exist. "
                f"Received: --backend-store={args.backend_store}")
    command = mlflow_command(host=args.host, port=args.port, backend_store=args.backend_store,
                             artifacts=args.artifacts, server_workers=args.server_workers)
    # MLflow's background-job runner (eight more processes, for its GenAI features) is not needed
    # to track searches; a user who wants it sets the variable
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
    # its own process group, so that its worker processes end with it
    process = subprocess.Popen(command, start_new_session=True, env=env)
    print(f"tracking server: http://{args.host}:{args.port} (backend {args.backend_store}); "
          f"set tracking.uri or MLFLOW_TRACKING_URI to it", flush=True)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        code = process.wait()
    except KeyboardInterrupt:
        code = 0
    finally:
        _end_group(process)
    return 0 if code in (0, -signal.SIGTERM) else 1


def _end_group(process):
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        # the leader is gone; its workers may linger a moment
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
