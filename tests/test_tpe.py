"""`algorithm: tpe`: Optuna's TPE sampler as a Keras Tuner oracle, on a toy objective (no training):
it beats its own random start, asks conditional hyperparameters only when active, and a reloaded
oracle goes on with what it had learnt."""

import keras_tuner as kt
import numpy as np
import pytest

from tuning.tpe import N_STARTUP_TRIALS, TPEOracle

TRIALS = 40


def space():
    hp = kt.HyperParameters()
    hp.Float("x", -10.0, 10.0)
    hp.Float("y", -10.0, 10.0)
    hp.Float("rate", 1e-4, 1.0, sampling="log")
    hp.Choice("kind", ["a", "b"])
    with hp.conditional_scope("kind", ["b"]):
        hp.Int("z", 1, 9)
    return hp


def loss(v):  # best at x=3, y=-1, rate=1e-2, kind=b, z=5
    return ((v["x"] - 3) ** 2 + (v["y"] + 1) ** 2 + 4 * np.log10(v["rate"] / 1e-2) ** 2
            + (0 if v["kind"] == "b" else 20) + (v.get("z", 5) - 5) ** 2)


def oracle_in(folder, seed):
    oracle = TPEOracle(objective=kt.Objective("loss", "min"), max_trials=TRIALS, hyperparameters=space(),
                       seed=seed)
    oracle.verbose = 0
    oracle._set_project_dir(str(folder), "toy")
    return oracle


def run(oracle, count):
    losses = []
    for _ in range(count):
        trial = oracle.create_trial("tuner0")
        values = trial.hyperparameters.values
        assert ("z" in values) == (values["kind"] == "b")  # the conditional one only when active
        losses.append(loss(values))
        oracle.update_trial(trial.trial_id, {"loss": losses[-1]})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    return losses


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tpe_beats_its_own_random_start_on_a_toy_objective(seed, tmp_path):
    losses = run(oracle_in(tmp_path, seed), TRIALS)
    random_start, guided = losses[:N_STARTUP_TRIALS], losses[N_STARTUP_TRIALS:]
    print(f"seed {seed}: random start mean {np.mean(random_start):.1f} best {min(random_start):.2f}; "
          f"TPE mean {np.mean(guided):.1f} best {min(guided):.2f}")
    # sampling as at random would leave both where they were (the same distribution)
    assert np.mean(guided) < 0.75 * np.mean(random_start)
    assert np.median(guided) < 0.75 * np.median(random_start)


def test_a_reloaded_tpe_oracle_rebuilds_its_study_and_goes_on(tmp_path):
    first = oracle_in(tmp_path, 0)
    before = run(first, 15)
    first.save()
    again = oracle_in(tmp_path, 0)
    again.reload()
    study = again.study()
    assert len(study.trials) == 15
    assert sorted(t.value for t in study.trials) == pytest.approx(sorted(before))
    after = run(again, TRIALS - 15)
    assert len(again.study().trials) == TRIALS
    assert min(after) < min(before[:N_STARTUP_TRIALS])  # TPE from the first trial after the reload


def test_tpe_never_hands_out_a_configuration_twice_in_a_small_space(tmp_path):
    hp = kt.HyperParameters()
    hp.Choice("a", [1, 2, 3])
    hp.Choice("b", ["x", "y"])
    oracle = TPEOracle(objective=kt.Objective("loss", "min"), max_trials=10, hyperparameters=hp, seed=0)
    oracle.verbose = 0
    oracle._set_project_dir(str(tmp_path), "small")
    seen = []
    for _ in range(6):  # every one of the 6 points, each once
        trial = oracle.create_trial("tuner0")
        assert trial.status == "RUNNING"
        seen.append((trial.hyperparameters.values["a"], trial.hyperparameters.values["b"]))
        oracle.update_trial(trial.trial_id, {"loss": float(seen[-1][0])})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    assert sorted(seen) == sorted((a, b) for a in (1, 2, 3) for b in ("x", "y"))
    assert oracle.create_trial("tuner0").status == "STOPPED"  # the space is exhausted
