"""Trials in worker processes (the search's default; conftest.py runs the other tests inline):
real processes started, recycled and replaced by `tuning.search`, real MLflow stores. A test
waits on what the processes say (a record file a fit writes, a line the chief prints), never on
the clock; each wait's timeout is only a bound in case nothing comes."""

import _thread
import json
import os
import signal
import threading
import time

import keras
import keras_tuner as kt
import pytest
from mlflow import MlflowClient
from zoo_testing import gone, wait_for

from tuning import search
from tuning.distributed import TAKEOVER_SECONDS, Refused
from tuning.distributed.book import Book
from tuning.distributed.worker import Retirement
from tuning.hypermodel import ZooHyperModel
from tuning.search import INLINE_ENV, STATE_FILE, SearchFailed
from tuning.tracking import PARENT_TAG, TRIAL_TAG
from zoo.data import load_dataset


class Recorded(ZooHyperModel):
    """The catalog MLP, whose every fit leaves a record in `folder` (its process, TensorFlow
    threads, GPU, hyperparameters, start and end). `stall_at`: the fit with that ordinal (1 for
    the first fit of the search) stops after its first epoch's checkpoint, says its pid in
    `folder/stalled.pid` and waits to be killed; `meet`: the first `meet` fits wait inside `fit`
    until all of them are there, so they run at once; `fail`: every fit fails."""

    def __init__(self, folder, *, stall_at=None, meet=0, fail=False):
        super().__init__(["mlp"], input_shape=(4,), num_outputs=3, task="multiclass",
                         params={"hidden_units": (4,)}, tune_training=False)
        self.folder, self.stall_at, self.meet, self.fail = str(folder), stall_at, meet, fail

    def fit(self, hp, model, x=None, y=None, **kwargs):
        import tensorflow as tf

        os.makedirs(self.folder, exist_ok=True)
        ordinal = _claim_ordinal(self.folder)
        values = {name: value for name, value in hp.values.items()
                  if name.startswith("tuner/") or hp.is_active(name)}  # tuner/: Hyperband's own
        record = {"pid": os.getpid(), "ordinal": ordinal, "values": values, "start": time.time(),
                  "threads": tf.config.threading.get_intra_op_parallelism_threads(),
                  "gpu": os.environ.get("CUDA_VISIBLE_DEVICES")}
        if self.fail:
            _write(os.path.join(self.folder, f"fit-{ordinal}.json"), json.dumps(record))
            raise kt.errors.FailedTrialError("this hypermodel fails every trial")
        if ordinal <= self.meet:
            wait_for(lambda: _claimed(self.folder) >= self.meet, 120, f"{self.meet} fits at once")
        callbacks = list(kwargs.pop("callbacks", None) or [])
        if ordinal == self.stall_at:
            callbacks.append(_StallAfterFirstEpoch(self.folder))  # after the tuner's checkpoint
        history = super().fit(hp, model, x, y, callbacks=callbacks, **kwargs)
        record["end"], record["epochs"] = time.time(), history.epoch
        _write(os.path.join(self.folder, f"fit-{ordinal}.json"), json.dumps(record))
        return history


class _StallAfterFirstEpoch(keras.callbacks.Callback):
    def __init__(self, folder):
        super().__init__()
        self.folder = folder

    def on_epoch_end(self, epoch, logs=None):
        _write(os.path.join(self.folder, "stalled.pid"), str(os.getpid()))
        time.sleep(300)  # killed long before; a bound in case the test is not there
        raise RuntimeError("the stalled fit was not killed")


def _claim_ordinal(folder):
    """This fit's ordinal in the search: the first free `started-N` (created exclusively, so two
    processes never share one)."""
    ordinal = 1
    while True:
        try:
            os.close(os.open(os.path.join(folder, f"started-{ordinal}"), os.O_CREAT | os.O_EXCL))
            return ordinal
        except FileExistsError:
            ordinal += 1


def _claimed(folder):
    return sum(name.startswith("started-") for name in os.listdir(folder))


def _write(path, text):
    with open(path + ".tmp", "w") as handle:
        handle.write(text)
    os.replace(path + ".tmp", path)


def records(folder):
    return sorted((json.loads(open(os.path.join(folder, name)).read()) for name in os.listdir(folder)
                   if name.startswith("fit-")), key=lambda record: record["ordinal"])


