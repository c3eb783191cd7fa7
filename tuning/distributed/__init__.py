"""Distributed search in Keras Tuner's own chief/worker mode: the chief serves the oracle over gRPC
(Keras Tuner's `OracleServicer`, protos and `KERASTUNER_*` variables) and owns the MLflow parent
run; workers pull trials and log their nested runs to the same tracking server.

What this package adds to Keras Tuner's mode: a `Hello` call on the same gRPC server with which a
worker joins (config hash and worker id checked) and keeps its lease; a worker that stops answering
has its trial re-queued once, then failed, instead of leaving the chief waiting forever; a shared
cluster token checked in front of every method, and optional TLS; and `Chief` with
`local_workers` for `zoo tune --workers N` on one machine.

One module per job: `addresses` (addresses, ids, timeouts, threads), `auth` (the token and TLS),
`book` (the chief's book of workers and leases), `service` (the gRPC service), `chief`, `worker`,
`local` (local worker processes). Keras Tuner's private modules are reached only through `tuning._kt_compat`.
"""

import os

os.environ.setdefault("GRPC_VERBOSITY", "NONE")  # a failed bind is reported by us, in one line

from tuning.distributed.addresses import (
    CHANNEL_OPTIONS,
    CHIEF_TIMEOUT,
    HEARTBEAT_SECONDS,
    LOCAL_CHIEF_TIMEOUT,
    MAX_REQUEUES,
    TAKEOVER_SECONDS,
    WORKER_ID,
    WORKER_TIMEOUT,
    check_worker_id,
    default_threads,
    is_loopback,
    parse_address,
    set_threads,
)
from tuning.distributed.auth import (
    TOKEN_ENV,
    Credentials,
    generate_token,
    read_certificates,
    read_trusted,
    resolve_token,
)
from tuning.distributed.book import Refused
from tuning.distributed.chief import Chief
from tuning.distributed.service import METADATA, SERVICE
from tuning.distributed.worker import WorkerLink, exit_with_parent

__all__ = [
    "CHANNEL_OPTIONS", "CHIEF_TIMEOUT", "HEARTBEAT_SECONDS", "LOCAL_CHIEF_TIMEOUT", "MAX_REQUEUES",
    "METADATA", "SERVICE", "TAKEOVER_SECONDS", "TOKEN_ENV", "WORKER_ID", "WORKER_TIMEOUT", "Chief",
    "Credentials", "Refused", "WorkerLink", "check_worker_id", "default_threads", "exit_with_parent",
    "generate_token", "is_loopback", "parse_address", "read_certificates", "read_trusted",
    "resolve_token", "set_threads",
]
