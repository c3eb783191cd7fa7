"""An `mlflow server` with a database backend, bound to loopback by default, that every process of
a distributed search logs to (`zoo tracking-server`).

Importing this module does not import TensorFlow or MLflow."""

import os
import socket
import subprocess
import sys

from tuning.processes import terminate
from zoo.errors import InvalidParameterError


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


def start(*, host, port, backend_store, artifacts, server_workers=1):
    """Check the port and the backend folder, then start `mlflow server` in a process group of its
    own (so that its worker processes end with it); returns the Popen."""
    if server_workers < 1:
        raise InvalidParameterError(
            f"`--server-workers` must be an integer >= 1. Received: --server-workers={server_workers}")
    check_port_free(host, port)
    if backend_store.startswith("sqlite:///"):
        folder = os.path.dirname(os.path.abspath(backend_store[len("sqlite:///"):]))
        if not os.path.isdir(folder):
            raise InvalidParameterError(
                f"`--backend-store` points into a folder that does not exist. "
                f"Received: --backend-store={backend_store}")
    command = mlflow_command(host=host, port=port, backend_store=backend_store,
                             artifacts=artifacts, server_workers=server_workers)
    # MLflow's background-job runner (eight more processes, for its GenAI features) is not needed
    # to track searches; a user who wants it sets the variable
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
    return subprocess.Popen(command, start_new_session=True, env=env)


def stop(process):
    """End the server and its worker processes."""
    terminate([process], term_wait=10.0, group=True)
