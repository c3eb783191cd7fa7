"""Local worker processes of a search (`search.parallel`, `zoo tune --workers N`): started on
loopback, each with its share of the cores and, where there are GPUs, one of them; watched, replaced
when one retires or dies, ended with the search.

A local worker (`tuning.distributed.spawned`) reads the search from its stdin: one JSON line (its
id, the chief's port, its threads and retirement bounds), then the pickled data, options and
hypermodel. Nothing of it is written to disk."""

import json
import os
import shutil
import subprocess
import sys
import threading

from tuning.distributed.addresses import default_threads
from tuning.processes import terminate

SPAWNED = "tuning.distributed.spawned"
# a local worker's exit code after a trial raised Keras Tuner's FatalError: the search stops, as
# it does when its trials run in this process
FATAL_EXIT = 3


def visible_gpus():
    """The GPU ids this process may hand to its workers: `CUDA_VISIBLE_DEVICES` when set, else
    the NVIDIA driver's list (no TensorFlow import, no CUDA context)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [gpu.strip() for gpu in listed.split(",") if gpu.strip() and gpu.strip() != "-1"]
    try:
        return [str(index) for index in range(len(os.listdir("/proc/driver/nvidia/gpus")))]
    except OSError:
        pass
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], check=False, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(index) for index, line in enumerate(l for l in listing.splitlines() if l.startswith("GPU "))]


class LocalWorkers:
    """`count` worker processes on this machine, in `count` slots: a slot's process that leaves
    (retired after its trials, or dead) is replaced by a fresh one with a new id (w0, w1, ... in
    start order). `env` is added to their environment (the cluster token); `retire` holds the
    bounds a worker retires at (`trials`, `memory_mb`)."""

    def __init__(self, count, *, verbose=False, env=None, retire=None, announce=print):
        self.count = count
        self.env = dict(env or {})
        self.verbose = verbose
        self.retire = dict(retire or {})
        self.announce = announce
        self.gpus = visible_gpus() if count else []
        self.threads = max(1, default_threads() // count) if count else 0
        self.processes = {}  # worker id -> Popen
        self.slots = {}  # worker id -> slot index
        self.next_id = 0
        self.port = self.payload = self.fingerprint = None

    @property
    def started(self):
        return self.payload is not None

    def start(self, port, payload, fingerprint):
        """Start one process per slot, joining the chief at loopback `port`; `payload` is the
        pickled search they run."""
        self.port, self.payload, self.fingerprint = port, payload, fingerprint
        for slot in range(self.count):
            self._start(slot)

    def replace(self, worker_id):
        """Start a fresh process in the slot `worker_id` held (which has left, or is leaving)."""
        slot = self.slots.pop(worker_id, None)
        if slot is not None and self.started:
            self._start(slot)

    def _start(self, slot):
        worker_id = f"w{self.next_id}"
        self.next_id += 1
        env = {**os.environ, **self.env, "ZOO_PARENT_PID": str(os.getpid()),
               # what the pickled search refers to by name (a test module, a user's module)
               "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
        gpu = ""
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = self.gpus[slot % len(self.gpus)]
            env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"  # workers sharing a GPU each take what they use
            gpu = f", GPU {env['CUDA_VISIBLE_DEVICES']}"
        header = {"chief": f"127.0.0.1:{self.port}", "worker_id": worker_id, "threads": self.threads,
                  "fingerprint": self.fingerprint, "verbose": self.verbose, **self.retire}
        # a session of its own: Ctrl-C reaches the chief, which stops the workers in order
        process = subprocess.Popen([sys.executable, "-m", SPAWNED], env=env, start_new_session=True,
                                   stdin=subprocess.PIPE,
                                   stdout=None if self.verbose else subprocess.DEVNULL)
        threading.Thread(target=_feed, args=(process, json.dumps(header).encode() + b"\n" + self.payload),
                         name=f"zoo-feed-{worker_id}", daemon=True).start()
        self.processes[worker_id] = process
        self.slots[worker_id] = slot
        self.announce(f"started worker {worker_id} (pid {process.pid}, {self.threads} TF thread(s){gpu})",
                      flush=True)
        return worker_id

    def exited(self):
        """(worker id, exit code) of each process that has exited since the last call."""
        ended = [(worker_id, process) for worker_id, process in self.processes.items()
                 if process.poll() is not None]
        for worker_id, _ in ended:
            del self.processes[worker_id]
        return [(worker_id, process.returncode) for worker_id, process in ended]

    def kill(self, worker_id):
        """End one process now (a worker declared lost that may still be running)."""
        process = self.processes.get(worker_id)
        if process is not None:
            terminate([process], term_wait=0.0)

    def stop(self, grace=10.0):
        """End the processes: wait `grace` seconds, then SIGTERM, then SIGKILL."""
        processes = list(self.processes.values())
        self.processes = {}
        self.payload = None  # no replacement after this
        terminate(processes, grace=grace)


def _feed(process, data):
    """Write the search to a worker's stdin (from a thread: a large dataset fills the pipe until the
    worker reads it)."""
    try:
        process.stdin.write(data)
        process.stdin.close()
    except OSError:  # it died before reading: the chief sees it exit
        pass
