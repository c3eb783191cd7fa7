"""The chief's book, without processes: a lost worker's trial is closed before it is handed on."""

import keras_tuner as kt

from tuning import _kt_compat as kt_compat
from tuning.distributed.addresses import MAX_REQUEUES
from tuning.distributed.book import Book


def booked_trial(tmp_path, worker_id="w1"):
    hp = kt.HyperParameters()
    hp.Int("units", 1, 8)
    oracle = kt.oracles.RandomSearchOracle(objective="val_loss", max_trials=4, hyperparameters=hp, seed=0)
    oracle._set_project_dir(str(tmp_path), "book")
    book = Book("hash")
    book.oracle = oracle
    book.admit({"worker_id": worker_id, "session": "s1", "fingerprint": "hash"})
    trial = oracle.create_trial(worker_id)
    return book, oracle, trial


def test_a_lost_trial_is_closed_before_another_worker_can_take_it(tmp_path):
    book, oracle, trial = booked_trial(tmp_path)
    seen = []

    def close_runs(trial_id, status, reason):
        # at this moment no other worker may be handed the trial: it is not queued yet
        seen.append((trial_id, status, reason, trial_id in oracle._retry_queue))

    book.lose("w1", "its process exited with code -9", close_runs=close_runs)
    assert seen == [(trial.trial_id, "KILLED", None, False)]
    assert oracle._retry_queue == [trial.trial_id]
    assert oracle.create_trial("w0").trial_id == trial.trial_id  # the next worker gets it again


def test_a_trial_lost_twice_is_failed_with_its_reason(tmp_path):
    book, oracle, trial = booked_trial(tmp_path)
    book.requeues[trial.trial_id] = MAX_REQUEUES  # its first loss already re-queued it
    seen = []
    book.lose("w1", "no contact for 30 s", close_runs=lambda *args: seen.append(args))
    assert seen == [(trial.trial_id, "FAILED", "worker w1 was lost during this trial (no contact for 30 s)")]
    assert oracle._retry_queue == [] and trial.trial_id not in kt_compat.ongoing(oracle)
    assert oracle.trials[trial.trial_id].status == "FAILED"
