"""Search algorithms by name: Keras Tuner's oracles plus a regularized-evolution oracle, each with
an optional wall-clock budget, its exact seed, and one sentence saying why it stopped."""

import dataclasses
import math
import random
import time

import keras_tuner as kt
import numpy as np
from keras_tuner.engine import hyperparameters as hp_module
from keras_tuner.engine.trial import TrialStatus

from tuning import _kt_compat as kt_compat
from tuning.deploy import DeploymentAware
from tuning.pruning import Pruning

EPOCH_SECONDS = "epoch_seconds"  # a trial's metric: its seconds per training epoch
TRIAL_SECONDS = "trial_seconds"  # a trial's metric: the seconds its fits took
FIT_SECONDS = "fit_seconds"  # a trial's metric: what a fit of a fresh model costs beyond its epochs
# (the build, and the tracing in its first epoch)
BEST_EPOCH = "best_epoch"  # a trial's metric: the epoch its objective was best after (1-based; a
# cross-validated trial's: its folds' mean)
# the final training takes more than its configuration's trial says: its refit has every row (a
# trial trained on the training split, or on 4 folds of 5), and a fresh fit in the process that
# retrains costs more than in a worker (build and tracing; 1.5-2.9 s there against a worker's
# 1.2-2.3 s, measured on a 320-row and an 8,602-row table)
ROWS_MARGIN, FIT_EXTRA = 1.25, 2.0


@dataclasses.dataclass(frozen=True)
class FinalTraining:
    """The final training after the search (`tuning.search`), for the time budget to keep:
    `members` configurations, each a validation fit of at most `epochs` epochs (one ending
    `patience` epochs past its best, when set) and, with `refit`, a refit for its best epochs."""

    members: int = 1
    epochs: int = 1
    patience: int | None = None
    refit: bool = True

    def seconds(self, epoch_seconds, fit_seconds, best_epoch=None):
        """What it is expected to take, from the trial it retrains: seconds per epoch, a fresh
        fit's overhead, and the epoch its objective was best after (None: unknown)."""
        best = min(self.epochs, best_epoch or self.epochs)
        validation = min(self.epochs, best + self.patience) if self.patience else self.epochs
        epochs = validation + (best if self.refit else 0)
        fits = 2 if self.refit else 1
        return self.members * (ROWS_MARGIN * epochs * epoch_seconds + fits * (fit_seconds + FIT_EXTRA))

    def validation_seconds(self, epoch_seconds, fit_seconds, best_epoch=None):
        """What one configuration's validation fit alone is expected to take."""
        return dataclasses.replace(self, members=1, refit=False).seconds(
            epoch_seconds, fit_seconds, best_epoch)


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
    """Mixin: the `time_budget` seconds hold the trials and the final training. No new trial
    starts once the time left is what the `final` training is expected to take (as the best trial
    so far measured its configuration: `EPOCH_SECONDS`, `FIT_SECONDS`, `BEST_EPOCH`), or would
    be before a trial of the median length (`TRIAL_SECONDS`) ends. A running trial finishes.

    The seconds spent are part of the oracle's saved state, so a search resumed after its
    process died goes on with what is left of its budget, not a fresh one (time since the last
    save, at most the trial that was running, is not counted)."""

    time_budget = None
    final = None  # the FinalTraining (tuning.search: None when there is none)
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

    def final_training_seconds(self):
        """What the final training is expected to take, as the best trial so far measured it (the
        completed trials' medians where it has none); 0 before the first trial ends."""
        if self.final is None:
            return 0.0
        best = self.get_best_trials(1)
        return self._final_seconds(self.final.seconds, best[0] if best else None)

    def _final_seconds(self, estimate, trial):
        """`estimate` (a FinalTraining's `seconds` or `validation_seconds`) from `trial`'s metrics
        (the completed trials' medians for those it lacks)."""
        def metric(name):
            if trial is not None and trial.metrics.exists(name):
                return float(trial.metrics.get_last_value(name))
            return self.median_metric(name)

        return estimate(metric(EPOCH_SECONDS), metric(FIT_SECONDS), metric(BEST_EPOCH) or None)

    def affordable(self, trials):
        """The first of `trials` (best first) whose validation fit is expected to end within the
        time left, as its own trial measured it; None without a final training or a budget."""
        left = self.budget_left()
        if self.final is None or left is None:
            return None
        for trial in trials:
            if self._final_seconds(self.final.validation_seconds, trial) <= left:
                return trial
        return None

    def median_metric(self, metric):
        """The completed trials' median `metric` (0 when none has it)."""
        values = [trial.metrics.get_last_value(metric) for trial in self.trials.values()
                  if trial.status == TrialStatus.COMPLETED and trial.metrics.exists(metric)]
        return float(np.median(values)) if values else 0.0

    def populate_space(self, trial_id):
        if self.time_budget:
            kept = self.final_training_seconds()
            # a trial that starts runs to its end: one starts only while a trial of the median
            # length would end before the time kept
            if self.budget_left() <= kept + self.median_metric(TRIAL_SECONDS):
                reason = f"time budget {self.time_budget:g} s spent after {len(self.trials)} trials"
                if kept:
                    reason += f", the last {min(kept, self.time_budget):.0f} s of it kept for the final training"
                self.stopping(reason)
                return {"status": TrialStatus.STOPPED, "values": None}
        return super().populate_space(trial_id)

    def get_state(self):
        state = super().get_state()
        state["budget_spent_s"] = self.budget_spent()
        return state

    def set_state(self, state):
        super().set_state(state)
        self._spent_before = float(state.get("budget_spent_s", 0.0))
        self._budget_start = time.monotonic()  # a resumed search's clock runs again from here


