"""Distributed search with real processes on loopback: a real `mlflow server` (started with
`zoo tracking-server`; one for the session, conftest.py's `tracking_server`), a chief and workers
as `zoo tune` subprocesses; every wait is bounded."""

import json
import os
import signal
import socket

import pytest
from zoo_testing import (
    check_every_trial_once,
    free_port,
    gone,
    listening_addresses,
    make_tls_files,
    one_error_line,
    oracle_state,
    process_state,
    raw_calls,
    trial_runs,
    wait_for,
    worker_pids,
    write_config,
    zoo,
    zoo_here,
)

from tuning.search import INLINE_ENV
from tuning.tracking import TRIAL_TAG

# what the chief's saved oracle holds of each algorithm's own settings (iris, MAX_TRIALS = 4)
# each distributed test runs another algorithm: random here, evolution when a worker is killed,
# TPE when the chief is killed (one search each, so the suite stays short)
ORACLE_SETTINGS = {"random": {}}


@pytest.mark.parametrize("algorithm", ORACLE_SETTINGS)
def test_chief_and_two_workers_split_the_trials_and_refuse_bad_workers(tmp_path, tracking_server, algorithm):
    config = write_config(tmp_path, tracking_server, f"roles-{algorithm}", algorithm=algorithm)
    address = f"127.0.0.1:{free_port()}"
    out = tmp_path / "out"
    chief_log = tmp_path / "chief.log"
    with open(chief_log, "w") as log:
        chief = zoo("tune", config, "--out", out, "--role", "chief", "--bind", address, cwd=tmp_path,
                    stdout=log)
    workers = [zoo("tune", config, "--role", "worker", "--chief", address, "--worker-id", worker_id,
                   cwd=tmp_path) for worker_id in ("w0", "w1")]
    try:
        wait_for(lambda: "worker w0 joined" in chief_log.read_text() or chief.poll() is not None,
                 120, "w0 to join")
        if algorithm == "random":  # the chief's admission does not depend on the algorithm
            duplicate = zoo("tune", config, "--role", "worker", "--chief", address, "--worker-id", "w0",
                            cwd=tmp_path)
            assert "already in use by a live worker" in one_error_line(duplicate)
            other = write_config(tmp_path, tracking_server, "roles-other", max_epochs=3)
            mismatch = zoo("tune", other, "--role", "worker", "--chief", address, "--worker-id", "w9",
                           cwd=tmp_path)
            assert "runs a different configuration" in one_error_line(mismatch)

        _, chief_err = chief.communicate(timeout=240)
        assert chief.returncode == 0, chief_err[-3000:]
        for worker in workers:
            _, err = worker.communicate(timeout=60)
            assert worker.returncode == 0, err[-3000:]
    finally:
        for process in [chief, *workers]:
            if process.poll() is None:
                process.kill()
    runs = check_every_trial_once(tracking_server, out)
    assert {run.data.tags["zoo.worker"] for run in runs} == {"w0", "w1"}  # both did trials
    assert {run.data.tags["zoo.algorithm"] for run in runs} == {algorithm}
    # the chief ran that algorithm's oracle: its saved state holds the algorithm's own settings
    state = oracle_state(out)
    assert {key: state.get(key) for key in ("population_size", "sample_size", "n_startup_trials")
            if key in state} == ORACLE_SETTINGS[algorithm], state
    assert (out / "best_model.keras").exists()
    assert all(gone(p.pid) for p in [chief, *workers])


