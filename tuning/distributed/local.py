"""Local worker processes for `zoo tune --workers N`: started on loopback, watched, ended."""

import os
import subprocess

from tuning.distributed.addresses import default_threads
from tuning.processes import terminate


class LocalWorkers:
    """`count` worker processes on this machine. `command` (worker id, chief port, TF threads) →
    the command line of one; `env`, what is added to their environment."""

    def __init__(self, count, command, *, verbose=False, env=None):
        self.count = count
        self.env = dict(env or {})  # added to the processes' environment (the cluster token)
        self.command = command
        self.verbose = verbose
        self.processes = {}  # worker id -> Popen

    def start(self, port):
        """Start the processes, joining the chief at loopback `port`, each with a fair share of
        the cores."""
        if not self.count:
            return
        threads = max(1, default_threads() // self.count)
        env = {**os.environ, **self.env, "ZOO_PARENT_PID": str(os.getpid())}
        for index in range(self.count):
            worker_id = f"w{index}"
            command = self.command(worker_id, port, threads)
            # a session of their own: Ctrl-C reaches the chief, which stops them in order
            process = subprocess.Popen(command, env=env, start_new_session=True,
                                       stdout=subprocess.DEVNULL if not self.verbose else None)
            self.processes[worker_id] = process
            print(f"started worker {worker_id} (pid {process.pid}, {threads} TF thread(s))", flush=True)

    def exited(self):
        """(worker id, exit code) of each process that has exited since the last call."""
        ended = [(worker_id, process) for worker_id, process in self.processes.items()
                 if process.poll() is not None]
        for worker_id, _ in ended:
            del self.processes[worker_id]
        return [(worker_id, process.returncode) for worker_id, process in ended]

    def stop(self, grace=10.0):
        """End the processes: wait `grace` seconds, then SIGTERM, then SIGKILL."""
        processes = list(self.processes.values())
        self.processes = {}
        terminate(processes, grace=grace)
