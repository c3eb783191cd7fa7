"""Helpers the tests share: tiny learnable data, the `zoo` CLI as a subprocess, bounded waits and a
real tracking server. Imported as `zoo_testing` (pytest's `pythonpath` holds tests/), not as
`tests.…`: tf2onnx installs a top-level package named `tests` that would shadow this folder."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np


def tiny_data(input_shape, task, *, num_outputs=3, samples=64, seed=0):
    """Inputs of `input_shape` with labels a fixed linear function of them, so they are learnable."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(samples, *input_shape)).astype("float32")
    flat = X.reshape(samples, -1)
    if task == "binary":
        y = (flat @ rng.normal(size=flat.shape[1]) > 0).astype("int64")
    elif task == "multiclass":
        y = np.argmax(flat @ rng.normal(size=(flat.shape[1], num_outputs)), axis=1).astype("int64")
    else:
        y = (flat @ rng.normal(size=(flat.shape[1], num_outputs)) / np.sqrt(flat.shape[1])).astype("float32")
    return X, y


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def zoo(*args, cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE):
    return subprocess.Popen([sys.executable, "-m", "keras_zoo", *map(str, args)], cwd=cwd, stdout=stdout,
                            stderr=stderr, text=True)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as stat:  # a zombie not yet reaped by its parent is gone too
        return stat.read().split(") ")[-1].startswith("Z")


def start_tracking_server(folder, backend_store, log_name="server.log"):
    """A real `zoo tracking-server` on a free loopback port; returns (process, uri) once healthy."""
    port = free_port()
    log = open(folder / log_name, "w")
    server = zoo("tracking-server", "--port", port, "--backend-store", backend_store,
                 "--artifacts", folder / "artifacts", cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{port}"

    def healthy():
        assert server.poll() is None, (folder / log_name).read_text()[-2000:]
        try:
            with urllib.request.urlopen(uri + "/health", timeout=2):
                return True
        except OSError:
            return False

    wait_for(healthy, 150, "the tracking server")
    return server, uri