class _ExactSeed:
    """Mixin: Keras Tuner's `Oracle` takes `seed or random.randint(1, 10000)`, so `seed=0` drew a
    new seed in every process: the same search with seed 0 sampled another first trial. The seed
    given is the seed used (Bayesian optimization's own generators included)."""

    def __init__(self, *args, seed=None, **kwargs):
        super().__init__(*args, seed=seed, **kwargs)
        if seed is None or self.seed == seed:
            return
        self.seed = self._seed_state = seed
        if isinstance(self, kt.oracles.BayesianOptimizationOracle):  # seeded in its __init__
            self._random_state = np.random.RandomState(seed)
            self.gpr = self._make_gpr()


class _StopReason:
    """Mixin: `stop_reason()`, one sentence saying why the oracle handed out no more trials."""

    _stop_reason = None

    def stopping(self, reason):
        """Record why no trial follows (the first reason given stands)."""
        if self._stop_reason is None:
            self._stop_reason = reason

    def stop_reason(self):
        """'all 12 trials done', 'time budget 240 s spent after 17 trials', "Hyperband's brackets
        finished after 30 trials", '3 consecutive trials failed', ...; None while trials go on."""
        failed = 0
        for trial_id in self.end_order:
            failed = failed + 1 if self.trials[trial_id].status == TrialStatus.FAILED else 0
        if self.max_consecutive_failed_trials and failed >= self.max_consecutive_failed_trials:
            return f"{failed} consecutive trials failed"
        return self._stop_reason

    def create_trial(self, tuner_id):
        trial = super().create_trial(tuner_id)
        if trial.status == TrialStatus.STOPPED and self.max_trials and len(self.trials) >= self.max_trials:
            self.stopping(f"all {self.max_trials} trials done")
        return trial

    def populate_space(self, trial_id):
        response = super().populate_space(trial_id)
        if response["status"] == TrialStatus.STOPPED:
            self.stopping(self.finished_reason())
        return response

    def finished_reason(self):
        """Why the algorithm itself has nothing more to try."""
        done = len(self.trials)
        if isinstance(self, kt.oracles.HyperbandOracle) and (
                self._current_bracket == 0 and self._current_iteration + 1 >= self.hyperband_iterations):
            return f"Hyperband's brackets finished after {done} trials"
        if isinstance(self, kt.oracles.GridSearchOracle):
            return f"every point of the grid tried ({done} trials)"
        return f"no untried configuration left after {done} trials"


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


class UntriedBayesianOracle(kt.oracles.BayesianOptimizationOracle):
    """Keras Tuner's Bayesian optimization, which never proposes a configuration tried before:
    on a small or discrete space the optimum of its acquisition often maps back onto a tried
    one (Keras Tuner runs it again); a random untried configuration is run instead."""

    def populate_space(self, trial_id):
        response = super().populate_space(trial_id)
        if response["status"] != TrialStatus.RUNNING or not self._duplicate(response["values"]):
            return response
        values = self._random_values()
        if values is None:
            return {"status": TrialStatus.STOPPED, "values": None}
        return {"status": TrialStatus.RUNNING, "values": values}


class _DefaultsFirst:
    """Mixin: a fresh search's first trial is the space's default point (each family's
    declared defaults: for a table, the tuned RealMLP-like point of `zoo.models.mlp`); Keras
    Tuner 1.4 draws even its first trial at random. Later trials draw as the algorithm does."""

    def _random_values(self):
        if self.trials or self._tried_so_far:
            return super()._random_values()
        hps = hp_module.HyperParameters()
        for hp in self.hyperparameters.space:
            hps.merge([hp])
            if hps.is_active(hp):
                hps.values[hp.name] = hp.default
        return hps.values


def _budgeted(cls):
    """`cls` with the time budget, pruning (tuning.pruning), the deployment costs (tuning.deploy),
    the exact seed and the stop reason every algorithm shares."""
    return type(cls.__name__, (Pruning, _TimeBudget, DeploymentAware, _EndedTrialsStayEnded, _StopReason,
                               _ExactSeed, _DefaultsFirst, cls), {"__module__": __name__})


RandomOracle = _budgeted(kt.oracles.RandomSearchOracle)
GridOracle = _budgeted(ResumableGridOracle)
BayesianOracle = _budgeted(UntriedBayesianOracle)
HyperbandOracle = _budgeted(kt.oracles.HyperbandOracle)
BudgetedEvolutionOracle = _budgeted(EvolutionOracle)