def test_a_worker_killed_mid_trial_does_not_stop_the_search(tmp_path, tracking_server):
    """SIGKILL a local worker while it is stopped inside a trial: the chief re-queues the trial, a
    fresh worker process takes its slot and the trial, and every trial is logged once."""
    config = write_config(tmp_path, tracking_server, "kill", algorithm="evolution")
    out = tmp_path / "out"
    chief, log_path, pids = start_local_search(tmp_path, config, out, "chief.log")
    try:
        # w0 held while w1 is caught inside a trial, so w1 runs the trials meanwhile
        wait_for(lambda: "worker w0 joined" in log_path.read_text(), 240, "w0 to join")
        os.kill(pids["w0"], signal.SIGSTOP)
        trial = wait_for(lambda: stopped_inside_a_trial(chief, pids["w1"], "w1", tracking_server, out),
                         240, "w1 stopped inside a trial")
        os.kill(pids["w0"], signal.SIGCONT)
        # the local cluster is closed too, with no configuration: the chief made a token and
        # gave it to its own workers only
        address = log_path.read_text().split("chief serving the oracle on ")[1].split()[0]
        assert set(raw_calls(address).values()) == {"UNAUTHENTICATED"}
        os.kill(pids["w1"], signal.SIGKILL)  # stopped inside the trial: the kill lands there
        _, err = chief.communicate(timeout=240)
        assert chief.returncode == 0, err[-3000:]
    finally:
        end_all(chief, pids.values())
    text = log_path.read_text()
    assert f"worker w1 lost (its process exited with code -9); trial {trial} re-queued" in text, text
    assert "started worker w2" in text  # w1's slot, taken by a fresh process
    runs = check_every_trial_once(tracking_server, out)  # the killed attempt is not counted twice
    assert {run.data.tags["zoo.algorithm"] for run in runs} == {"evolution"}
    state = oracle_state(out)  # the chief ran regularized evolution (population 2 of 4 trials)
    assert (state["population_size"], state["sample_size"]) == (2, 2)
    assert all(gone(pid) for pid in [chief.pid, *pids.values()])


def processes_env():
    """This process's environment for a `zoo` process that runs its trials in worker processes,
    as a user's does (conftest.py runs the searches of this process inline)."""
    return {key: value for key, value in os.environ.items() if key != INLINE_ENV}


def stopped_inside_a_trial(chief, pid, worker_id, uri, out):
    """SIGSTOP `pid`; keep it stopped if it is inside a trial (a RUNNING run of `worker_id` whose
    last epoch is not logged, so it has not told the chief the trial ended) and return that
    trial's id, else SIGCONT it and return False. Its state decides, not the clock."""
    from mlflow import MlflowClient

    assert chief.poll() is None, chief.stderr.read()[-3000:]
    assert not gone(pid), f"{worker_id} ended before it was caught inside a trial"
    if not (out / "search" / "zoo_search.json").exists():
        return False
    os.kill(pid, signal.SIGSTOP)
    wait_for(lambda: process_state(pid) == "T", 5, f"{worker_id} to stop")
    _, _, runs = trial_runs(uri, out)
    for run in runs:
        if run.data.tags.get("zoo.worker") == worker_id and run.info.status == "RUNNING" and len(
                MlflowClient(uri).get_metric_history(run.info.run_id, "val_accuracy")) < 2:  # max_epochs
            return run.data.tags[TRIAL_TAG]
    os.kill(pid, signal.SIGCONT)
    return False


def start_local_search(tmp_path, config, out, log_name, *options, workers=2):
    """`zoo tune CONFIG --workers N` with its stdout in `log_name`; (chief, log path, worker pids)
    once its N workers are started."""
    log_path = tmp_path / log_name
    with open(log_path, "w") as log:
        chief = zoo("tune", config, "--out", out, "--workers", workers, *options, cwd=tmp_path,
                    stdout=log, env=processes_env())

    def started():
        assert chief.poll() is None, chief.stderr.read()[-3000:]
        return f"started worker w{workers - 1}" in log_path.read_text() and log_path.read_text()

    return chief, log_path, worker_pids(wait_for(started, 60, "the workers to start"))


def end_all(chief, pids):
    """End whatever a test left running: its workers (SIGKILL ends a stopped one too), its chief."""
    for pid in pids:
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)  # ends a stopped process too
    if chief.poll() is None:
        chief.kill()
    chief.communicate(timeout=30)


