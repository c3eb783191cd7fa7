"""The chief: its gRPC server serving the oracle to the workers, until every trial has ended, and
the local worker processes it supervises (a search's own trials run there by default)."""

import threading
import time
from concurrent import futures

import grpc

from tuning import _kt_compat as kt_compat
from tuning.distributed.addresses import WORKER_TIMEOUT, is_loopback
from tuning.distributed.auth import (
    HOW_TO_GIVE,
    TOKEN_ENV,
    Credentials,
    TokenCheck,
    generate_token,
)
from tuning.distributed.book import Book
from tuning.distributed.local import FATAL_EXIT, LocalWorkers
from tuning.distributed.service import add_services
from zoo.errors import InvalidParameterError, JobFailed


def _bindable(host, port):
    """Whether a plaintext gRPC server could bind `host:port` (when a TLS one could not)."""
    probe = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    try:
        return bool(probe.add_insecure_port(f"{host}:{port}"))
    except RuntimeError:
        return False
    finally:
        # a server never started keeps the port it bound for the life of the process: started and
        # stopped, it lets it go (the Python API, or a test calling the CLI in-process, goes on)
        probe.start()
        probe.stop(None).wait()


def _silent(*args, **kwargs):
    pass


class Chief:
    """The chief's gRPC server, its book of workers and its local worker processes.

    The port is bound in `__init__`, before anything else happens (a port in use is refused at
    once); the server starts serving when `serve` is called from inside the search, that is once
    the parent run exists and the oracle is loaded. `local_workers` processes are started by
    `launch` (they import TensorFlow while the search sets up), replaced when one retires after
    `retire["trials"]` trials or above `retire["memory_mb"]`, or dies; `announce` prints what
    happens to them.
    """

    def __init__(self, bind, *, fingerprint, credentials=None, worker_timeout=WORKER_TIMEOUT,
                 local_workers=0, retire=None, verbose=False, announce=True):
        host, port = bind
        self.credentials = credentials or Credentials()
        self.worker_timeout = float(worker_timeout)
        if not is_loopback(host) and not self.credentials.token:
            raise InvalidParameterError(
                f"the chief would listen on {host}:{port}, off loopback, without a cluster token: "
                f"{HOW_TO_GIVE}. Received: --bind={host}:{port}")
        # the token is checked in front of every method, Keras Tuner's oracle methods included
        interceptors = [TokenCheck(self.credentials.token)] if self.credentials.token else []
        # threads, not processes: an IDLE answer holds one for a second, heartbeats must not queue
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=max(32, 2 * local_workers + 4)),
                                  interceptors=interceptors, options=[("grpc.so_reuseport", 0)])
        tls = self.credentials.server_credentials()
        try:
            self.port = (self.server.add_secure_port(f"{host}:{port}", tls) if tls
                         else self.server.add_insecure_port(f"{host}:{port}"))
        except RuntimeError:
            self.port = 0
        if not self.port and tls and _bindable(host, port):
            raise InvalidParameterError(
                "`--tls-cert` and `--tls-key` are not a certificate and its private key (a key of "
                "another certificate, or a malformed file)")
        if not self.port:
            raise InvalidParameterError(
                f"`--bind` {host}:{port} cannot be bound: the port is in use or the address is not "
                f"one of this host's. Received: --bind={host}:{port}")
        self.host = host
        self.address = f"{host}:{self.port}"
        self.say = print if announce else _silent
        self.book = Book(fingerprint, say=self.say)
        self.info = None  # what a joining worker is told: parent run, tracking URI, experiment
        self.oracle = self.tuner = self.tracker = self.parent_run_id = self.progress = None
        self.started = {}  # trial_id -> (monotonic start, worker id)
        self.trial_seconds = 0.0
        # local workers get the token through their environment, never their command line
        self.local = LocalWorkers(local_workers, verbose=verbose, retire=retire, announce=self.say,
                                  env={TOKEN_ENV: self.credentials.token} if self.credentials.token else {})
        self._leaving = []  # ids of local workers that retired, whose slot gets a fresh process
        self._leaving_lock = threading.Lock()
        self._retired = set()  # of those, the ones whose process has not exited yet
        self._exits = []  # exit codes of local workers lost since a trial last ended

    @classmethod
    def on_loopback(cls, workers, *, fingerprint, worker_timeout=None, retire=None, verbose=False,
                    announce=True):
        """The chief of a search's own worker processes: loopback, a fresh token that only they
        get, `workers` of them."""
        return cls(("127.0.0.1", 0), fingerprint=fingerprint, credentials=Credentials(token=generate_token()),
                   worker_timeout=worker_timeout or WORKER_TIMEOUT, local_workers=workers, retire=retire,
                   verbose=verbose, announce=announce)

    # --- the trial runner `tuning.search` calls ------------------------------------------------
    def launch(self, payload):
        """Start the local worker processes, each handed `payload()` (the pickled search)."""
        if self.local.count and not self.local.started:
            self.local.start(self.port, payload(), self.book.fingerprint)

    def close(self):
        """End whatever local worker is left (a search that failed before its trials ran)."""
        self.local.stop(grace=0)

    # --- serving -------------------------------------------------------------------------------
    def run_trials(self, tuner, fit_args, fit_kwargs, session):
        """The trial runner `tuning.search` calls: serve the trials instead of running them."""
        self.serve(tuner, tracker=session.tracker, parent_run_id=session.parent_run_id,
                   tracking_uri=session.tracking_uri, experiment=session.experiment,
                   progress=session.progress)
        # told to stop, the local workers are leaving: give them time
        self.local.stop(grace=30)

    def serve(self, tuner, *, tracker, parent_run_id, tracking_uri, experiment, progress=None):
        """Serve `tuner.oracle` to the workers until every trial has ended; called by `search`."""
        self.oracle = self.book.oracle = tuner.oracle
        self.tuner = tuner
        self.tracker, self.parent_run_id, self.progress = tracker, parent_run_id, progress
        self.info = {"parent_run_id": parent_run_id, "tracking_uri": tracking_uri,
                     "experiment": experiment}
        kt_compat.quiet_conditions()
        self.oracle.verbose = 0  # our own progress line per trial replaces Keras Tuner's display
        tuner.save()  # what Keras Tuner's chief does before serving
        add_services(self.server, self)
        self.server.start()
        guards = [name for name, on in (("cluster token", self.credentials.token),
                                        ("TLS", self.credentials.certificate)) if on]
        self.say(f"chief serving the oracle on {self.address}"
                 f" ({', '.join(guards) if guards else 'no token: loopback only'})", flush=True)
        try:
            self._loop()
        except BaseException:
            self.stop_local_workers(grace=0)
            if tracker:  # interrupted: the runs stay resumable, marked as what they are
                tracker.close_stale_trials(parent_run_id)
                tracker.set_status(parent_run_id, "KILLED")
            raise
        finally:
            self.server.stop(grace=1).wait(5)
        tuner.fit_seconds = self.trial_seconds
        if self.book.failure is not None:
            raise self.book.failure

    def _loop(self):
        while not self.book.finished():
            self._check_workers()
            time.sleep(0.2)

    def _check_workers(self):
        ended = self.local.exited()
        with self._leaving_lock:  # after `exited`: a worker says it leaves before it exits
            self._retired.update(self._leaving)
            self._leaving = []
        replace = []
        for worker_id, code in ended:
            if worker_id in self._retired:  # its slot's next process starts once it is gone: the
                self._retired.discard(worker_id)  # two never hold their memory at once
                replace.append(worker_id)
                continue
            if self._has_left(worker_id):  # told to stop, retired, or already lost: seen to
                continue
            if code == FATAL_EXIT:
                raise JobFailed(f"a trial on worker {worker_id} raised an error that stops the search "
                                f"(above)")
            if not self.lose(worker_id, f"its process exited with code {code}"):
                self.say(f"worker {worker_id} exited with code {code} before it joined", flush=True)
            self._exits.append(code)
            replace.append(worker_id)
        for worker_id in self.book.silent(self.worker_timeout):
            self.lose(worker_id, f"no contact for {self.worker_timeout:.0f} s")
            if worker_id in self.local.processes:  # ours, perhaps hung in native code: ended
                self.local.kill(worker_id)
                replace.append(worker_id)
        if len(self._exits) > 2 * self.local.count + 1:
            raise JobFailed(f"worker processes keep exiting (the last with code {self._exits[-1]}) "
                            f"while no trial ends; their errors are above")
        for worker_id in replace:
            if self.book.stopping:
                break
            self.local.replace(worker_id)
        if self.local.count and not self.local.processes and not self.book.finished():
            raise JobFailed("every worker process exited before the search finished")

    def _has_left(self, worker_id):
        worker = self.book.workers.get(worker_id)
        return worker is not None and worker.state != "active"

    # --- workers -------------------------------------------------------------------------------
    def admit(self, identity):
        """Register or refresh a worker; raise `Refused` with the reason otherwise."""
        worker, previous = self.book.admit(identity)
        if previous is worker:  # a heartbeat
            return worker
        if previous is not None and previous.state == "active":
            # a restarted worker takes over its id: Keras Tuner hands it the same ongoing trial,
            # and the run the dead process left RUNNING is closed so the trial is logged once
            self._close_runs(self.book.ongoing_trial_id(worker.worker_id), "KILLED")
        self.say(f"worker {worker.worker_id} joined from {worker.host} (pid {worker.pid})", flush=True)
        return worker

    def retire(self, worker, reason):
        """A local worker leaves between trials (`reason`: its trial quota or memory bound); a
        fresh process takes its slot while trials are left."""
        replace = self.book.retire(worker)
        self.say(f"worker {worker.worker_id} retired ({reason})", flush=True)
        if replace:
            with self._leaving_lock:
                self._leaving.append(worker.worker_id)

    def lose(self, worker_id, reason):
        """A worker is gone: re-queue its trial (once), or fail it, so the others go on; whether it
        was an active worker."""
        return self.book.lose(worker_id, reason, close_runs=self._close_runs)

    def _close_runs(self, trial_id, status, reason=None):
        from tuning.tracking import TRIAL_TAG

        if trial_id is None or not self.tracker:
            return
        for run in self.tracker.trial_runs(self.parent_run_id, status="RUNNING"):
            if run.data.tags.get(TRIAL_TAG) == trial_id:
                if reason:
                    self.tracker.set_tags(run.info.run_id, {"zoo.failure_reason": reason})
                self.tracker.set_status(run.info.run_id, status)

    def stop_local_workers(self, grace=10.0):
        """End the local worker processes: wait `grace` seconds, then SIGTERM, then SIGKILL."""
        self.local.stop(grace)

    # --- trials --------------------------------------------------------------------------------
    def trial_started(self, trial_id, worker_id):
        self.started[trial_id] = (time.monotonic(), worker_id)

    def trial_ended(self, trial):
        self._exits = []
        # Hyperband: weights no bracket in progress can hand on are deleted here, as a tuner that
        # runs its trials itself does before each trial (a worker's oracle client has no brackets)
        with kt_compat.holding(self.oracle):
            self.tuner._drop_unneeded_weights()
        begun, worker_id = self.started.pop(trial.trial_id, (time.monotonic(), None))
        seconds = time.monotonic() - begun
        self.trial_seconds += seconds
        if self.progress:
            self.progress(trial, {"score": trial.score}, seconds, worker=worker_id)
