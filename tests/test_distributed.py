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
    config = write_config(tmp_path, tracking_server, "kill", algorithm="evolution")
    out = tmp_path / "out"
    log_path = tmp_path / "chief.log"
    with open(log_path, "w") as log:
        chief = zoo("tune", config, "--out", out, "--workers", 2, cwd=tmp_path, stdout=log)
    try:
        text = wait_for(lambda: "started worker w1" in log_path.read_text() and log_path.read_text(),
                        60, "the workers to start")
        pids = worker_pids(text)

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
    runs = check_every_trial_once(tracking_server, out)  # the killed attempt is not counted twice
    assert {run.data.tags["zoo.algorithm"] for run in runs} == {"evolution"}
    state = oracle_state(out)  # the chief ran regularized evolution (population 2 of 4 trials)
    assert (state["population_size"], state["sample_size"]) == (2, 2)
    assert all(gone(pid) for pid in [chief.pid, *pids.values()])


def start_local_search(tmp_path, config, out, log_name, *options):
    """`zoo tune CONFIG --workers 2` with its stdout in `log_name`; (chief, log path, worker pids)
    once both workers are started."""
    log_path = tmp_path / log_name
    with open(log_path, "w") as log:
        chief = zoo("tune", config, "--out", out, "--workers", 2, *options, cwd=tmp_path, stdout=log)

    def started():
        assert chief.poll() is None, chief.stderr.read()[-3000:]
        return "started worker w1" in log_path.read_text() and log_path.read_text()

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


def test_a_silent_worker_is_lost_after_worker_timeout_and_its_trial_handed_on(tmp_path, tracking_server):
    """SIGSTOP a worker inside a trial: after `--worker-timeout` seconds without its heartbeat the
    chief declares it lost and re-queues the trial, which the other worker runs; continued, the
    stopped worker learns it was declared lost and exits; every trial is logged once."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_server)
    config = write_config(tmp_path, tracking_server, "silent")
    out = tmp_path / "out"
    chief, log_path, pids = start_local_search(tmp_path, config, out, "chief.log", "--worker-timeout", 5)
    try:
        def w1_trials():
            if not (out / "search" / "zoo_search.json").exists():
                return []
            _, _, runs = trial_runs(tracking_server, out)
            return [run for run in runs if run.data.tags.get("zoo.worker") == "w1" and run.info.status == "RUNNING"]

        wait_for(lambda: chief.poll() is None and w1_trials(), 240, "w1 to run a trial")

        def stopped_inside_a_trial():
            """Stop w1; keep it stopped if it is inside a trial (a RUNNING run whose last epoch is
            not logged, so it has not told the chief the trial ended), else continue it."""
            assert chief.poll() is None, chief.stderr.read()[-3000:]
            os.kill(pids["w1"], signal.SIGSTOP)
            wait_for(lambda: process_state(pids["w1"]) == "T", 5, "w1 to stop")
            for run in w1_trials():
                if len(client.get_metric_history(run.info.run_id, "val_accuracy")) < 2:  # max_epochs
                    return run.data.tags[TRIAL_TAG]
            os.kill(pids["w1"], signal.SIGCONT)
            return False

        trial = wait_for(stopped_inside_a_trial, 120, "w1 stopped inside a trial")
        lost = f"worker w1 lost (no contact for 5 s); trial {trial} re-queued"
        wait_for(lambda: lost in log_path.read_text(), 60, "the chief to declare w1 lost")

        def w0_took_it():
            _, _, runs = trial_runs(tracking_server, out)
            return any(r.data.tags[TRIAL_TAG] == trial and r.data.tags.get("zoo.worker") == "w0" for r in runs)

        wait_for(w0_took_it, 120, f"w0 to run trial {trial}")
        # continued only now, once w0's new attempt has removed w1's KILLED run: continued before,
        # w1 closes that run as FAILED when its own calls are refused, and a FAILED run is kept
        os.kill(pids["w1"], signal.SIGCONT)
        wait_for(lambda: gone(pids["w1"]), 30, "the continued w1 to exit")
        _, err = chief.communicate(timeout=240)
        assert chief.returncode == 0, err[-3000:]
    finally:
        end_all(chief, pids.values())
    text = log_path.read_text()
    assert "worker w0 lost" not in text, text
    # continued, w1's next call is refused: it exits with one line instead of reporting the trial
    assert "error: worker 'w1' was declared lost and its trial handed on" in err, err[-3000:]
    runs = check_every_trial_once(tracking_server, out)
    assert [r.data.tags["zoo.worker"] for r in runs if r.data.tags[TRIAL_TAG] == trial] == ["w0"]
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
