"""Ending child processes: the one SIGTERM-then-SIGKILL escalation every supervisor here uses."""

import contextlib
import os
import signal
import subprocess
import time


def terminate(processes, *, grace=0.0, term_wait=5.0, kill_wait=5.0, group=False):
    """End `processes` (Popen objects): wait `grace` seconds for them to leave on their own, then
    SIGTERM, wait `term_wait`, then SIGKILL. With `group`, each signal goes to the process group
    the process leads (started with `start_new_session=True`), so its own children end too."""
    processes = list(processes)
    for sig, wait in ((None, grace), (signal.SIGTERM, term_wait), (signal.SIGKILL, kill_wait)):
        alive = [p for p in processes if _alive(p, group)]
        if not alive:
            return
        for process in alive:
            if sig is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig) if group else process.send_signal(sig)
        deadline = time.monotonic() + wait
        for process in alive:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.0, deadline - time.monotonic()))


def _alive(process, group):
    if process.poll() is None:
        return True
    if not group:
        return False
    try:  # the leader is gone; members of its group may linger a moment
        os.killpg(process.pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
