"""Distributed search in Keras Tuner's own chief/worker mode: the chief serves the oracle over gRPC
(Keras Tuner's `OracleServicer`, protos and `KERASTUNER_*` variables) and owns the MLflow parent
run; workers pull trials and log their nested runs to the same tracking server.

What this module adds to Keras Tuner's mode: a `Hello` call on the same gRPC server with which a
worker joins (config hash and worker id checked) and keeps its lease; a worker that stops answering
has its trial re-queued once, then failed, instead of leaving the chief waiting forever; and
`Chief.run` with `local_workers` for `zoo tune --workers N` on one machine.
"""

import collections
import contextlib
import json
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent import futures

os.environ.setdefault("GRPC_VERBOSITY", "NONE")  # a failed bind is reported by us, in one line

import grpc  # noqa: E402

from tuning.processes import terminate  # noqa: E402
from zoo.errors import InvalidParameterError, JobFailed  # noqa: E402

SERVICE = "zoo.Cluster"
HEARTBEAT_SECONDS = 2.0
TAKEOVER_SECONDS = 3 * HEARTBEAT_SECONDS  # an id silent this long may be taken by a restarted worker
WORKER_TIMEOUT = 30.0
CHIEF_TIMEOUT = 60.0
# local workers die with their chief (parent-death signal), so they can wait out a slow chief
# start on a loaded machine, where 60 s was seen to run out
LOCAL_CHIEF_TIMEOUT = 300.0
MAX_REQUEUES = 1  # a trial whose worker is lost twice is failed, so a trial that kills workers ends
WORKER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
METADATA = ("worker_id", "session", "fingerprint", "host", "pid")
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 200), ("grpc.min_reconnect_backoff_ms", 200),
                   ("grpc.max_reconnect_backoff_ms", 1000)]


def _quiet_keras_tuner():
    """Keras Tuner 1.4.8's `Parent.to_proto` prints each conditional value it serializes, that is
    on every gRPC call: shadow `print` in that one module."""
    from keras_tuner.src.engine import conditions

    conditions.print = lambda *args, **kwargs: None


def _encode(value):
    return json.dumps(value).encode()


def parse_address(text, option, *, allow_port_zero=False):
    """`HOST:PORT` → (host, port); refused with the option's name otherwise."""
    host, _, port = str(text).rpartition(":")
    lowest = 0 if allow_port_zero else 1
    if not host or not port.isdigit() or not lowest <= int(port) <= 65535:
        raise InvalidParameterError(
            f"`{option}` must be HOST:PORT with a port in [{lowest}, 65535]. Received: {option}={text}")
    return host, int(port)


def check_worker_id(worker_id):
    # Keras Tuner treats any tuner id containing "chief" as the chief
    if not WORKER_ID.match(worker_id or "") or "chief" in worker_id:
        raise InvalidParameterError(
            "`--worker-id` must be 1-64 letters, digits, '.', '_' or '-', must not contain 'chief'. "
            f"Received: --worker-id={worker_id}")


def default_threads():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Refused(Exception):
    """The chief refuses a worker (config hash, duplicate id, declared lost)."""


# === chief ===========================================================================================


class _Worker:
    def __init__(self, identity):
        self.worker_id = identity["worker_id"]
        self.session = identity["session"]
        self.host, self.pid = identity.get("host"), identity.get("pid")
        self.last_seen = time.monotonic()
        self.state = "active"  # active → finished (told STOPPED) | lost (no contact, or its process died)