def trial_runs(uri, parent):
    client = MlflowClient(uri)
    experiment = client.get_run(parent).info.experiment_id
    return client, client.search_runs([experiment], f"tags.`{PARENT_TAG}` = '{parent}'")


@pytest.fixture
def in_workers(monkeypatch):
    """Trials in worker processes, as a search runs them by default."""
    monkeypatch.delenv(INLINE_ENV, raising=False)


def test_a_worker_killed_mid_trial_has_it_resumed_by_a_fresh_worker_then_retires(tmp_path, in_workers, capsys):
    """SIGKILL the worker inside trial 1, after its first epoch's checkpoint: the search returns;
    a fresh worker resumes the trial at epoch 2 in the same MLflow run (one run per trial, each
    epoch logged once); after its 2 trials (`trials_per_worker`) it retires, and as no trial is
    left no third worker starts."""
    iris, fits, uri = load_dataset("iris"), tmp_path / "fits", f"sqlite:///{tmp_path}/mlflow.db"
    stalled = fits / "stalled.pid"

    def kill_the_stalled_worker():
        pid = int(wait_for(lambda: stalled.exists() and stalled.read_text(), 240, "the stalled fit"))
        os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_the_stalled_worker, daemon=True)
    killer.start()
    result = search(iris, algorithm="bayesian", hypermodel=Recorded(fits, stall_at=2), max_trials=3,
                    max_epochs=3, n_jobs=1, trials_per_worker=2, directory=str(tmp_path / "s"),
                    tracking_uri=uri, retrain=False)
    killer.join(1)
    out = capsys.readouterr().out
    assert result.trials.status.tolist() == ["COMPLETED"] * 3
    assert "worker w0 lost (its process exited with code -9); trial 1 re-queued" in out, out
    assert "worker w1 retired (2 trials done, search.trials_per_worker)" in out, out
    assert "started worker w2" not in out, out  # the oracle had no trial left for it

    client, runs = trial_runs(uri, result.run_id)
    assert sorted(run.data.tags[TRIAL_TAG] for run in runs) == ["0", "1", "2"]  # none twice
    assert all(run.info.status == "FINISHED" for run in runs)
    resumed = next(run for run in runs if run.data.tags[TRIAL_TAG] == "1")
    assert resumed.data.tags["zoo.resumed_at_epoch"] == "2"
    steps = [m.step for m in client.get_metric_history(resumed.info.run_id, "val_accuracy")]
    assert sorted(steps) == [0, 1, 2]  # the first attempt's epoch, then the resumed ones
    first, *rest = records(fits)
    assert {record["pid"] for record in rest} - {first["pid"]}  # trial 1 finished elsewhere
    assert not any(record["ordinal"] == 2 for record in rest)  # the killed fit left no record
    assert gone(int(stalled.read_text()))


