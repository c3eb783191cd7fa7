"""Per-trial checkpoints: the last completed epoch of a running trial (epoch-level resume), and a
finished Hyperband trial's weights while a later round may start from them (weight hand-over).

Epoch-level resume is Keras's own `BackupAndRestore` callback (weights, optimizer state and the
epoch, written at every epoch end with a second copy so a kill mid-write loses nothing); this
module adds the history of the epochs before a kill, which the trial's score needs.

Disk is bounded: a trial's backup is replaced every epoch and removed when its fit ends, so there
is one per running trial; a Hyperband trial's final weights are removed once a later round has
started from them or its bracket is over, so there are at most as many as trials in the
brackets in progress.
"""

import json
import os

import keras

BACKUP = "backup"  # Keras's BackupAndRestore folder inside the trial's folder
HISTORY = "history.json"
FINAL_WEIGHTS = "final.weights.h5"


def backup_callback(folder):
    return keras.callbacks.BackupAndRestore(os.path.join(folder, BACKUP), save_freq="epoch",
                                            double_checkpoint=True, delete_checkpoint=True)


def resumable_epoch(folder):
    """The epoch a killed trial's fit resumes at (its last completed one + 1), or None."""
    path = os.path.join(folder, BACKUP, "training_metadata.json")
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return int(json.load(handle)["epoch"])


class EpochHistory(keras.callbacks.Callback):
    """Keeps the per-epoch logs in the trial's folder, so a resumed fit still scores every epoch."""

    def __init__(self, folder, resumed_at=None):
        super().__init__()
        self.path = os.path.join(folder, HISTORY)
        self.history = {}
        if resumed_at and os.path.exists(self.path):
            with open(self.path) as handle:
                saved = json.load(handle)
            self.history = {k: v[:resumed_at] for k, v in saved.items()}
        self.before = {k: list(v) for k, v in self.history.items()}

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        tmp = self.path + ".tmp"
        with open(tmp, "w") as handle:
            json.dump(self.history, handle)
        os.replace(tmp, self.path)

    def merged(self, history):
        """This fit's Keras history with the epochs before the resume in front."""
        keys = set(self.before) | set(history.history)
        history.history = {k: self.before.get(k, []) + list(history.history.get(k, [])) for k in keys}
        return history


def clear(folder):
    path = os.path.join(folder, HISTORY)
    if os.path.exists(path):
        os.remove(path)


def save_final_weights(folder, model):
    tmp = os.path.join(folder, "tmp." + FINAL_WEIGHTS)
    model.save_weights(tmp)
    os.replace(tmp, os.path.join(folder, FINAL_WEIGHTS))


def final_weights(folder):
    path = os.path.join(folder, FINAL_WEIGHTS)
    return path if os.path.exists(path) else None


def drop_final_weights(folder):
    path = os.path.join(folder, FINAL_WEIGHTS)
    if os.path.exists(path):
        os.remove(path)
