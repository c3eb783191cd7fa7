"""A multi-host search without open doors, with real processes on loopback and authentication
switched on explicitly: a real `zoo tracking-server` with MLflow's basic-auth app, a chief that
checks the cluster token over TLS, workers as `zoo tune` subprocesses, a plain gRPC client."""

import base64
import os
import signal
import socket
import urllib.error
import urllib.request

import pytest
from zoo_testing import (
    check_every_trial_once,
    clean_env,
    free_port,
    make_tls_files,
    one_error_line,
    raw_calls,
    secret_file,
    start_tracking_server,
    trial_runs,
    wait_for,
    write_config,
    zoo,
    zoo_here,
)

USERNAME, PASSWORD = "zoo-admin", "a-long-admin-password"
CREDENTIALS = {"MLFLOW_TRACKING_USERNAME": USERNAME, "MLFLOW_TRACKING_PASSWORD": PASSWORD}
TOKEN = "cluster-token-0123456789abcdef"


@pytest.fixture(scope="module")
def auth_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("mlflow-auth")


@pytest.fixture(scope="module")
def auth_server(auth_folder):
    """One authenticated tracking server for the module, answering to loopback and `zoo-tracking`
    (not the session's open `tracking_server`: these tests need MLflow's basic-auth app); its
    users in `auth_folder`/basic_auth.db (the default `--auth-db`)."""
    folder = auth_folder
    credentials = secret_file(folder / "credentials", f"{USERNAME}:{PASSWORD}")
    server, uri = start_tracking_server(folder, f"sqlite:///{folder}/mlflow.db", extra_args=(
        "--credentials-file", credentials, "--allowed-hosts", "zoo-tracking"))
    yield uri
    server.send_signal(signal.SIGTERM)
    assert server.wait(30) == 0


def rest_status(uri, *, username=None, password=None, host=None):
    request = urllib.request.Request(uri + "/api/2.0/mlflow/experiments/search?max_results=1")
    if username:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode())
    if host:
        request.add_header("Host", host)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_authenticated_tracking_server_refuses_anonymous_calls_and_foreign_host_names(tmp_path, auth_server):
    port = auth_server.rsplit(":", 1)[1]
    assert rest_status(auth_server) == 401
    assert rest_status(auth_server, username=USERNAME, password="not-the-password") == 401
    assert rest_status(auth_server, username=USERNAME, password=PASSWORD) == 200
    # DNS rebinding: a name the server was not told is refused, a named one is served
    assert rest_status(auth_server, username=USERNAME, password=PASSWORD, host=f"rebound.example:{port}") == 403
    assert rest_status(auth_server, username=USERNAME, password=PASSWORD, host=f"zoo-tracking:{port}") == 200
    # a search without the credentials is one line, before anything is written
    config = write_config(tmp_path, auth_server, "anonymous")
    search = zoo("tune", config, "--out", tmp_path / "out", cwd=tmp_path, env=clean_env())
    assert "needs credentials: set MLFLOW_TRACKING_USERNAME" in one_error_line(search)
    wrong = zoo("tune", config, "--out", tmp_path / "out", cwd=tmp_path,
                env=clean_env(MLFLOW_TRACKING_USERNAME=USERNAME, MLFLOW_TRACKING_PASSWORD="not-the-password"))
    assert f"refused the user '{USERNAME}'" in one_error_line(wrong)
    assert not (tmp_path / "out").exists()


def test_a_verified_credential_is_kept_so_requests_skip_the_password_hash(auth_server, auth_folder):
    """MLflow checks the password hash on every request (about 0.5 s on 2 cores, several a trial);
    the server keeps a verified credential for `AUTH_CACHE_SECONDS`. Seen from outside: once
    verified, a password changed out of band still opens the server for that long, while a
    password never verified is checked against the database."""
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore()
    store.init_db(f"sqlite:///{auth_folder}/basic_auth.db")
    assert rest_status(auth_server, username=USERNAME, password=PASSWORD) == 200  # verified once
    store.update_user(USERNAME, password="a-changed-admin-password")
    try:
        assert rest_status(auth_server, username=USERNAME, password=PASSWORD) == 200  # kept
        assert rest_status(auth_server, username=USERNAME, password="a-changed-admin-password") == 200
        assert rest_status(auth_server, username=USERNAME, password="not-the-password") == 401
    finally:
        store.update_user(USERNAME, password=PASSWORD)


