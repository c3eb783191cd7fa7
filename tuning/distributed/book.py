"""The chief's book of its workers: admission, leases, lost workers and their trials' re-queues."""

import collections
import threading
import time

from tuning import _kt_compat as kt_compat
from tuning.distributed.addresses import MAX_REQUEUES, TAKEOVER_SECONDS


class Refused(Exception):
    """The chief refuses a worker (config hash, duplicate id, declared lost)."""


class Worker:
    def __init__(self, identity):
        self.worker_id = identity["worker_id"]
        self.session = identity["session"]
        self.host, self.pid = identity.get("host"), identity.get("pid")
        self.last_seen = time.monotonic()
        # active → finished (told STOPPED, or retired for a fresh process) | lost (no contact, or
        # its process died)
        self.state = "active"


class Book:
    """Who works for the chief, and how the search ends: `stopping` once the oracle has no trial
    left to hand out, `failure` the oracle's "consecutive failures" error, raised after the
    workers stop. `oracle` is set when the chief starts serving; `say` prints the chief's log
    lines."""

    def __init__(self, fingerprint, say=print):
        self.fingerprint = fingerprint
        self.say = say
        self.lock = threading.Lock()
        self.workers = {}
        self.requeues = collections.Counter()
        self.oracle = None
        self.failure = None
        self.stopping = False

    def admit(self, identity):
        """Register or refresh a worker → (its record, the record its id had before: the same one
        for a heartbeat, None for a new id); raise `Refused` with the reason otherwise."""
        worker_id = identity.get("worker_id") or ""
        if identity.get("fingerprint") != self.fingerprint:
            raise Refused(
                f"worker '{worker_id}' runs a different configuration (hash "
                f"{identity.get('fingerprint')}) from the chief's ({self.fingerprint}); start every "
                f"worker with the chief's config file")
        now = time.monotonic()
        with self.lock:
            known = self.workers.get(worker_id)
            if known is not None and known.session == identity.get("session"):
                if known.state == "lost":
                    raise Refused(f"worker '{worker_id}' was declared lost and its trial handed on; "
                                  f"restart it to rejoin")
                known.last_seen = now
                return known, known
            if known is not None and known.state == "active" and now - known.last_seen < TAKEOVER_SECONDS:
                raise Refused(
                    f"worker id '{worker_id}' is already in use by a live worker (host "
                    f"{known.host}, pid {known.pid}); give every worker its own --worker-id")
            worker = Worker(identity)
            self.workers[worker_id] = worker
        return worker, known

    def finish(self, worker):
        """The worker was told STOPPED: it leaves, and is no longer waited for."""
        with self.lock:
            worker.state = "finished"

    def silent(self, timeout):
        """The ids of the active workers not heard from for `timeout` seconds."""
        now = time.monotonic()
        with self.lock:
            return [w.worker_id for w in self.workers.values()
                    if w.state == "active" and now - w.last_seen > timeout]

    def finished(self):
        """Whether the search is over: no trial left, none running, no active worker."""
        with kt_compat.holding(self.oracle):
            if not self.stopping or kt_compat.ongoing(self.oracle):
                return False
        with self.lock:
            return not any(worker.state == "active" for worker in self.workers.values())

    def ongoing_trial_id(self, worker_id):
        with kt_compat.holding(self.oracle):
            trial = kt_compat.ongoing(self.oracle).get(worker_id) if self.oracle else None
        return trial.trial_id if trial else None

    def end_trial(self, trial):
        """Report an ended trial to the oracle (holding its lock); its "too many consecutive
        failures" error stops the search once the other trials have ended."""
        try:
            self.oracle.end_trial(trial)
        except RuntimeError as error:
            self.failure, self.stopping = error, True
            # Keras Tuner raises it before it drops the trial from the ongoing ones: dropped here,
            # or the search would wait for it forever
            ongoing = kt_compat.ongoing(self.oracle)
            for tuner_id in [t for t, running in ongoing.items() if running.trial_id == trial.trial_id]:
                ongoing.pop(tuner_id)

    def retire(self, worker):
        """A worker leaves between trials for a fresh process to take its place (its trial quota
        or memory bound); whether a replacement is needed. The oracle is asked on its behalf
        whether a trial is left: one it hands out goes to the retry queue for the replacement;
        none left, and none running, ends the search without starting a process for nothing."""
        from keras_tuner.engine.trial import TrialStatus

        with self.lock:
            if worker.state != "active":
                return False
            worker.state = "finished"
        with kt_compat.holding(self.oracle):
            if self.stopping:
                return False
            trial = self.oracle.create_trial(worker.worker_id)
            kt_compat.drop_tuner(self.oracle, worker.worker_id)
            if trial.status == TrialStatus.RUNNING:
                kt_compat.ongoing(self.oracle).pop(worker.worker_id, None)
                kt_compat.requeue(self.oracle, trial.trial_id)
                self.oracle.save()
                return True
            if trial.status == TrialStatus.STOPPED:
                self.stopping = self.stopping or not kt_compat.ongoing(self.oracle)
                return False
            return True  # IDLE: Hyperband waits for a round's results, then has trials again

    def lose(self, worker_id, reason, close_runs=None):
        """A worker is gone: re-queue its trial (once), or fail it, so the others go on; whether
        it was an active worker of this book (a process that never joined was not).

        `close_runs(trial_id, status, reason)` closes the lost attempt's tracking runs; it is
        called under the oracle's lock before the trial is re-queued, so that no other worker can
        start the next attempt (whose run would then be closed too) in between."""
        with self.lock:
            worker = self.workers.get(worker_id)
            if worker is None or worker.state != "active":
                return False
            worker.state = "lost"
        from keras_tuner.engine.trial import TrialStatus

        with kt_compat.holding(self.oracle):
            kt_compat.drop_tuner(self.oracle, worker_id)
            trial = kt_compat.ongoing(self.oracle).pop(worker_id, None)
            if trial is None:
                self.say(f"worker {worker_id} lost ({reason})", flush=True)
                return True
            self.requeues[trial.trial_id] += 1
            requeue = self.requeues[trial.trial_id] <= MAX_REQUEUES
            message = None if requeue else f"worker {worker_id} was lost during this trial ({reason})"
            if close_runs is not None:
                close_runs(trial.trial_id, "KILLED" if requeue else "FAILED", message)
            if requeue:
                kt_compat.requeue(self.oracle, trial.trial_id)
                self.oracle.save()
                what = "re-queued"
            else:
                trial.status = TrialStatus.FAILED
                trial.message = message
                what = "failed (its workers were lost twice)"
                self.end_trial(trial)
        self.say(f"worker {worker_id} lost ({reason}); trial {trial.trial_id} {what}", flush=True)
        return True
