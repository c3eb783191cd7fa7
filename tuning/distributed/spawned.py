"""A local worker process of a search (`LocalWorkers` starts it): it reads one JSON line of orders
(its id, the chief's loopback address, its threads, its retirement bounds) and then the pickled
search (data, options, hypermodel) from its stdin, imports TensorFlow while the chief sets up,
joins the chief and runs trials in the search's own folder until it is told to stop or retires.

    python -m tuning.distributed.spawned < orders line + pickled search

The cluster token comes in its environment, as every local worker's does."""

import gc
import json
import logging
import os
import pickle
import sys
import warnings

# the young generation's threshold while the stack imports (as the `zoo` console script does)
IMPORTING_THRESHOLD = 50_000
LOGGERS = ("mlflow", "absl", "tensorflow", "alembic", "keras_tuner")


def main():
    from tuning.distributed.addresses import LOCAL_CHIEF_TIMEOUT, set_threads
    from tuning.distributed.auth import Credentials, resolve_token
    from tuning.distributed.local import FATAL_EXIT
    from tuning.distributed.worker import Retirement, WorkerLink, exit_with_parent
    from zoo.errors import JobFailed, ZooError

    exit_with_parent()
    orders = json.loads(sys.stdin.buffer.readline())
    payload = sys.stdin.buffer.read()
    if not orders.get("verbose"):  # the chief's terminal is for its own lines
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        warnings.simplefilter("ignore")
        for name in LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
    thresholds = gc.get_threshold()
    gc.set_threshold(IMPORTING_THRESHOLD, *thresholds[1:])
    set_threads(orders["threads"])  # before TensorFlow's first op
    data, options, hypermodel = pickle.loads(payload)  # from the parent, over a pipe
    from keras_tuner.errors import FatalError

    from tuning.search import work_trials

    gc.freeze()  # what the imports made lives as long as the process: no collection rescans it
    gc.set_threshold(*thresholds)
    link = WorkerLink(orders["chief"], orders["worker_id"], fingerprint=orders["fingerprint"],
                      credentials=Credentials(token=resolve_token()), chief_timeout=LOCAL_CHIEF_TIMEOUT)
    try:
        link.join()
        work_trials(data, link, options, hypermodel=hypermodel, shared=True,
                    retirement=Retirement(orders.get("trials"), orders.get("memory_mb")))
    except (JobFailed, ZooError) as error:  # the chief gone, or refusing: one line
        print(f"error: worker {orders['worker_id']}: {error}", file=sys.stderr, flush=True)
        return 1
    except FatalError as error:  # a trial's error that stops the search
        print(f"error: {error}", file=sys.stderr, flush=True)
        return FATAL_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