def test_parallel_2_runs_two_trials_at_once_the_same_trials_as_one_at_a_time(tmp_path, in_workers,
                                                                              monkeypatch, capsys):
    """`n_jobs=2` (search.parallel): two worker processes, the cores split between them, whose
    first two fits can only finish once both are inside `fit`; the trials a seeded random
    search runs are those it runs one at a time in this process; its pruner hears every epoch."""
    from tuning.distributed import default_threads

    iris = load_dataset("iris")
    options = {"algorithm": "random", "pruner": "median", "max_trials": 4, "max_epochs": 2, "seed": 3,
               "retrain": False, "tracking": False, "progress": False}
    parallel = search(iris, hypermodel=Recorded(tmp_path / "parallel", meet=2), n_jobs=2,
                      directory=str(tmp_path / "p"), **options)
    monkeypatch.setenv(INLINE_ENV, "1")
    one_by_one = search(iris, hypermodel=Recorded(tmp_path / "sequential"),
                        directory=str(tmp_path / "q"), **options)

    both = records(tmp_path / "parallel")
    assert [record["ordinal"] for record in both] == [1, 2, 3, 4]
    first, second = both[:2]
    assert first["pid"] != second["pid"]
    assert max(first["start"], second["start"]) < min(first["end"], second["end"])  # overlapping
    assert {record["threads"] for record in both} == {max(1, default_threads() // 2)}
    assert parallel.trials.status.tolist() == ["COMPLETED"] * 4
    # the pruner heard every epoch over gRPC (the tuner alone reports only the best one)
    chief = parallel._plan.oracle
    assert [len(trial.metrics.get_history("val_accuracy")) for trial in chief.trials.values()] == [2] * 4

    def trials(folder):
        return sorted(json.dumps(record["values"], sort_keys=True) for record in records(folder))

    assert trials(tmp_path / "parallel") == trials(tmp_path / "sequential")
    assert one_by_one.trials.status.tolist() == ["COMPLETED"] * 4


def test_hyperband_goes_on_from_weights_a_worker_process_saved_in_the_search_folder(tmp_path, in_workers):
    """Hyperband's second round trains its first round's best further: the worker running it finds
    that trial's weights in the search's folder (a local worker works there, not in a scratch
    folder of its own), so it trains the epochs after them, not all of them again, though the
    worker that trained them retired after its 2 trials (`trials_per_worker`) meanwhile."""
    fits = tmp_path / "fits"
    result = search(load_dataset("iris"), algorithm="hyperband", hypermodel=Recorded(fits),
                    max_trials=4, max_epochs=3, n_jobs=1, trials_per_worker=2,
                    directory=str(tmp_path / "s"), tracking=False, progress=False, retrain=False)
    assert result.trials.status.tolist() == ["COMPLETED"] * 4
    done = records(fits)
    *first_round, second = done
    assert [r["values"]["tuner/epochs"] for r in first_round] == [1, 1, 1]
    assert second["values"]["tuner/trial_id"] in {"0", "1", "2"}
    assert second["epochs"] == [1, 2]  # from its predecessor's weights, after its one epoch
    pids = [r["pid"] for r in done]
    assert pids[0] == pids[1] != pids[2] == pids[3]  # the first worker's slot, a fresh process


@pytest.mark.parametrize("ending", ["ctrl-c", "failure"])
def test_the_worker_processes_end_with_a_search_interrupted_or_failed(tmp_path, in_workers, ending):
    """Ctrl-C while a worker is inside a trial (the trial's and the search's MLflow runs end
    KILLED), or a search stopped by its failed trials: no worker process outlives the search."""
    iris, fits, uri = load_dataset("iris"), tmp_path / "fits", f"sqlite:///{tmp_path}/mlflow.db"
    options = {"algorithm": "grid" if ending == "failure" else "random", "max_trials": 2, "max_epochs": 2,
               "n_jobs": 1, "retrain": False, "directory": str(tmp_path / "s"), "tracking_uri": uri,
               "progress": False}
    if ending == "ctrl-c":
        stalled = fits / "stalled.pid"

        def press_ctrl_c_inside_the_fit():
            wait_for(stalled.exists, 240, "the stalled fit")
            _thread.interrupt_main()  # what Ctrl-C does to the chief: KeyboardInterrupt

        threading.Thread(target=press_ctrl_c_inside_the_fit, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            search(iris, hypermodel=Recorded(fits, stall_at=1), **options)
        pids = [int(stalled.read_text())]
    else:
        with pytest.raises(SearchFailed, match="1 consecutive trials failed"):
            search(iris, hypermodel=Recorded(fits, fail=True), max_consecutive_failures=1, **options)
        pids = [record["pid"] for record in records(fits)]
    assert pids and all(gone(pid) for pid in pids)
    if ending == "ctrl-c":
        parent = json.loads((tmp_path / "s" / STATE_FILE).read_text())["parent_run_id"]
        client, runs = trial_runs(uri, parent)
        assert client.get_run(parent).info.status == "KILLED"
        assert [run.info.status for run in runs] == ["KILLED"]


def test_a_retirement_reason_is_its_trial_quota_or_its_memory():
    quota, memory = Retirement(trials=2), Retirement(memory_mb=1)
    assert quota.reason() is None and memory.reason() is None  # nothing done yet
    quota.done = memory.done = 2
    assert quota.reason() == "2 trials done, search.trials_per_worker"
    assert "MB resident > search.worker_memory_mb 1" in memory.reason()
    assert Retirement(trials=2, memory_mb=10**6).reason() is None


def test_a_restarted_worker_takes_its_id_back_once_its_lease_has_lapsed():
    book = Book("hash", say=lambda *args, **kwargs: None)
    first = {"worker_id": "w1", "session": "s1", "fingerprint": "hash"}
    book.admit(first)
    restarted = {**first, "session": "s2"}
    with pytest.raises(Refused, match="already in use by a live worker"):
        book.admit(restarted)
    book.workers["w1"].last_seen -= TAKEOVER_SECONDS  # its lease has lapsed
    worker, previous = book.admit(restarted)
    assert worker.session == "s2" and previous.session == "s1"