def test_chief_killed_mid_search_then_rerun_resumes_its_oracle_and_parent_run(tmp_path, tracking_server):
    """SIGKILL the chief of `--workers 2` (TPE: the Optuna study lives in the chief) after a
    trial finished: its workers end with it; the same command again reloads the oracle, reopens
    the parent run, keeps the finished trial, and logs every trial once."""
    config = write_config(tmp_path, tracking_server, "chief-kill", algorithm="tpe")
    out = tmp_path / "out"
    chief, _, pids = start_local_search(tmp_path, config, out, "chief1.log")
    try:
        def a_trial_finished():
            assert chief.poll() is None, "the search ended before its chief could be killed"
            if not (out / "search" / "zoo_search.json").exists():
                return False
            _, _, runs = trial_runs(tracking_server, out)
            return {run.info.run_id: run.data.tags[TRIAL_TAG] for run in runs if run.info.status == "FINISHED"}

        wait_for(a_trial_finished, 240, "a trial to finish")
        parent = json.loads((out / "search" / "zoo_search.json").read_text())["parent_run_id"]
        chief.send_signal(signal.SIGKILL)
        chief.communicate(timeout=30)
        _, _, runs = trial_runs(tracking_server, out)  # read after the kill: none finishes now
        finished = {run.info.run_id: run.data.tags[TRIAL_TAG] for run in runs if run.info.status == "FINISHED"}
        assert len(finished) < 4, "every trial had finished before the kill"
        # the workers end with their chief (its death signal), they do not wait --chief-timeout
        wait_for(lambda: all(gone(pid) for pid in pids.values()), 30, "the workers to end with their chief")
    finally:
        end_all(chief, pids.values())

    rerun, _, new_pids = start_local_search(tmp_path, config, out, "chief2.log")
    try:
        _, err = rerun.communicate(timeout=300)
        assert rerun.returncode == 0, err[-3000:]
    finally:
        end_all(rerun, new_pids.values())
    assert json.loads((out / "search" / "zoo_search.json").read_text())["parent_run_id"] == parent
    runs = check_every_trial_once(tracking_server, out)
    kept = {run.info.run_id: run.data.tags[TRIAL_TAG] for run in runs}
    assert finished.items() <= kept.items()  # the trials finished before the kill were not run again
    assert oracle_state(out)["n_startup_trials"] > 0  # the oracle the chief saved is TPE's
    assert all(gone(pid) for pid in [chief.pid, rerun.pid, *pids.values(), *new_pids.values()])


