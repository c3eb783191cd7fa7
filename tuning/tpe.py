"""Optuna's TPE sampler as a Keras Tuner `Oracle`, through Optuna's ask-and-tell interface.

Keras Tuner's hyperparameters map onto Optuna's distributions (`Choice` → categorical, `Int` →
integer, `Float` → float, with their step and log sampling; `Boolean` → categorical; `Fixed`
stays fixed). A conditional hyperparameter (`parent_name`/`parent_values`, or a `conditional_scope`)
is asked only when its condition holds for the values asked before it, so TPE sees the same
dynamic space Keras Tuner does.

The oracle's own trials are its state: the Optuna study lives in memory and is rebuilt from them
(`study.add_trial`) whenever the oracle is reloaded, so a search resumed after its process died,
or run by a chief in distributed mode, goes on with everything it had learnt.
"""

import warnings

import keras_tuner as kt
from keras_tuner.engine import hyperparameters as hp_module
from keras_tuner.engine.trial import TrialStatus

N_STARTUP_TRIALS = 10  # Optuna's default: random points before TPE models the space


def _distribution(hp):
    """The Optuna distribution of a Keras Tuner hyperparameter."""
    from optuna import distributions as d

    if isinstance(hp, hp_module.Choice):
        return d.CategoricalDistribution(list(hp.values))
    if isinstance(hp, hp_module.Boolean):
        return d.CategoricalDistribution([False, True])
    if isinstance(hp, hp_module.Int):
        log = hp.sampling == "log"
        step = 1 if log or not hp.step else int(hp.step)
        return d.IntDistribution(int(hp.min_value), int(hp.max_value), log=log, step=step)
    if isinstance(hp, hp_module.Float):
        log = hp.sampling == "log"
        step = None if log or not hp.step else float(hp.step)
        return d.FloatDistribution(float(hp.min_value), float(hp.max_value), log=log, step=step)
    raise TypeError(f"no Optuna distribution for {type(hp).__name__} {hp.name!r}")


def _suggest(asked, hp):
    """Ask the Optuna trial for `hp`'s value through its public `suggest_*` methods."""
    dist = _distribution(hp)
    if hasattr(dist, "choices"):
        return asked.suggest_categorical(hp.name, list(dist.choices))
    if isinstance(hp, hp_module.Int):
        return int(asked.suggest_int(hp.name, dist.low, dist.high, step=dist.step, log=dist.log))
    return asked.suggest_float(hp.name, dist.low, dist.high, step=dist.step, log=dist.log)


