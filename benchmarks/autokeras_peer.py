"""Figure 8: AutoKeras (its Keras 3 release) as a peer on digits at the same wall budget.

AutoKeras goes in its own virtualenv, created by this script under `benchmarks/.venv-autokeras`:
it sees the project's TensorFlow/Keras/Keras Tuner through a `.pth` file (so nothing heavy is
downloaded twice) but its own packages stay out of the project's environment. Its
`ImageClassifier` searches with its default (greedy) tuner; no new trial starts after the
budget, as ours does; its final refit of the best counts in its wall time. Ours is the default
`zoo run` search (examples/digits.yaml) with the same budget, run in alternation.

    python benchmarks/autokeras_peer.py [--quick] [--json PATH]
"""

import json
import os
import subprocess
import sys
import sysconfig
import tempfile

import _common
from _common import figure

COMMAND = "python benchmarks/autokeras_peer.py"
HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(HERE, ".venv-autokeras")
AUTOKERAS = "autokeras==3.0.0"

CHILD = r'''
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.environ["PYTHONPATH"], "benchmarks"))
budget, epochs, work, out = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
max_trials = int(sys.argv[5])
started = time.perf_counter()
import numpy as np
import autokeras as ak
import keras
from autokeras_peer import cast_dense_units
from search_quality import budgeted
from zoo.data import load_dataset
cast_dense_units()
data = load_dataset("digits", shape="image", seed=0)
keras.utils.set_random_seed(0)
clf = ak.ImageClassifier(max_trials=max_trials, overwrite=True, seed=0, directory=work, project_name="ak")
oracle = clf.tuner.oracle
t0 = time.monotonic()
budgeted(oracle, budget, t0)  # no new trial after the budget (at least one), as ours
clf.fit(data.X_train, data.y_train, validation_data=(data.X_val, data.y_val), epochs=epochs, verbose=0)
predicted = np.asarray(clf.predict(data.X_test, verbose=0)).reshape(-1).astype("int64")
accuracy = float(np.mean(predicted == data.y_test))
trials = sum(t.status == "COMPLETED" for t in oracle.trials.values())
json.dump({"accuracy": accuracy, "wall_with_import": time.perf_counter() - started,
           "wall": time.monotonic() - t0, "trials": trials, "autokeras": ak.__version__}, open(out, "w"))
'''


def cast_dense_units():
    """AutoKeras 3.0.0 hands Dense a numpy int64 `units` (its head reads the label shape), which
    Keras 3.15 refuses: cast it to int, nothing else changed. Called in AutoKeras's children."""
    import keras

    init = keras.layers.Dense.__init__

    def cast(self, units, *args, **kwargs):
        init(self, int(units), *args, **kwargs)

    keras.layers.Dense.__init__ = cast


def sizes(quick):
    if quick:
        return {"budget": 10, "epochs": 1, "our_max_epochs": 1, "our_max_trials": 1, "ak_max_trials": 1}
    return {"budget": 60, "epochs": 20, "our_max_epochs": None, "our_max_trials": None,
            "ak_max_trials": 1000}


def venv_python():
    return os.path.join(VENV, "bin", "python")


def ensure_venv():
    """Create the AutoKeras virtualenv if needed; returns (ok, log of what failed)."""
    python = venv_python()
    if os.path.exists(python) and _installed(python):
        return True, ""
    made = subprocess.run([sys.executable, "-m", "venv", VENV], capture_output=True, text=True)
    if made.returncode != 0:
        return False, f"python -m venv failed: {made.stderr.strip()[-800:]}"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True).stdout.strip()
    with open(os.path.join(purelib, "keras_zoo_base.pth"), "w") as handle:
        handle.write(sysconfig.get_paths()["purelib"] + "\n")  # the project's TF/Keras/KT
    installed = subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                                AUTOKERAS, "dm-tree"], capture_output=True, text=True)
    if installed.returncode != 0:
        return False, f"pip install {AUTOKERAS} failed: {installed.stderr.strip()[-800:]}"
    if not _installed(python):
        return False, f"pip install {AUTOKERAS} left no {AUTOKERAS} in {VENV}"
    return True, ""


def _installed(python):
    """Whether `python` has AutoKeras at our pinned version, read from its metadata: `import
    autokeras` would start TensorFlow (seconds); an install that cannot import fails its search,
    and the figure says so."""
    check = subprocess.run([python, "-c", "import importlib.metadata as m; "
                            f"assert m.version('autokeras') == {AUTOKERAS.split('==')[1]!r}"],
                           capture_output=True, text=True)
    return check.returncode == 0


def autokeras_run(budget, epochs, work, max_trials):
    out = os.path.join(work, "autokeras.json")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=_common.ROOT)
    done = subprocess.run([venv_python(), "-c", CHILD, str(budget), str(epochs),
                           os.path.join(work, "ak"), out, str(max_trials)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip()[-1500:])
    with open(out) as handle:
        return json.load(handle)


def run(quick=False):
    from search_quality import ours

    size = sizes(quick)
    ok, why = ensure_venv()
    if not ok:
        return figure(8, "Peer: AutoKeras on digits at the same wall budget", metric="accuracy difference",
                      value=None, target="ours >= AutoKeras", passed=None, status="unavailable",
                      notes=[f"AutoKeras could not be installed here: {why}"], command=COMMAND)
    with tempfile.TemporaryDirectory(prefix="bench-autokeras-") as work:
        from mlflow import MlflowClient

        uri = f"sqlite:///{os.path.join(work, 'mlflow.db')}"
        MlflowClient(uri).create_experiment("bench-quality")
        try:
            peer = autokeras_run(size["budget"], size["epochs"], work, size["ak_max_trials"])
        except RuntimeError as error:
            return figure(8, "Peer: AutoKeras on digits at the same wall budget",
                          metric="accuracy difference", value=None, target="ours >= AutoKeras",
                          passed=None, status="unavailable",
                          notes=[f"AutoKeras installed but its search failed here: "
                                 f"{str(error).splitlines()[-1][:600]}"],
                          command=COMMAND, details={"error": str(error)[-3000:]})
        mine = ours(size["budget"], os.path.join(work, "ours"), uri, size["our_max_epochs"],
                    size["our_max_trials"])
    difference = mine["accuracy"] - peer["accuracy"]
    table = [["method", "test accuracy", "wall s (search + refit)", "trials"],
             ["ours (zoo run digits.yaml)", f"{mine['accuracy']:.4f}", f"{mine['wall']:.0f}",
              str(mine["trials"])],
             [f"AutoKeras {peer['autokeras']} ImageClassifier", f"{peer['accuracy']:.4f}",
              f"{peer['wall']:.0f}", str(peer["trials"])]]
    return figure(8, "Peer: AutoKeras on digits at the same wall budget",
                  metric="ours - AutoKeras test accuracy", value=round(difference, 4),
                  target="ours >= AutoKeras", passed=difference >= 0, table=table,
                  details={"ours": mine, "autokeras": peer, "budget_s": size["budget"]},
                  notes=["AutoKeras 3.0.0 passes a numpy int64 `units` to Dense, which Keras 3.15 "
                         "refuses; the child casts it to int (a one-line shim, nothing else changed)",
                         f"budget {size['budget']} s for each (no new trial after it); "
                         f"AutoKeras epochs={size['epochs']} per trial, in {os.path.relpath(VENV, _common.ROOT)}"],
                  command=COMMAND)


if __name__ == "__main__":
    _common.run_script(run)