def _tpe_oracle():
    from tuning.tpe import TPEOracle  # imports Optuna only when TPE is asked for

    return _budgeted(TPEOracle)


HYPERBAND_FACTOR = 3  # Li et al.'s and Keras Tuner's halving rate, kept when its brackets fit
RANDOM_START_SHARE = 3  # Bayesian optimization and TPE start with a third of the trials random ...
RANDOM_START_MAX = 10  # ... and at most Optuna's default of 10


def _hyperband_shape(max_epochs, factor):
    """(brackets, trials of one Hyperband iteration, trials of its first bracket), as Keras Tuner's
    `HyperbandOracle` counts them (each later round of a configuration is a trial of its own)."""
    brackets, epochs = 0, max_epochs
    while epochs >= 1:
        epochs, brackets = epochs / factor, brackets + 1
    last_size = math.ceil(1 + math.log(max_epochs, factor))
    sizes = [sum(math.ceil(last_size / (bracket + 1) * factor ** (bracket - rung))
                 for rung in range(bracket + 1)) for bracket in reversed(range(brackets))]
    return brackets, sum(sizes), sizes[0]


def hyperband_plan(max_trials, max_epochs):
    """(factor, iterations) of a Hyperband search bounded by `max_trials` and `max_epochs`.

    Keras Tuner's defaults (factor 3, one iteration) gave 30 trials for 10 epochs, whatever
    `max_trials` said: 8 trials were 8 two-epoch trials of the first bracket (no configuration
    ever trained `max_epochs`), 40 stopped at 30. The factor is 3 when a whole iteration (every
    bracket) fits in `max_trials` and halves at all (two brackets or more), else the one with the
    most brackets that fits (2, 4, 5, ...); when none does, the one whose first bracket, halving
    up to `max_epochs`, fits; else a single bracket (random configurations trained `max_epochs`
    each). Iterations repeat until `max_trials` (or the time budget) ends the search."""
    factors = [HYPERBAND_FACTOR] + [f for f in range(2, max_epochs + 1) if f != HYPERBAND_FACTOR]
    shapes = {factor: _hyperband_shape(max_epochs, factor) for factor in factors}
    halving = [f for f in factors if shapes[f][0] > 1]
    whole = [f for f in halving if shapes[f][1] <= max_trials]
    first = [f for f in halving if shapes[f][2] <= max_trials]
    if whole:
        factor = max(whole, key=lambda f: (f == HYPERBAND_FACTOR, shapes[f][0]))
    elif first:
        factor = max(first, key=lambda f: shapes[f][0])
    else:
        factor = max(2, max_epochs + 1)  # one bracket
    per_iteration = _hyperband_shape(max_epochs, factor)[1]
    return factor, max(1, math.ceil(max_trials / per_iteration))


def random_start(max_trials):
    """Random trials before Bayesian optimization or TPE models the space: a third of the trials,
    2 to 10 (Keras Tuner's default, 3 per hyperparameter, was 30 or more for an MLP's space, so a
    search of 10 or 20 trials never left its random start)."""
    return max(2, min(RANDOM_START_MAX, max_trials // RANDOM_START_SHARE))


def make_oracle(algorithm, *, objective, max_trials, max_epochs, seed, time_budget=None,
                max_consecutive_failures=3, pruner="none", deployment=None, final=None):
    """The oracle for an algorithm name ('random', 'grid', 'bayesian', 'hyperband', 'evolution',
    'tpe'). `max_trials`, `max_epochs` and `time_budget` bound every one of them: no trial
    starts after `max_trials` trials or once the budget is spent (less what the `final` training,
    a `FinalTraining`, is expected to take), none trains more than `max_epochs`;
    `oracle.stop_reason()` says which bound ended the search."""
    kt_compat.atomic_state_files()  # its state files survive a SIGKILL mid-write
    common = {"objective": objective, "seed": seed,
              "max_consecutive_failed_trials": max_consecutive_failures}
    if algorithm == "hyperband":
        factor, iterations = hyperband_plan(max_trials, max_epochs)
        oracle = HyperbandOracle(max_epochs=max_epochs, factor=factor,
                                 hyperband_iterations=iterations, **common)
        oracle.max_trials = max_trials  # its constructor takes none: the total is capped here
    elif algorithm == "evolution":
        population = max(2, min(8, max_trials // 2))
        oracle = BudgetedEvolutionOracle(max_trials=max_trials, population_size=population,
                                         sample_size=max(2, population // 2), **common)
    elif algorithm == "tpe":
        oracle = _tpe_oracle()(max_trials=max_trials, n_startup_trials=random_start(max_trials), **common)
    elif algorithm == "bayesian":
        oracle = BayesianOracle(max_trials=max_trials, num_initial_points=random_start(max_trials), **common)
    else:
        oracle = {"random": RandomOracle, "grid": GridOracle}[algorithm](max_trials=max_trials, **common)
    oracle.start_budget(time_budget)
    oracle.final = final
    oracle.set_pruner(pruner)
    oracle.set_deployment(deployment)
    return oracle
