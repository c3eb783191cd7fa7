"""Addresses, worker ids, timeouts and thread settings of distributed search."""

import ipaddress
import os
import re

from zoo.errors import InvalidParameterError

HEARTBEAT_SECONDS = 2.0
TAKEOVER_SECONDS = 3 * HEARTBEAT_SECONDS  # an id silent this long may be taken by a restarted worker
WORKER_TIMEOUT = 30.0
CHIEF_TIMEOUT = 60.0
# local workers die with their chief (parent-death signal), so they can wait out a slow chief
# start on a loaded machine, where 60 s was seen to run out
LOCAL_CHIEF_TIMEOUT = 300.0
MAX_REQUEUES = 1  # a trial whose worker is lost twice is failed, so a trial that kills workers ends
WORKER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 200), ("grpc.min_reconnect_backoff_ms", 200),
                   ("grpc.max_reconnect_backoff_ms", 1000)]


def parse_address(text, option, *, allow_port_zero=False):
    """`HOST:PORT` → (host, port); refused with the option's name otherwise."""
    host, _, port = str(text).rpartition(":")
    lowest = 0 if allow_port_zero else 1
    if not host or not port.isdigit() or not lowest <= int(port) <= 65535:
        raise InvalidParameterError(
            f"`{option}` must be HOST:PORT with a port in [{lowest}, 65535]. Received: {option}={text}")
    return host, int(port)


def is_loopback(host):
    """Whether `host` (a name or an address, IPv6 with or without brackets) is this machine only."""
    host = str(host).strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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


def set_threads(threads=None):
    """TensorFlow's thread pools for a worker process: `threads` (default every core) for ops."""
    import tensorflow as tf

    threads = int(threads or default_threads())
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