class Chief:
    """The chief's gRPC server and the book of its workers.

    The port is bound in `__init__`, before anything else happens (a port in use is refused at
    once); the server starts serving when `serve` is called from inside the search, that is once
    the parent run exists and the oracle is loaded.
    """

    def __init__(self, bind, *, fingerprint, worker_timeout=WORKER_TIMEOUT, local_workers=0,
                 worker_command=None, verbose=False):
        host, port = bind
        self.fingerprint = fingerprint
        self.worker_timeout = float(worker_timeout)
        # threads, not processes: an IDLE answer holds one for a second, heartbeats must not queue
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=max(32, 2 * local_workers + 4)),
                                  options=[("grpc.so_reuseport", 0)])
        try:
            self.port = self.server.add_insecure_port(f"{host}:{port}")
        except RuntimeError:
            self.port = 0
        if not self.port:
            raise InvalidParameterError(
                f"`--bind` {host}:{port} cannot be bound: the port is in use or the address is not "
                f"one of this host's. Received: --bind={host}:{port}")
        self.host = host
        self.address = f"{host}:{self.port}"
        self.lock = threading.Lock()
        self.workers = {}
        self.info = None  # what a joining worker is told: parent run, tracking URI, experiment
        self.oracle = self.tracker = self.parent_run_id = self.progress = None
        self.failure = None  # the oracle's "consecutive failures" error, raised after the workers stop
        self.stopping = False
        self.requeues = collections.Counter()
        self.started = {}  # trial_id -> (monotonic start, worker id)
        self.trial_seconds = 0.0
        self.local_workers = local_workers
        # (worker id, chief port, TF threads) -> the command line of a local worker process
        self.worker_command = worker_command
        self.verbose = verbose
        self.processes = {}  # worker id -> Popen, for `zoo tune --workers N`

    # --- admission -----------------------------------------------------------------------------
    def admit(self, identity):
        """Register or refresh a worker; raise `Refused` with the reason otherwise."""
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
                return known
            if known is not None and known.state == "active" and now - known.last_seen < TAKEOVER_SECONDS:
                raise Refused(
                    f"worker id '{worker_id}' is already in use by a live worker (host "
                    f"{known.host}, pid {known.pid}); give every worker its own --worker-id")
            worker = _Worker(identity)
            self.workers[worker_id] = worker
        if known is not None and known.state == "active":
            # a restarted worker takes over its id: Keras Tuner hands it the same ongoing trial,
            # and the run the dead process left RUNNING is closed so the trial is logged once
            self._close_runs(self._ongoing_trial_id(worker_id), "KILLED")
        print(f"worker {worker_id} joined from {worker.host} (pid {worker.pid})", flush=True)
        return worker

    def _admit_rpc(self, context):
        identity = {key: value for key, value in context.invocation_metadata()
                    if key.startswith("zoo-")}
        identity = {name: identity.get("zoo-" + name.replace("_", "-")) for name in METADATA}
        try:
            return self.admit(identity)
        except Refused as error:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, str(error))

    def _hello(self, identity, context):
        try:
            worker = self.admit(identity)
        except Refused as error:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, str(error))
        return {**self.info, "state": "finished" if worker.state == "finished" else "running"}

    # --- serving -------------------------------------------------------------------------------
    def run_trials(self, tuner, fit_args, fit_kwargs, session):
        """The trial runner `tuning.search` calls: serve the trials instead of running them."""
        self.serve(tuner, tracker=session.tracker, parent_run_id=session.parent_run_id,
                   tracking_uri=session.tracking_uri, experiment=session.experiment,
                   progress=session.progress)

    def serve(self, tuner, *, tracker, parent_run_id, tracking_uri, experiment, progress=None):
        """Serve `tuner.oracle` to the workers until every trial has ended; called by `search`."""
        from keras_tuner.src import protos

        self.oracle, self.tracker, self.parent_run_id = tuner.oracle, tracker, parent_run_id
        self.progress = progress
        self.info = {"parent_run_id": parent_run_id, "tracking_uri": tracking_uri,
                     "experiment": experiment}
        _quiet_keras_tuner()
        self.oracle.verbose = 0  # our own progress line per trial replaces Keras Tuner's display
        tuner.save()  # what Keras Tuner's chief does before serving
        hello = grpc.unary_unary_rpc_method_handler(self._hello, request_deserializer=json.loads,
                                                    response_serializer=_encode)
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Hello": hello}),))
        protos.get_service_grpc().add_OracleServicer_to_server(_OracleGate(self), self.server)
        self.server.start()
        print(f"chief serving the oracle on {self.address}", flush=True)
        try:
            while not self._finished():
                self._check_workers()
                time.sleep(0.2)
        except BaseException:
            self.stop_local_workers(grace=0)
            if tracker:  # interrupted: the runs stay resumable, marked as what they are
                tracker.close_stale_trials(parent_run_id)
                tracker.client.set_terminated(parent_run_id, status="KILLED")
            raise
        finally:
            self.server.stop(grace=1).wait(5)
        tuner.fit_seconds = self.trial_seconds
        if self.failure is not None:
            raise self.failure

    def _finished(self):
        with _holding(self.oracle):
            if not self.stopping or self.oracle.ongoing_trials:
                return False
        with self.lock:
            return not any(worker.state == "active" for worker in self.workers.values())

    def _check_workers(self):
        now = time.monotonic()
        for worker_id, process in list(self.processes.items()):
            if process.poll() is not None:
                del self.processes[worker_id]
                self.lose(worker_id, f"its process exited with code {process.returncode}")
        with self.lock:
            silent = [w.worker_id for w in self.workers.values()
                      if w.state == "active" and now - w.last_seen > self.worker_timeout]
        for worker_id in silent:
            self.lose(worker_id, f"no contact for {self.worker_timeout:.0f} s")
        if self.local_workers and not self.processes and not self._finished():
            raise JobFailed("every worker process exited before the search finished")

    def lose(self, worker_id, reason):
        """A worker is gone: re-queue its trial (once), or fail it, so the others go on."""
        with self.lock:
            worker = self.workers.get(worker_id)
            if worker is None or worker.state != "active":
                return
            worker.state = "lost"
        from keras_tuner.src.engine.trial import TrialStatus

        with _holding(self.oracle):
            self.oracle.tuner_ids.discard(worker_id)
            trial = self.oracle.ongoing_trials.pop(worker_id, None)
            if trial is None:
                print(f"worker {worker_id} lost ({reason})", flush=True)
                return
            self.requeues[trial.trial_id] += 1
            if self.requeues[trial.trial_id] <= MAX_REQUEUES:
                self.oracle._retry_queue.append(trial.trial_id)
                self.oracle.save()
                status, what = "KILLED", "re-queued"
            else:
                trial.status = TrialStatus.FAILED
                trial.message = f"worker {worker_id} was lost during this trial ({reason})"
                status, what = "FAILED", "failed (its workers were lost twice)"
                try:
                    self.oracle.end_trial(trial)
                except RuntimeError as error:
                    self.failure, self.stopping = error, True
        print(f"worker {worker_id} lost ({reason}); trial {trial.trial_id} {what}", flush=True)
        self._close_runs(trial.trial_id, status, reason=None if status == "KILLED" else trial.message)

    def _ongoing_trial_id(self, worker_id):
        with _holding(self.oracle):
            trial = self.oracle.ongoing_trials.get(worker_id) if self.oracle else None
        return trial.trial_id if trial else None

    def _close_runs(self, trial_id, status, reason=None):
        from tuning.tracking import TRIAL_TAG

        if trial_id is None or not self.tracker:
            return
        for run in self.tracker.trial_runs(self.parent_run_id, status="RUNNING"):
            if run.data.tags.get(TRIAL_TAG) == trial_id:
                if reason:
                    self.tracker.client.set_tag(run.info.run_id, "zoo.failure_reason", reason)
                self.tracker.client.set_terminated(run.info.run_id, status=status)

    # --- local workers (`zoo tune --workers N`) ---------------------------------------------------
    def start_local_workers(self):
        """Start `local_workers` worker processes on loopback, each with a fair share of the cores."""
        if not self.local_workers:
            return
        threads = max(1, default_threads() // self.local_workers)
        env = {**os.environ, "ZOO_PARENT_PID": str(os.getpid())}
        for index in range(self.local_workers):
            worker_id = f"w{index}"
            command = self.worker_command(worker_id, self.port, threads)
            # a session of their own: Ctrl-C reaches the chief, which stops them in order
            process = subprocess.Popen(command, env=env, start_new_session=True,
                                       stdout=subprocess.DEVNULL if not self.verbose else None)
            self.processes[worker_id] = process
            print(f"started worker {worker_id} (pid {process.pid}, {threads} TF thread(s))", flush=True)

    def stop_local_workers(self, grace=10.0):
        """End the local worker processes: wait `grace` seconds, then SIGTERM, then SIGKILL."""
        processes = list(self.processes.values())
        self.processes = {}
        terminate(processes, grace=grace)

    def trial_started(self, trial_id, worker_id):
        self.started[trial_id] = (time.monotonic(), worker_id)

    def trial_ended(self, trial):
        begun, worker_id = self.started.pop(trial.trial_id, (time.monotonic(), None))
        seconds = time.monotonic() - begun
        self.trial_seconds += seconds
        if self.progress:
            self.progress(trial, {"score": trial.score}, seconds, worker=worker_id)


@contextlib.contextmanager
def _holding(oracle):
    """Hold the oracle's own lock (the one Keras Tuner's `@synchronized` takes) in this thread."""
    from keras_tuner.src.engine import oracle as oracle_module

    name = threading.current_thread().name
    if oracle is None or oracle_module.THREADS[oracle] == name:
        yield
        return
    with oracle_module.LOCKS[oracle]:
        oracle_module.THREADS[oracle] = name
        try:
            yield
        finally:
            oracle_module.THREADS[oracle] = None


class _OracleGate:
    """Keras Tuner's `OracleServicer` behind the chief's admission, with three changes: a worker
    asking for a trial while others still run one waits (IDLE) instead of leaving, so a re-queued
    trial finds a taker; IDLE answers are paced; a stale report for a trial that was handed on is
    ignored."""

    def __init__(self, chief):
        from keras_tuner.src.distribute.oracle_chief import OracleServicer

        self.chief = chief
        self.oracle = chief.oracle
        self.servicer = OracleServicer(chief.oracle)

    def GetSpace(self, request, context):
        self.chief._admit_rpc(context)
        return self.servicer.GetSpace(request, context)

    def UpdateSpace(self, request, context):
        self.chief._admit_rpc(context)
        return self.servicer.UpdateSpace(request, context)

    def UpdateTrial(self, request, context):
        self.chief._admit_rpc(context)
        return self.servicer.UpdateTrial(request, context)

    def GetTrial(self, request, context):
        self.chief._admit_rpc(context)
        return self.servicer.GetTrial(request, context)

    def GetBestTrials(self, request, context):
        self.chief._admit_rpc(context)
        return self.servicer.GetBestTrials(request, context)

    def CreateTrial(self, request, context):
        from keras_tuner.src import protos
        from keras_tuner.src.engine import trial as trial_module

        Status = trial_module.TrialStatus
        worker = self.chief._admit_rpc(context)
        tuner_id = request.tuner_id
        with _holding(self.oracle):
            if self.chief.failure is not None:
                trial = trial_module.Trial(self.oracle.get_space(), status=Status.STOPPED)
            else:
                trial = self.oracle.create_trial(tuner_id)
            wait = 0.0
            if trial.status == Status.STOPPED:
                others = [t for owner, t in self.oracle.ongoing_trials.items() if owner != tuner_id]
                if others and self.chief.failure is None:
                    self.oracle.tuner_ids.add(tuner_id)  # stays: one of the others may be lost
                    trial = trial_module.Trial(self.oracle.get_space(), status=Status.IDLE)
                    wait = 1.0
                else:
                    self.oracle.tuner_ids.discard(tuner_id)
                    self.chief.stopping = True
                    with self.chief.lock:
                        worker.state = "finished"
            elif trial.status == Status.IDLE:  # Hyperband waiting for a round's results
                wait = 0.5
            elif trial.status == Status.RUNNING:
                self.chief.trial_started(trial.trial_id, worker.worker_id)
        time.sleep(wait)  # Keras Tuner's worker asks again at once after IDLE
        return protos.get_service().CreateTrialResponse(trial=trial.to_proto())

    def EndTrial(self, request, context):
        from keras_tuner.src import protos
        from keras_tuner.src.engine import trial as trial_module

        worker = self.chief._admit_rpc(context)
        trial = trial_module.Trial.from_proto(request.trial)
        with _holding(self.oracle):
            owner = next((tid for tid, t in self.oracle.ongoing_trials.items()
                          if t.trial_id == trial.trial_id), None)
            queue = self.oracle._retry_queue
            if owner is None and trial.trial_id in queue:
                queue.remove(trial.trial_id)  # presumed lost, but it finished after all
            elif owner != worker.worker_id:
                return protos.get_service().EndTrialResponse()  # stale: the trial was handed on
            try:
                self.oracle.end_trial(trial)
            except RuntimeError as error:  # too many consecutive failures: stop after the others
                self.chief.failure, self.chief.stopping = error, True
            ended = self.oracle.trials[trial.trial_id]
        self.chief.trial_ended(ended)
        return protos.get_service().EndTrialResponse()


# === worker ==========================================================================================


class _CallDetails(collections.namedtuple("_CallDetails", ("method", "timeout", "metadata", "credentials",
                                                           "wait_for_ready", "compression")),
                   grpc.ClientCallDetails):
    pass


class _Identify(grpc.UnaryUnaryClientInterceptor):
    """Adds the worker's identity to every Keras Tuner call, so the chief can admit or refuse it."""

    def __init__(self, identity):
        self.metadata = [("zoo-" + k.replace("_", "-"), str(v)) for k, v in identity.items()]

    def intercept_unary_unary(self, continuation, details, request):
        details = _CallDetails(details.method, details.timeout,
                               list(details.metadata or []) + self.metadata, details.credentials,
                               details.wait_for_ready, details.compression)
        return continuation(details, request)


class WorkerLink:
    """A worker's connection to the chief: joining, the lease (heartbeat), and the Keras Tuner
    client set up with the worker's identity and a bounded wait."""

    def __init__(self, chief, worker_id, *, fingerprint, chief_timeout=CHIEF_TIMEOUT):
        self.host, self.port = parse_address(chief, "--chief")
        self.address = f"{self.host}:{self.port}"
        self.worker_id = worker_id
        self.chief_timeout = float(chief_timeout)
        self.identity = {"worker_id": worker_id, "session": uuid.uuid4().hex,
                         "fingerprint": fingerprint, "host": platform.node(), "pid": os.getpid()}
        self.channel = grpc.insecure_channel(self.address, options=CHANNEL_OPTIONS)
        self._hello = self.channel.unary_unary(f"/{SERVICE}/Hello", request_serializer=_encode,
                                               response_deserializer=json.loads)
        self.info = {}
        self.directory = None
        self._stop = threading.Event()

    def join(self):
        """Hello to the chief, waiting at most `chief_timeout` for it to answer."""
        try:
            self.info = self._hello(self.identity, timeout=self.chief_timeout, wait_for_ready=True)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.PERMISSION_DENIED:
                raise InvalidParameterError(f"the chief refused this worker: {error.details()}") from None
            raise InvalidParameterError(
                f"`--chief` {self.address} did not answer within {self.chief_timeout:.0f} s "
                f"(is the chief running and reachable?). Received: --chief={self.address}") from None
        # the lease starts now: while this worker imports TensorFlow its id is already taken
        threading.Thread(target=self._beat, name="zoo-heartbeat", daemon=True).start()
        return self.info

    @property
    def tracking_uri(self):
        return self.info.get("tracking_uri")

    @property
    def experiment(self):
        return self.info.get("experiment")

    @property
    def parent_run_id(self):
        return self.info.get("parent_run_id")

    def _beat(self):
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self._hello(self.identity, timeout=HEARTBEAT_SECONDS * 2)
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.PERMISSION_DENIED:
                    # declared lost: its trial went to another worker, so this one must not report
                    os.write(2, f"error: {error.details()}\n".encode())
                    os._exit(1)
                # the chief not answering is the main loop's to report, after its own bounded wait

    def run(self, build_tuner, fit_args, fit_kwargs):
        """Build the tuner as a Keras Tuner worker and run its trial loop until the chief says stop."""
        from keras_tuner.src import protos
        from keras_tuner.src.distribute import oracle_client

        os.environ.update({"KERASTUNER_TUNER_ID": self.worker_id, "KERASTUNER_ORACLE_IP": self.host,
                           "KERASTUNER_ORACLE_PORT": str(self.port)})
        oracle_client.TIMEOUT = self.chief_timeout  # Keras Tuner waits an hour by default
        _quiet_keras_tuner()
        tuner = build_tuner()
        channel = grpc.intercept_channel(grpc.insecure_channel(self.address, options=CHANNEL_OPTIONS),
                                         _Identify(self.identity))
        tuner.oracle.stub = protos.get_service_grpc().OracleStub(channel)
        try:
            tuner.search(*fit_args, **fit_kwargs)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.PERMISSION_DENIED:
                raise JobFailed(f"the chief refused this worker: {error.details()}") from None
            if error.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE):
                raise JobFailed(f"the chief at {self.address} did not answer within "
                                f"{self.chief_timeout:.0f} s") from None
            raise JobFailed(f"the chief at {self.address} failed: {error.details()}") from None
        finally:
            self._stop.set()
        return tuner


def exit_with_parent():
    """A local worker ends when the `zoo tune --workers` process that started it does (SIGKILL
    included): Linux's parent-death signal."""
    parent = os.environ.get("ZOO_PARENT_PID")
    if not parent:
        return
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != int(parent):  # it died before the signal was armed
        sys.exit(1)


def set_threads(threads=None):
    """TensorFlow's thread pools for a worker process: `threads` (default every core) for ops."""
    import tensorflow as tf

    threads = int(threads or default_threads())
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