def test_a_silent_worker_is_lost_after_worker_timeout_ended_and_its_trial_handed_on(tmp_path, tracking_server):
    """SIGSTOP the one local worker inside a trial: after `--worker-timeout` seconds without its
    heartbeat the chief declares it lost, ends its process and re-queues the trial, which a fresh
    worker runs; every trial is logged once, each epoch once. With one worker, no other lease can
    lapse meanwhile, however loaded the machine."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_server)
    config = write_config(tmp_path, tracking_server, "silent")
    out = tmp_path / "out"
    chief, log_path, pids = start_local_search(tmp_path, config, out, "chief.log", "--worker-timeout", 10,
                                               workers=1)
    try:
        trial = wait_for(lambda: stopped_inside_a_trial(chief, pids["w0"], "w0", tracking_server, out),
                         240, "w0 stopped inside a trial")
        lost = f"worker w0 lost (no contact for 10 s); trial {trial} re-queued"
        wait_for(lambda: lost in log_path.read_text(), 60, "the chief to declare w0 lost")
        wait_for(lambda: gone(pids["w0"]), 30, "the chief to end w0's process")
        _, err = chief.communicate(timeout=240)
        assert chief.returncode == 0, err[-3000:]
    finally:
        end_all(chief, pids.values())
    text = log_path.read_text()
    assert "worker w1 lost" not in text and "started worker w1" in text, text
    runs = check_every_trial_once(tracking_server, out)
    handed_on = [run for run in runs if run.data.tags[TRIAL_TAG] == trial]
    steps = [m.step for m in client.get_metric_history(handed_on[0].info.run_id, "val_accuracy")]
    assert sorted(steps) == [0, 1], steps  # resumed from w0's last epoch, or run afresh: once each
    assert all(gone(pid) for pid in [chief.pid, *pids.values()])


@pytest.mark.parametrize("arguments,message", [
    (["--role", "worker", "--chief", "127.0.0.1:{closed}", "--worker-id", "w0", "--chief-timeout", "2"],
     "error: `--chief` 127.0.0.1:{closed} did not answer within 2 s"),
    (["--role", "chief", "--bind", "127.0.0.1:{busy}"], "error: `--bind` 127.0.0.1:{busy} cannot be bound"),
    (["--role", "worker", "--chief", "127.0.0.1:1"], "error: `--role worker` needs `--worker-id`"),
    (["--role", "worker", "--chief", "127.0.0.1:1", "--worker-id", "chief-1"], "error: `--worker-id` must be"),
    (["--workers", "2", "--role", "chief"], "error: `--workers` starts its own chief"),
    (["--bind", "127.0.0.1:1"], "error: `--bind` applies to `--role chief` only"),
    (["--role", "chief", "--bind", "nowhere"], "error: `--bind` must be HOST:PORT"),
])
def test_bad_distributed_input_is_one_error_line_and_exit_2(tmp_path, arguments, message):
    config = write_config(tmp_path, f"sqlite:///{tmp_path}/mlflow.db", "bad")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        ports = {"closed": free_port(), "busy": busy.getsockname()[1]}
        # the CLI in this process: each of these is refused before a search starts
        process = zoo_here("tune", config, "--out", tmp_path / "out",
                           *[a.format(**ports) for a in arguments], cwd=tmp_path)
        assert one_error_line(process).startswith(message.format(**ports))
    assert not (tmp_path / "out").exists() and not (tmp_path / "mlflow.db").exists()


def test_tracking_server_refuses_a_port_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        process = zoo_here("tracking-server", "--port", busy.getsockname()[1], cwd=tmp_path)
        assert "cannot be used" in one_error_line(process)


def test_tracking_server_listens_on_loopback_by_default(tracking_server):
    """The session's `zoo tracking-server` was started without `--host`: the socket it listens on
    is bound to 127.0.0.1, not 0.0.0.0 (checked in the kernel's socket table, not the parser)."""
    port = int(tracking_server.rsplit(":", 1)[1])
    addresses = listening_addresses(port)
    assert addresses and set(addresses) == {"127.0.0.1"}, addresses


def test_a_worker_refuses_a_tls_chief_whose_certificate_names_another_host(tmp_path):
    """The chief's certificate names 127.0.0.1 and localhost; served on 127.0.0.2 (loopback too),
    a worker dialing that address refuses it (one error line, before TensorFlow); the same
    chief, dialed under a name its certificate holds, completes the handshake."""
    import grpc

    from tuning.distributed import Chief, Credentials
    from tuning.distributed.service import add_services

    ca, certificate, key = make_tls_files(tmp_path)
    chief = Chief(("127.0.0.2", 0), fingerprint="hash", credentials=Credentials(
        certificate=certificate.read_bytes(), private_key=key.read_bytes()), announce=False)
    add_services(chief.server, chief)
    chief.server.start()
    try:
        config = write_config(tmp_path, f"sqlite:///{tmp_path}/mlflow.db", "tls-name")
        refused = zoo_here("tune", config, "--role", "worker", "--chief", chief.address, "--worker-id",
                           "w0", "--tls-ca", ca, "--chief-timeout", "2", cwd=tmp_path)
        assert one_error_line(refused).startswith(f"error: `--chief` {chief.address} did not answer within 2 s")
        assert "with a certificate for this address?" in refused.stderr
        named = grpc.secure_channel(chief.address, grpc.ssl_channel_credentials(ca.read_bytes()),
                                    options=[("grpc.ssl_target_name_override", "localhost")])
        with named, pytest.raises(grpc.RpcError) as answered:
            named.unary_unary("/zoo.Cluster/Hello")(b'{"worker_id": "w0", "session": "s"}', timeout=20)
        assert answered.value.code() == grpc.StatusCode.PERMISSION_DENIED  # past TLS: another config
    finally:
        chief.server.stop(None).wait()