def test_tls_chief_with_a_token_serves_its_workers_only(tmp_path, auth_server, monkeypatch):
    """Two workers holding the token, the CA and the MLflow credentials run the whole search; a
    worker without the token, with a wrong one, in plaintext or trusting another CA is refused
    and logs nothing; a plain gRPC client gets UNAUTHENTICATED from every method."""
    from keras_zoo.config import load_config

    ca, certificate, key = make_tls_files(tmp_path)
    other_ca, _, _ = make_tls_files(tmp_path, "impostor")
    token_file = secret_file(tmp_path / "token", TOKEN)
    config = write_config(tmp_path, auth_server, "tls")
    address = f"127.0.0.1:{free_port()}"
    out, chief_log = tmp_path / "out", tmp_path / "chief.log"
    with open(chief_log, "w") as log:
        chief = zoo("tune", config, "--out", out, "--role", "chief", "--bind", address,
                    "--token-file", token_file, "--tls-cert", certificate, "--tls-key", key,
                    cwd=tmp_path, stdout=log, env=clean_env(**CREDENTIALS))

    def worker(worker_id, *options, **env):
        return zoo("tune", config, "--role", "worker", "--chief", address, "--worker-id", worker_id,
                   *options, cwd=tmp_path, env=clean_env(**CREDENTIALS, **env))

    # the workers join as soon as the chief serves, then import TensorFlow: the refusals below
    # are over long before the search is
    workers = [worker("w0", "--token-file", token_file, "--tls-ca", ca),
               worker("w1", "--tls-ca", ca, ZOO_CLUSTER_TOKEN=TOKEN)]
    processes = [chief, *workers]
    try:
        wait_for(lambda: "chief serving the oracle" in chief_log.read_text() or chief.poll() is not None,
                 180, "the chief to serve")
        assert chief.poll() is None, chief.stderr.read()[-3000:]
        refused = {
            "w-none": worker("w-none", "--tls-ca", ca),
            "w-wrong": worker("w-wrong", "--tls-ca", ca, ZOO_CLUSTER_TOKEN="a-wrong-token-0123456789"),
            "w-plain": worker("w-plain", "--token-file", token_file, "--chief-timeout", "3"),
            "w-impostor": worker("w-impostor", "--token-file", token_file, "--tls-ca", other_ca,
                                 "--chief-timeout", "3"),
        }
        processes += refused.values()
        # a client that knows the config (so its fingerprint) but not the token gets nowhere
        identity = {"zoo-worker-id": "w-raw", "zoo-session": "s", "zoo-host": "h", "zoo-pid": "1",
                    "zoo-fingerprint": load_config(config).fingerprint()}
        hello = {"worker_id": "w-raw", "session": "s", "fingerprint": identity["zoo-fingerprint"]}
        for metadata in ([], list(identity.items()),
                         [*identity.items(), ("authorization", "Bearer a-wrong-token-0123456789")]):
            codes = raw_calls(address, metadata, root_certificates=ca.read_bytes(), hello=hello)
            assert set(codes.values()) == {"UNAUTHENTICATED"}, codes
        errors = {worker_id: one_error_line(process) for worker_id, process in refused.items()}
        assert "refused this worker: this chief needs the cluster token" in errors["w-none"]
        assert "refused this worker: the cluster token is wrong" in errors["w-wrong"]
        assert "did not answer within 3 s" in errors["w-plain"]
        assert "did not answer within 3 s" in errors["w-impostor"]

        _, chief_err = chief.communicate(timeout=300)
        assert chief.returncode == 0, chief_err[-3000:]
        for process in workers:
            _, err = process.communicate(timeout=60)
            assert process.returncode == 0, err[-3000:]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    text = chief_log.read_text()
    # each refused sender is logged once, and the chief went on
    assert text.count("refused worker 'w-none' from 127.0.0.1: no cluster token") == 1, text
    assert text.count("refused worker 'w-wrong' from 127.0.0.1: a wrong cluster token") == 1, text
    assert text.count("refused a client from 127.0.0.1: no cluster token") == 1, text
    assert not [line for line in text.splitlines() if " joined " in line and "w-" in line], text
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    runs = check_every_trial_once(auth_server, out)
    assert {run.data.tags["zoo.worker"] for run in runs} == {"w0", "w1"}
    client, parent, _ = trial_runs(auth_server, out)
    everything = client.search_runs([client.get_run(parent).info.experiment_id])
    assert {run.data.tags.get("zoo.worker") for run in everything} == {"w0", "w1", None}  # no refused one
    assert (out / "best_model.keras").exists()


