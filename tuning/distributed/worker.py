"""A worker's side: joining the chief, the lease (heartbeat), and Keras Tuner's client wired to it."""

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

    def _beat(self):
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self._hello(self.identity, timeout=HEARTBEAT_SECONDS * 2)
            except grpc.RpcError as error:
                if error.code() in REFUSED:
                    # declared lost (or a restarted chief with another token): its trial went to another worker, so this one must not report
                    _exit_at_once(f"error: {error.details()}\n")
                # the chief not answering is the main loop's to report, after its own bounded wait

    def run(self, build_tuner, fit_args, fit_kwargs):
        """Build the tuner as a Keras Tuner worker and run its trial loop until the chief says stop."""
        os.environ.update({"KERASTUNER_TUNER_ID": self.worker_id, "KERASTUNER_ORACLE_IP": self.host,
                           "KERASTUNER_ORACLE_PORT": str(self.port)})
        kt_compat.set_client_timeout(self.chief_timeout)  # Keras Tuner waits an hour by default
        kt_compat.quiet_conditions()
        tuner = build_tuner()
        tuner.oracle.stub = kt_compat.get_service_grpc().OracleStub(self._channel())
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
