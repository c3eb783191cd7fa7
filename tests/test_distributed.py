"""Distributed search with real processes on loopback: a real `mlflow server` (started with
`zoo tracking-server`), a chief and workers as `zoo tune` subprocesses; every wait is bounded."""

import os
import signal
import socket

import pytest
from zoo_testing import (
    check_every_trial_once,
    free_port,
    gone,
    one_error_line,
    raw_calls,
    start_tracking_server,
    trial_runs,
    wait_for,
    write_config,
    zoo,
)


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlflow")
    server, uri = start_tracking_server(folder, f"sqlite:///{folder}/mlflow.db")
    yield uri
    server.send_signal(signal.SIGTERM)
    assert server.wait(30) == 0


def test_chief_and_two_workers_split_the_trials_and_refuse_bad_workers(tmp_path, tracking_server):
    config = write_config(tmp_path, tracking_server, "roles")
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
    assert (out / "best_model.keras").exists()
    assert all(gone(p.pid) for p in [chief, *workers])


def test_a_worker_killed_mid_trial_does_not_stop_the_search(tmp_path, tracking_server):
    config = write_config(tmp_path, tracking_server, "kill")
    out = tmp_path / "out"
    log_path = tmp_path / "chief.log"
    with open(log_path, "w") as log:
        chief = zoo("tune", config, "--out", out, "--workers", 2, cwd=tmp_path, stdout=log)
    try:
        text = wait_for(lambda: "started worker w1" in log_path.read_text() and log_path.read_text(),
                        60, "the workers to start")
        pids = {line.split()[2]: int(line.split("pid ")[1].split(",")[0])
                for line in text.splitlines() if line.startswith("started worker")}

        def w1_running():
            if not (out / "search" / "zoo_search.json").exists():
                return False
            _, _, runs = trial_runs(tracking_server, out)
            return any(r.info.status == "RUNNING" and r.data.tags.get("zoo.worker") == "w1" for r in runs)

        wait_for(w1_running, 180, "w1 to run a trial")
        # the local cluster is closed too, with no configuration: the chief made a token and
        # gave it to its own workers only
        address = log_path.read_text().split("chief serving the oracle on ")[1].split()[0]
        assert set(raw_calls(address).values()) == {"UNAUTHENTICATED"}
        os.kill(pids["w1"], signal.SIGKILL)
        _, err = chief.communicate(timeout=240)
        assert chief.returncode == 0, err[-3000:]
    finally:
        if chief.poll() is None:
            chief.kill()
    assert "worker w1 lost (its process exited with code -9)" in log_path.read_text()
    assert "re-queued" in log_path.read_text()
    check_every_trial_once(tracking_server, out)  # the killed attempt is not counted twice
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
        process = zoo("tune", config, "--out", tmp_path / "out",
                      *[a.format(**ports) for a in arguments], cwd=tmp_path)
        assert one_error_line(process).startswith(message.format(**ports))
    assert not (tmp_path / "out").exists() and not (tmp_path / "mlflow.db").exists()


def test_tracking_server_refuses_a_port_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        process = zoo("tracking-server", "--port", busy.getsockname()[1], cwd=tmp_path)
        assert "cannot be used" in one_error_line(process)
