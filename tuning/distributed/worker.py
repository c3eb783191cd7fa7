"""A worker's side: joining the chief, the lease (heartbeat), Keras Tuner's client wired to it, and
a local worker's retirement (after its trial quota, or above its memory bound)."""

import array
import collections
import contextlib
import json
import os
import platform
import signal
import stat
import sys
import threading
import time
import uuid

import grpc

from tuning import _kt_compat as kt_compat
from tuning.distributed.addresses import (
    CHANNEL_OPTIONS,
    CHIEF_TIMEOUT,
    HEARTBEAT_SECONDS,
    parse_address,
)
from tuning.distributed.auth import Credentials
from tuning.distributed.service import SERVICE, encode, metadata_for
from zoo.errors import InvalidParameterError, JobFailed

REFUSED = (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)


class _CallDetails(collections.namedtuple("_CallDetails", ("method", "timeout", "metadata", "credentials",
                                                           "wait_for_ready", "compression")),
                   grpc.ClientCallDetails):
    pass


class _Identify(grpc.UnaryUnaryClientInterceptor):
    """Adds the worker's identity and the cluster token to every call, so the chief can admit or
    refuse it."""

    def __init__(self, identity, credentials):
        self.metadata = metadata_for(identity) + credentials.metadata()

    def intercept_unary_unary(self, continuation, details, request):
        details = _CallDetails(details.method, details.timeout,
                               list(details.metadata or []) + self.metadata, details.credentials,
                               details.wait_for_ready, details.compression)
        return continuation(details, request)


class WorkerLink:
    """A worker's connection to the chief: joining, the lease (heartbeat), and the Keras Tuner
    client set up with the worker's identity and a bounded wait."""

    def __init__(self, chief, worker_id, *, fingerprint, credentials=None, chief_timeout=CHIEF_TIMEOUT):
        self.host, self.port = parse_address(chief, "--chief")
        self.credentials = credentials or Credentials()
        self.address = f"{self.host}:{self.port}"
        self.worker_id = worker_id
        self.chief_timeout = float(chief_timeout)
        self.identity = {"worker_id": worker_id, "session": uuid.uuid4().hex,
                         "fingerprint": fingerprint, "host": platform.node(), "pid": os.getpid()}
        self.channel = self._channel()
        self._hello = self.channel.unary_unary(f"/{SERVICE}/Hello", request_serializer=encode,
                                               response_deserializer=json.loads)
        self.info = {}
        self.directory = None
        self._stop = threading.Event()

    def _channel(self):
        return grpc.intercept_channel(self.credentials.channel(self.address, CHANNEL_OPTIONS),
                                      _Identify(self.identity, self.credentials))

    def join(self):
        """Hello to the chief, waiting at most `chief_timeout` for it to answer."""
        try:
            self.info = self._hello(self.identity, timeout=self.chief_timeout, wait_for_ready=True)
        except grpc.RpcError as error:
            if error.code() in REFUSED:
                raise InvalidParameterError(f"the chief refused this worker: {error.details()}") from None
            tls = ("this worker verifies the chief's TLS certificate with --tls-ca: does the chief "
                   "use TLS, with a certificate for this address?" if self.credentials.trusted else
                   "a TLS chief needs --tls-ca")
            raise InvalidParameterError(
                f"`--chief` {self.address} did not answer within {self.chief_timeout:.0f} s "
                f"(is the chief running and reachable? {tls}). Received: --chief={self.address}") from None
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

    def leave(self, reason):
        """Tell the chief this worker leaves between trials (`reason`), for a fresh process to
        take its place; its lease ends."""
        self._stop.set()
        self._hello({**self.identity, "leaving": reason}, timeout=self.chief_timeout)

    def _beat(self):
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self._hello(self.identity, timeout=HEARTBEAT_SECONDS * 2)
            except grpc.RpcError as error:
                if error.code() in REFUSED:
                    # declared lost (or a restarted chief with another token): its trial went to another worker, so this one must not report
                    _exit_at_once(f"error: {error.details()}\n")
                # the chief not answering is the main loop's to report, after its own bounded wait

    def run(self, build_tuner, fit_args, fit_kwargs, retirement=None):
        """Build the tuner as a Keras Tuner worker and run its trial loop until the chief says stop
        (or, with a `Retirement`, until this process has done its share)."""
        os.environ.update({"KERASTUNER_TUNER_ID": self.worker_id, "KERASTUNER_ORACLE_IP": self.host,
                           "KERASTUNER_ORACLE_PORT": str(self.port)})
        kt_compat.set_client_timeout(self.chief_timeout)  # Keras Tuner waits an hour by default
        kt_compat.quiet_conditions()
        tuner = build_tuner()
        tuner.oracle.stub = kt_compat.get_service_grpc().OracleStub(self._channel())
        if retirement is not None:
            retirement.watch(tuner.oracle, self)
        try:
            tuner.search(*fit_args, **fit_kwargs)
        except grpc.RpcError as error:
            if error.code() in REFUSED:
                raise JobFailed(f"the chief refused this worker: {error.details()}") from None
            if error.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE):
                raise JobFailed(f"the chief at {self.address} did not answer within "
                                f"{self.chief_timeout:.0f} s") from None
            raise JobFailed(f"the chief at {self.address} failed: {error.details()}") from None
        finally:
            self._stop.set()
        return tuner


class Retirement:
    """When a local worker leaves for a fresh process: after `trials` trials, or once its resident
    memory passes `memory_mb` after a trial (None: no bound). TensorFlow keeps every traced function
    of a process (about 10 MB a trial of a small search); only a fresh process frees them."""

    def __init__(self, trials=None, memory_mb=None):
        self.trials, self.memory_mb = trials, memory_mb
        self.done = 0

    def reason(self):
        """Why this worker should leave now, or None."""
        if self.trials and self.done >= self.trials:
            return f"{self.done} trials done, search.trials_per_worker"
        if self.memory_mb and self.done:
            resident = resident_mb()
            if resident > self.memory_mb:
                return f"{resident:.0f} MB resident > search.worker_memory_mb {self.memory_mb}"
        return None

    def watch(self, oracle, link):
        """Ask `reason` before each trial the worker's oracle client would ask the chief for; a
        worker that should leave tells the chief and ends its trial loop instead."""
        from keras_tuner import HyperParameters
        from keras_tuner.engine.trial import Trial, TrialStatus

        ask = oracle.create_trial

        def create_trial(tuner_id):
            reason = self.reason()
            if reason:
                link.leave(reason)
                return Trial(HyperParameters(), status=TrialStatus.STOPPED)
            trial = ask(tuner_id)
            self.done += trial.status == TrialStatus.RUNNING
            return trial

        oracle.create_trial = create_trial


def resident_mb():
    """This process's resident memory in MB (Linux's /proc; the peak elsewhere)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _exit_at_once(line):
    """Write `line` to stderr, then leave with `os._exit` (no clean-up, no report). Under the
    CLI, fd 2 is a pipe that a thread of this process forwards to the real stderr (dropping
    TensorFlow's log lines), and `os._exit` would lose the line in it: first wait, at most a
    second, until that pipe has been read."""
    os.write(2, line.encode())
    with contextlib.suppress(OSError, ImportError):
        import fcntl
        import termios

        if stat.S_ISFIFO(os.fstat(2).st_mode):
            unread = array.array("i", [0])
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                fcntl.ioctl(2, termios.FIONREAD, unread)
                if not unread[0]:
                    break
                time.sleep(0.01)
            time.sleep(0.05)  # read, and now being written on
    os._exit(1)


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
