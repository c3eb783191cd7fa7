"""Every use of Keras Tuner's private modules (`keras_tuner.src...`) and private oracle attributes,
as named functions, so that a Keras Tuner upgrade is checked in one place.

Checked on Keras Tuner 1.4.7 and 1.4.8 (the same layout: `keras_tuner/src/...` in the wheel). Each
function imports Keras Tuner when called: importing this module costs nothing, so a worker can
join its chief before TensorFlow is imported.
"""

import contextlib
import threading


def atomic_state_files():
    """Keras Tuner writes its state files (`oracle.json`, each `trial.json`, the tuner's own) by
    truncating the file and then writing it (`utils.save_json`): a process killed in between leaves
    an empty file, and the next run of the same search fails to reload it (a JSONDecodeError). Make
    that function write a local file atomically (`zoo._json.write_text_atomic`: a temp file renamed
    over it); a remote path (`gs://...`) is written as before. Safe to call more than once."""
    import json

    from keras_tuner.src import utils

    from zoo._json import write_text_atomic

    if getattr(utils.save_json, "atomic", False):
        return
    stock = utils.save_json

    def save_json(path, obj):
        if "://" in str(path):
            return stock(path, obj)
        text = json.dumps(obj)
        # no fsync: the state is rewritten at every trial update; what it guards against is a
        # killed process, which the rename alone covers
        write_text_atomic(path, text, sync=False)
        return text

    save_json.atomic = True
    utils.save_json = save_json


def get_service():
    """Keras Tuner's protobuf messages module (`CreateTrialResponse`, `EndTrialResponse`, ...)."""
    from keras_tuner.src import protos

    return protos.get_service()


def get_service_grpc():
    """Keras Tuner's gRPC module (`OracleStub`, `add_OracleServicer_to_server`)."""
    from keras_tuner.src import protos

    return protos.get_service_grpc()


def oracle_servicer(oracle):
    """Keras Tuner's own gRPC servicer of `oracle`, as its chief serves it."""
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    return OracleServicer(oracle)


def set_client_timeout(seconds):
    """How long a Keras Tuner worker waits for each answer of the chief (an hour by default)."""
    from keras_tuner.src.distribute import oracle_client

    oracle_client.TIMEOUT = seconds


def quiet_conditions():
    """Keras Tuner's `Parent.to_proto` prints each conditional value it serializes, that is on
    every gRPC call: shadow `print` in that one module."""
    from keras_tuner.src.engine import conditions

    conditions.print = lambda *args, **kwargs: None


@contextlib.contextmanager
def holding(oracle):
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


def ongoing(oracle):
    """The oracle's running trials, tuner id -> `Trial` (its own dict: changes are the oracle's)."""
    return oracle.ongoing_trials


def requeue(oracle, trial_id):
    """Put a trial back in the oracle's retry queue: the next `create_trial` hands it out again."""
    oracle._retry_queue.append(trial_id)


def unqueue(oracle, trial_id):
    """Take a trial out of the retry queue; False when it was not there."""
    if trial_id not in oracle._retry_queue:
        return False
    oracle._retry_queue.remove(trial_id)
    return True


def retry_only_unended(oracle):
    """Keep in the retry queue only the trials that have not ended (not in `end_order`)."""
    ended = set(oracle.end_order)
    oracle._retry_queue = [trial_id for trial_id in oracle._retry_queue if trial_id not in ended]


def add_tuner(oracle, tuner_id):
    """Count `tuner_id` among the oracle's live tuners (Keras Tuner's chief ends when none is left
    and no trial runs)."""
    oracle.tuner_ids.add(tuner_id)


def drop_tuner(oracle, tuner_id):
    """No longer count `tuner_id` among the oracle's live tuners."""
    oracle.tuner_ids.discard(tuner_id)


def grid_order(oracle):
    """A `GridSearchOracle`'s in-memory bookkeeping, which its `get_state` leaves out: the trial ids
    in the order of their values (a linked list) and the ids whose next combination is pending."""
    links, ordered = oracle._ordered_ids, []
    index = 0 if links._memory else None  # the first trial (all defaults) heads the list
    while index is not None:
        ordered.append(links._memory[index])
        index = links._next_index[index]
    return {"ordered_ids": ordered, "populate_next": list(oracle._populate_next)}


def restore_grid_order(oracle, order):
    """Rebuild what `grid_order` saved, so a reloaded grid search goes on where it stopped."""
    from keras_tuner.src.tuners.gridsearch import LinkedList

    links = LinkedList()
    for trial_id in order["ordered_ids"]:
        links.insert(trial_id)
    oracle._ordered_ids = links
    oracle._populate_next = list(order["populate_next"])


def hyperband_live_trials(oracle):
    """The trial ids in a Hyperband oracle's brackets still in progress (whose best trials a
    later round may take on), or None for an oracle that is not a local Hyperband one."""
    brackets = getattr(oracle, "_brackets", None)
    if brackets is None:
        return None
    return {info["id"] for bracket in brackets for round_info in bracket["rounds"] for info in round_info}