class TPEOracle(kt.Oracle):
    """Tree-structured Parzen Estimator search (Optuna's `TPESampler`) as a Keras Tuner oracle.

    Args:
        n_startup_trials: random trials before TPE models the space (Optuna's default, 10).
        Others as `keras_tuner.Oracle`.
    """

    def __init__(self, objective=None, max_trials=10, n_startup_trials=N_STARTUP_TRIALS, **kwargs):
        super().__init__(objective=objective, max_trials=max_trials, **kwargs)  # Oracle's own options
        self.n_startup_trials = n_startup_trials
        self._study = None
        self._asked = {}  # Keras Tuner trial id -> the Optuna trial asked for it

    # --- the study, rebuilt from the oracle's trials ----------------------------------------
    # --- what Optuna is told of a trial (`tuning.deploy.DeploymentAware` adds the costs) -------
    def directions(self):
        return ["maximize" if self.objective.direction == "max" else "minimize"]

    def objective_values(self, trial):
        return None if trial.score is None else [float(trial.score)]

    def constraint_values(self, trial):
        return {}

    def _tell(self, asked, trial):
        """Tell Optuna how a trial it asked for ended: its objective values and constraints."""
        import optuna

        values = self.objective_values(trial) if trial.status == TrialStatus.COMPLETED else None
        if values is None:
            self.study().tell(asked, state=optuna.trial.TrialState.FAIL)
            return
        for name, value in self.constraint_values(trial).items():
            asked.set_constraint(name, value)
        self.study().tell(asked, values)

    def study(self):
        """The Optuna study; after a reload, rebuilt from the finished trials."""
        if self._study is None:
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(
                n_startup_trials=self.n_startup_trials, seed=self._seed_state,
                multivariate=True, group=True)  # group: conditional spaces, as Keras Tuner's
            self._study = optuna.create_study(directions=self.directions(), sampler=sampler)
            self._asked = {}
            for trial_id in self.end_order:
                self._add_finished(self.trials[trial_id])
            if not self.trials:  # a fresh search: its first trial is the space's default point
                self._study.enqueue_trial(self._default_point())
        return self._study

    def _default_point(self):
        """The active, tunable hyperparameters at their declared defaults."""
        hps = hp_module.HyperParameters()
        for hp in self.hyperparameters.space:
            hps.merge([hp])
            if hps.is_active(hp):
                hps.values[hp.name] = hp.default
        return {hp.name: value for hp, value in self._active(hps.values)
                if not isinstance(hp, hp_module.Fixed)}

    def _add_finished(self, trial):
        import optuna

        active = [(hp, value) for hp, value in self._active(trial.hyperparameters.values)
                  if not isinstance(hp, hp_module.Fixed)]
        distributions = {hp.name: _distribution(hp) for hp, _ in active}
        params = {hp.name: value for hp, value in active}
        values = self.objective_values(trial) if trial.status == TrialStatus.COMPLETED else None
        if values is not None:
            frozen = optuna.trial.create_trial(params=params, distributions=distributions,
                                               values=values, constraints=self.constraint_values(trial))
        else:
            frozen = optuna.trial.create_trial(params=params, distributions=distributions,
                                               state=optuna.trial.TrialState.FAIL)
        self._study.add_trial(frozen)

    def _active(self, values):
        """(hyperparameter, value) for each hyperparameter active under `values`, in space order."""
        hps = hp_module.HyperParameters()
        active = []
        for hp in self.hyperparameters.space:
            hps.merge([hp])
            if hps.is_active(hp) and hp.name in values:
                hps.values[hp.name] = values[hp.name]
                active.append((hp, values[hp.name]))
        return active

    # --- Keras Tuner's oracle interface -------------------------------------------------------
    def _values(self, asked):
        hps = hp_module.HyperParameters()
        values = {}
        for hp in self.hyperparameters.space:
            hps.merge([hp])
            if not hps.is_active(hp):
                continue
            value = hp.value if isinstance(hp, hp_module.Fixed) else _suggest(asked, hp)
            hps.values[hp.name] = value
            values[hp.name] = value
        return values

    def _finished_with(self, values):
        """A finished trial with these hyperparameter values and a score, or None."""
        wanted = self._compute_values_hash(values)
        for trial in self.trials.values():
            if (trial.status == TrialStatus.COMPLETED and trial.score is not None
                    and self._compute_values_hash(trial.hyperparameters.values) == wanted):
                return trial
        return None

    def populate_space(self, trial_id):
        import optuna

        study = self.study()
        for _ in range(self._max_collisions):
            asked = study.ask()
            values = self._values(asked)
            if not self._duplicate(values):
                break
            # a configuration tried before: TPE learns its known result and is asked again
            known = self._finished_with(values)
            if known is None:
                study.tell(asked, state=optuna.trial.TrialState.FAIL)
            else:
                self._tell(asked, known)
        else:  # TPE keeps proposing tried points (a small space): a random untried one, if any
            asked, values = None, self._random_values()
            if values is None:
                return {"status": TrialStatus.STOPPED, "values": None}
        if asked is not None:
            self._asked[trial_id] = asked
        self._seed_state += 1
        return {"status": TrialStatus.RUNNING, "values": values}

    def end_trial(self, trial):
        super().end_trial(trial)
        ended = self.trials[trial.trial_id]
        asked = self._asked.pop(trial.trial_id, None)
        existed = self._study is not None
        self.study()  # when built just now, it was built with this trial in it
        if asked is None:  # handed out before a reload: told as a finished trial
            if existed:
                self._add_finished(ended)
            return
        self._tell(asked, ended)

    def get_state(self):
        state = super().get_state()
        state["n_startup_trials"] = self.n_startup_trials
        return state

    def set_state(self, state):
        super().set_state(state)
        self.n_startup_trials = state["n_startup_trials"]
        self._study = None  # rebuilt from the reloaded trials when next needed
