"""Helpers the tests share: tiny learnable data, the `zoo` CLI as a subprocess, bounded waits and a
real tracking server. Imported as `zoo_testing` (pytest's `pythonpath` holds tests/), not as
`tests.…`: tf2onnx installs a top-level package named `tests` that would shadow this folder."""

import datetime
import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import yaml

MAX_TRIALS = 4  # the trials of a distributed test's search


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


def zoo(*args, cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=None):
    return subprocess.Popen([sys.executable, "-m", "keras_zoo", *map(str, args)], cwd=cwd, stdout=stdout,
                            stderr=stderr, text=True, env=env)


def zoo_here(*args, cwd):
    """A `zoo` command through the CLI's own entry point in this process, from `cwd`: what a `zoo`
    process does, without starting TensorFlow again (several seconds of 2 shared cores); what it
    returned and printed, as `subprocess.run` gives it."""
    import contextlib
    import io

    from keras_zoo.cli import main

    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([*map(str, args)])
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess(["zoo", *map(str, args)], code, out.getvalue(), err.getvalue())


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def process_state(pid):
    """The state letter of a live process in /proc (R, S, T for stopped, Z for a zombie), or None."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return process_state(pid) in (None, "Z")  # a zombie not yet reaped by its parent is gone too


def listening_addresses(port):
    """The local addresses of the TCP sockets listening on `port`, read from /proc/net/tcp{,6}
    (what `ss -ltn` shows), e.g. ['127.0.0.1'] or ['0.0.0.0']."""
    found = []
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        try:
            with open(f"/proc/net/{table}") as handle:
                rows = handle.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            address, hex_port = local.split(":")
            if state != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                continue
            # the kernel prints each 32-bit word of the address in host (little-endian) order
            packed = b"".join(bytes.fromhex(address[i:i + 8])[::-1] for i in range(0, len(address), 8))
            found.append(socket.inet_ntop(family, packed))
    return found


def start_tracking_server(folder, backend_store, log_name="server.log", extra_args=()):
    """A real `zoo tracking-server` on a free loopback port (`extra_args` added to its command
    line); returns (process, uri) once healthy."""
    port = free_port()
    log = open(folder / log_name, "w")  # noqa: SIM115 - the server writes to it while it runs
    server = zoo("tracking-server", "--port", port, "--backend-store", backend_store,
                 "--artifacts", folder / "artifacts", *extra_args, cwd=folder, stdout=log,
                 stderr=subprocess.STDOUT)
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


# === distributed search ==========================================================================
def write_config(folder, uri, experiment, **search):
    """A tiny search config (iris, an mlp of 8 units, MAX_TRIALS trials of 2 epochs)."""
    config = {"data": {"source": "iris"}, "model": {"name": "mlp", "params": {"hidden_units": [8]}},
              "search": {"algorithm": "random", "max_trials": MAX_TRIALS, "max_epochs": 2, "seed": 0,
                         "tune_training": False, **search},
              "tracking": {"uri": uri, "experiment": experiment}}
    path = folder / f"{experiment}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def worker_pids(log_text):
    """{worker id: pid} from the "started worker w0 (pid 123, ...)" lines of a `--workers` chief."""
    return {line.split()[2]: int(line.split("pid ")[1].split(",")[0])
            for line in log_text.splitlines() if line.startswith("started worker")}


def oracle_state(out):
    """The chief's saved oracle (Keras Tuner's `oracle.json`) of the search in `out`."""
    return json.loads((out / "search" / "trials" / "oracle.json").read_text())


def trial_runs(uri, out):
    from mlflow import MlflowClient

    from tuning.tracking import PARENT_TAG

    parent = json.loads((out / "search" / "zoo_search.json").read_text())["parent_run_id"]
    client = MlflowClient(uri)
    experiment = client.get_run(parent).info.experiment_id
    return client, parent, client.search_runs([experiment], f"tags.`{PARENT_TAG}` = '{parent}'")


def check_every_trial_once(uri, out):
    from tuning.tracking import TRIAL_TAG

    client, parent, runs = trial_runs(uri, out)
    assert sorted(run.data.tags[TRIAL_TAG] for run in runs) == [str(i) for i in range(MAX_TRIALS)]
    assert all(run.info.status == "FINISHED" for run in runs)
    assert client.get_run(parent).info.status == "FINISHED"
    others = client.search_runs([client.get_run(parent).info.experiment_id], "tags.`zoo.kind` = 'search'")
    assert [run.info.run_id for run in others] == [parent]  # one parent run, the chief's
    return runs


def one_error_line(process, timeout=60):
    """The one `error:` line a `zoo` command ended with (exit code 2): a running `zoo(...)` process,
    or what `zoo_here(...)` returned."""
    if isinstance(process, subprocess.CompletedProcess):
        stderr = process.stderr
    else:
        _, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 2, stderr[-2000:]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr[-2000:]
    return lines[0]


def clean_env(**variables):
    """This process's environment without cluster tokens or MLflow credentials, plus `variables`."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("ZOO_CLUSTER_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                          "MLFLOW_TRACKING_TOKEN", "MLFLOW_AUTH_ADMIN_USERNAME", "MLFLOW_AUTH_ADMIN_PASSWORD")}
    return {**env, **variables}


def secret_file(path, text):
    """A file readable by its owner only, as secrets are kept."""
    path.touch(mode=0o600)
    path.write_text(text + "\n")
    return path


ORACLE_METHODS = ("GetSpace", "UpdateSpace", "CreateTrial", "UpdateTrial", "EndTrial", "GetBestTrials",
                  "GetTrial")


def raw_calls(address, metadata=(), root_certificates=None, hello=None):
    """Call the chief's `Hello` (with the JSON body `hello`) and each of Keras Tuner's oracle
    methods (with an empty message) as a plain gRPC client: {method: status code name}."""
    import grpc

    channel = (grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates))
               if root_certificates else grpc.insecure_channel(address))
    calls = {"Hello": ("/zoo.Cluster/Hello", json.dumps(hello or {}).encode())}
    calls.update({name: (f"/keras_tuner.Oracle/{name}", b"") for name in ORACLE_METHODS})
    codes = {}
    with channel:
        for name, (method, body) in calls.items():
            try:
                channel.unary_unary(method)(body, metadata=list(metadata), timeout=20)
                codes[name] = "OK"
            except grpc.RpcError as error:
                codes[name] = error.code().name
    return codes


def make_tls_files(folder, name="cluster"):
    """A CA and a certificate it signs for 127.0.0.1 and localhost: (ca, certificate, key) paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def certificate(subject, key, issuer, issuer_key, extensions):
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1)))
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate(f"{name} CA", ca_key, f"{name} CA", ca_key,
                     [(x509.BasicConstraints(ca=True, path_length=0), True)])
    leaf = certificate(name, key, f"{name} CA", ca_key, [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                      x509.DNSName("localhost")]), False)])
    paths = folder / f"{name}-ca.pem", folder / f"{name}.pem", folder / f"{name}.key"
    paths[0].write_bytes(ca)
    paths[1].write_bytes(leaf)
    paths[2].touch(mode=0o600)
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths
