"""Search algorithms by name: Keras Tuner's oracles plus a regularized-evolution oracle, each with
an optional wall-clock budget."""

import random
import time

import keras_tuner as kt
from keras_tuner.engine import hyperparameters as hp_module
from keras_tuner.engine.trial import TrialStatus

from tuning import _kt_compat as kt_compat
from tuning.deploy import DeploymentAware
from tuning.pruning import Pruning


class EvolutionOracle(kt.Oracle):
    """Regularized (aging) evolution as a Keras Tuner `Oracle` (Real et al., 2019).

    The first `population_size` trials are random. After that each trial samples
    `sample_size` members of the population (the newest `population_size` completed trials, so
    the oldest age out), takes the best of that tournament and mutates one of its
    hyperparameters. Being an `Oracle`, it works in Keras Tuner's distributed mode unchanged.
    """

    def __init__(self, objective=None, max_trials=10, population_size=8, sample_size=3, **kwargs):
        super().__init__(objective=objective, max_trials=max_trials, **kwargs)  # Oracle's own options
        self.population_size = population_size
        self.sample_size = sample_size

    def population(self):
        """The newest `population_size` completed trials with a score (feasible ones only, when
        the search has constraints)."""
        done = [self.trials[t] for t in self.end_order
                if self.trials[t].status == TrialStatus.COMPLETED and self.trials[t].score is not None
                and self.eligible(self.trials[t])]
        return done[-self.population_size:]

    def eligible(self, trial):
        """Whether a completed trial may be a parent (`DeploymentAware`: only feasible ones)."""
        return getattr(self, "is_feasible", lambda _trial: True)(trial)

    def prefers(self, member, parent):
        """Whether a tournament member beats the parent so far: by score, or with several
        objectives by Pareto dominance (the tournament's winner is then non-dominated in it)."""
        deployment = getattr(self, "deployment", None)
        if deployment is not None and deployment.multi:
            return self.dominates(member, parent)
        return self.objective.better_than(member.score, parent.score)

    def populate_space(self, trial_id):
        population = self.population()
        if len(population) < self.population_size:
            values = self._random_values()
        else:
            rng = random.Random(self._seed_state)
            self._seed_state += 1
            tournament = rng.sample(population, min(self.sample_size, len(population)))
            parent = tournament[0]
            for member in tournament[1:]:
                if self.prefers(member, parent):
                    parent = member
            values = self._mutate(parent.hyperparameters.values, rng)
        if values is None:
            return {"status": TrialStatus.STOPPED, "values": None}
        return {"status": TrialStatus.RUNNING, "values": values}

    def _mutate(self, parent_values, rng):
        """Change one active, tunable hyperparameter of the parent; fill newly active ones."""
        for _ in range(self._max_collisions + 1):
            hps = hp_module.HyperParameters()
            active = []
            for hp in self.hyperparameters.space:
                hps.merge([hp])
                if hps.is_active(hp):
                    hps.values[hp.name] = parent_values.get(hp.name, hp.default)
                    if not isinstance(hp, hp_module.Fixed):
                        active.append(hp)
            if not active:
                return None
            target = rng.choice(active)
            values = {}
            hps = hp_module.HyperParameters()
            for hp in self.hyperparameters.space:
                hps.merge([hp])
                if not hps.is_active(hp):
                    continue
                if hp.name == target.name:
                    new = hp.random_sample(self._seed_state)
                    self._seed_state += 1
                    for _retry in range(10):  # a mutation must change the value
                        if new != parent_values.get(hp.name):
                            break
                        new = hp.random_sample(self._seed_state)
                        self._seed_state += 1
                    hps.values[hp.name] = new
                elif hp.name in parent_values:
                    hps.values[hp.name] = parent_values[hp.name]
                else:
                    hps.values[hp.name] = hp.random_sample(self._seed_state)
                    self._seed_state += 1
                values[hp.name] = hps.values[hp.name]
            if not self._duplicate(values):
                return values
        return self._random_values()

    def get_state(self):
        state = super().get_state()
        state.update({"population_size": self.population_size, "sample_size": self.sample_size})
        return state

    def set_state(self, state):
        super().set_state(state)
        self.population_size = state["population_size"]
        self.sample_size = state["sample_size"]


class _TimeBudget:
    """Mixin: no new trial starts after `time_budget` seconds; the running ones finish.

    The seconds spent are part of the oracle's saved state, so a search resumed after its
    process died goes on with what is left of its budget, not a fresh one (time since the last
    save, at most the trial that was running, is not counted)."""

    time_budget = None
    _budget_start = None
    _spent_before = 0.0

    def start_budget(self, time_budget):
        """The clock (re)starts now, on top of what a resumed search had already spent."""
        self.time_budget = time_budget
        self._budget_start = time.monotonic()

    def budget_spent(self):
        running = time.monotonic() - self._budget_start if self._budget_start is not None else 0.0
        return self._spent_before + running

    def budget_left(self):
        if not self.time_budget:
            return None
        return max(0.0, self.time_budget - self.budget_spent())

    def populate_space(self, trial_id):
        if self.time_budget and self.budget_left() <= 0:
            return {"status": TrialStatus.STOPPED, "values": None}
        return super().populate_space(trial_id)

    def get_state(self):
        state = super().get_state()
        state["budget_spent_s"] = self.budget_spent()
        return state

    def set_state(self, state):
        super().set_state(state)
        self._spent_before = float(state.get("budget_spent_s", 0.0))
        self._budget_start = None  # the clock runs again from the next start_budget


class _EndedTrialsStayEnded:
    """Mixin: Keras Tuner's `end_trial` saves the oracle's state before it drops the trial from
    the ongoing ones, and `reload` sends every ongoing trial back to be tried again. A process
    killed between the two (a chief killed as a trial's result came in) ran that finished trial a
    second time when resumed, and logged it twice. A reload now retries only the trials that have
    not ended."""

    def reload(self):
        super().reload()
        kt_compat.retry_only_unended(self)


class ResumableGridOracle(kt.oracles.GridSearchOracle):
    """Keras Tuner's grid search, with its position in the grid in the saved state: the stock
    oracle keeps it in memory only, so a reloaded grid search fails with a KeyError."""

    def get_state(self):
        state = super().get_state()
        state["grid"] = kt_compat.grid_order(self)
        return state

    def set_state(self, state):
        super().set_state(state)
        if "grid" in state:
            kt_compat.restore_grid_order(self, state["grid"])


def _budgeted(cls):
    """`cls` with the time budget, pruning (tuning.pruning) and the deployment costs
    (tuning.deploy) every algorithm shares."""
    return type(cls.__name__, (Pruning, _TimeBudget, DeploymentAware, _EndedTrialsStayEnded, cls),
                {"__module__": __name__})


RandomOracle = _budgeted(kt.oracles.RandomSearchOracle)
GridOracle = _budgeted(ResumableGridOracle)
BayesianOracle = _budgeted(kt.oracles.BayesianOptimizationOracle)
HyperbandOracle = _budgeted(kt.oracles.HyperbandOracle)
BudgetedEvolutionOracle = _budgeted(EvolutionOracle)


def _tpe_oracle():
    from tuning.tpe import TPEOracle  # imports Optuna only when TPE is asked for

    return _budgeted(TPEOracle)


def make_oracle(algorithm, *, objective, max_trials, max_epochs, seed, time_budget=None,
                max_consecutive_failures=3, pruner="none", deployment=None):
    """The oracle for an algorithm name ('random', 'grid', 'bayesian', 'hyperband', 'evolution',
    'tpe')."""
    kt_compat.atomic_state_files()  # its state files survive a SIGKILL mid-write
    common = {"objective": objective, "seed": seed,
              "max_consecutive_failed_trials": max_consecutive_failures}
    if algorithm == "hyperband":
        oracle = HyperbandOracle(max_epochs=max(2, max_epochs), factor=3, **common)
        oracle.max_trials = max_trials  # Hyperband sizes its brackets; the budget caps the total
    elif algorithm == "evolution":
        population = max(2, min(8, max_trials // 2))
        oracle = BudgetedEvolutionOracle(max_trials=max_trials, population_size=population,
                                         sample_size=max(2, population // 2), **common)
    elif algorithm == "tpe":
        oracle = _tpe_oracle()(max_trials=max_trials, **common)
    else:
        cls = {"random": RandomOracle, "grid": GridOracle, "bayesian": BayesianOracle}[algorithm]
        oracle = cls(max_trials=max_trials, **common)
    oracle.start_budget(time_budget)
    oracle.set_pruner(pruner)
    oracle.set_deployment(deployment)
    return oracle