@pytest.mark.parametrize("arguments,message", [
    (["tune", "{config}", "--role", "chief", "--bind", "0.0.0.0:{port}"],
     ("error: the chief would listen on 0.0.0.0:{port}, off loopback, without a cluster token: give "
     "the same token to the chief and every worker with --token-file PATH")),
    (["tune", "{config}", "--role", "chief", "--bind", "127.0.0.1:{port}", "--token-file", "{missing}"],
     "error: `--token-file` {missing} cannot be read (No such file or directory)"),
    (["tune", "{config}", "--role", "chief", "--bind", "127.0.0.1:{port}", "--token-file", "{short}"],
     "error: the cluster token in `--token-file` {short} must be at least 16"),
    (["tune", "{config}", "--role", "chief", "--bind", "127.0.0.1:{port}", "--token-file", "{token}",
      "--tls-cert", "{missing}", "--tls-key", "{token}"], "error: `--tls-cert` {missing} cannot be read"),
    (["tune", "{config}", "--role", "chief", "--bind", "127.0.0.1:{port}", "--token-file", "{token}",
      "--tls-cert", "{certificate}", "--tls-key", "{other_key}"],
     "error: `--tls-cert` and `--tls-key` are not a certificate and its private key"),
    (["tune", "{config}", "--role", "worker", "--chief", "127.0.0.1:{port}", "--worker-id", "w0",
      "--tls-ca", "{token}"], "error: `--tls-ca` {token} holds no PEM certificate"),
    (["tracking-server", "--host", "0.0.0.0", "--port", "{port}"],
     ("error: the tracking server would listen on 0.0.0.0, off loopback, without authentication: "
     "give the admin's credentials with --credentials-file PATH")),
    (["tracking-server", "--port", "{port}", "--credentials-file", "{missing}"],
     "error: `--credentials-file` {missing} cannot be read"),
    (["tracking-server", "--port", "{port}", "--credentials-file", "{credentials}", "--allowed-hosts", "*"],
     "error: `--allowed-hosts` must name the hosts"),
], ids=["chief-off-loopback", "token-file-unreadable", "token-too-short", "tls-cert-unreadable",
        "tls-pair-mismatch", "tls-ca-not-pem", "tracking-server-off-loopback", "credentials-file-unreadable", "any-host"])
def test_bad_authentication_input_is_one_error_line_and_exit_2(tmp_path, monkeypatch, arguments, message):
    _, certificate, _ = make_tls_files(tmp_path)
    _, _, other_key = make_tls_files(tmp_path, "other")
    names = {"config": write_config(tmp_path, f"sqlite:///{tmp_path}/mlflow.db", "bad"),
             "certificate": certificate, "other_key": other_key,
             "port": free_port(), "missing": tmp_path / "missing",
             "short": secret_file(tmp_path / "short", "too-short"), "token": secret_file(tmp_path / "t", TOKEN),
             "credentials": secret_file(tmp_path / "credentials", f"{USERNAME}:{PASSWORD}")}
    for name in set(os.environ) - set(clean_env()):  # no token or credential from outside
        monkeypatch.delenv(name)
    # the CLI in this process: each of these is refused before anything starts
    process = zoo_here(*[argument.format(**names) for argument in arguments], cwd=tmp_path)
    assert one_error_line(process).startswith(message.format(**names))
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "basic_auth.db").exists()
    with socket.socket() as probe:  # nothing was left listening
        probe.bind(("127.0.0.1", names["port"]))
