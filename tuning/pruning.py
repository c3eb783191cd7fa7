"""Pruning inside Keras Tuner: `search.pruner: none | median | successive_halving`.

The tuner reports the objective at every epoch end through the oracle's own `update_trial` (so it
works for every algorithm, and in distributed mode, where the call reaches the chief's oracle
over gRPC); the oracle asks Optuna's pruner (`MedianPruner`, `SuccessiveHalvingPruner`) whether
the trial should stop, and answers with the trial marked `STOPPED` (Keras Tuner's own signal,
which its `update_trial` leaves unused). The tuner then stops training at that epoch end. A
pruned trial is COMPLETED in Keras Tuner, with its best epoch as its score, and its message says
where it was pruned; the oracle keeps the pruned trials in its saved state.

The pruner's view of the search is an Optuna study held by the oracle: one Optuna trial per
Keras Tuner trial, with the per-epoch values as intermediate values; it is rebuilt from the
oracle's own trials (their per-epoch metric histories) when the oracle is reloaded.
"""

import copy
import math
import warnings

PRUNERS = ("none", "median", "successive_halving")
MEDIAN_STARTUP_TRIALS = 3  # finished trials before the median rule prunes anything
MEDIAN_WARMUP_EPOCHS = 1  # epochs every trial runs before it can be pruned
HALVING_REDUCTION = 3  # successive halving keeps the best third at each rung (epochs 1, 3, 9, ...)


def make_pruner(name):
    """Optuna's pruner for a `search.pruner` name (None for 'none')."""
    if name == "none":
        return None
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=MEDIAN_STARTUP_TRIALS,
                                           n_warmup_steps=MEDIAN_WARMUP_EPOCHS)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=HALVING_REDUCTION)
    raise ValueError(name)


class Pruning:
    """Oracle mixin: `update_trial` answers STOPPED when the pruner says so."""

    pruner = "none"

    def set_pruner(self, name):
        self.pruner = name
        self._pruning_study = None

    @property
    def pruned_trials(self):
        """{trial id: the 0-based epoch after which it was pruned}."""
        if getattr(self, "_pruned", None) is None:
            self._pruned = {}
        return self._pruned

    # --- the pruner's study ----------------------------------------------------------------------
    def _pruner_study(self):
        if getattr(self, "_pruning_study", None) is None:
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            direction = "maximize" if self.objective.direction == "max" else "minimize"
            self._pruning_study = optuna.create_study(direction=direction, pruner=make_pruner(self.pruner))
            self._mirrors, self._steps = {}, {}
            for trial_id in self.end_order:  # what a reloaded oracle had seen
                self._add_ended(self.trials[trial_id])
        return self._pruning_study

    def _history(self, trial):
        name = self.objective.name
        if not trial.metrics.exists(name):
            return {}
        history = {int(point.step): float(point.mean()) for point in trial.metrics.get_history(name)}
        return {step: value for step, value in history.items() if math.isfinite(value)}

    def _add_ended(self, trial):
        import optuna

        history = self._history(trial)
        if trial.status != "COMPLETED" or not history:
            return
        if trial.trial_id in self.pruned_trials:
            frozen = optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED,
                                               intermediate_values=history)
        else:
            frozen = optuna.trial.create_trial(value=float(trial.score), intermediate_values=history)
        self._pruning_study.add_trial(frozen)

    # --- Keras Tuner's oracle interface ----------------------------------------------------------
    def update_trial(self, trial_id, metrics, step=0):
        """Keras Tuner's `update_trial`, whose answer (the trial, as the chief sends it back over
        gRPC) has status STOPPED when the pruner stops the trial at this step."""
        trial = super().update_trial(trial_id, metrics, step=step)
        value = metrics.get(self.objective.name)
        if self.pruner == "none" or value is None or not math.isfinite(value):
            return trial
        study = self._pruner_study()
        mirror = self._mirrors.get(trial_id)
        if mirror is None:
            mirror = self._mirrors[trial_id] = study.ask()
        steps = self._steps.setdefault(trial_id, set())
        if int(step) in steps:
            return trial  # a step reported again (with the trial's costs): the pruner has it
        steps.add(int(step))
        mirror.report(float(value), int(step))
        if not mirror.should_prune():
            return trial
        self.pruned_trials[trial_id] = int(step)
        answer = copy.copy(trial)  # the oracle's own trial goes on RUNNING until it ends
        answer.status = "STOPPED"
        return answer

    def end_trial(self, trial):
        pruned_at = self.pruned_trials.get(trial.trial_id)
        if pruned_at is not None and trial.status == "COMPLETED":
            trial.message = f"pruned after epoch {pruned_at + 1} ({self.pruner} rule)"
        super().end_trial(trial)
        if self.pruner == "none":
            return
        import optuna

        ended = self.trials[trial.trial_id]
        existed = getattr(self, "_pruning_study", None) is not None
        mirror = self._mirrors.pop(trial.trial_id, None) if existed else None
        if existed:
            self._steps.pop(trial.trial_id, None)
        study = self._pruner_study()  # when built just now, it was built with this trial in it
        if not existed:
            return
        if mirror is None:  # no epoch reported here (cross-validation, or handed out before a reload)
            self._add_ended(ended)
        elif pruned_at is not None:
            study.tell(mirror, state=optuna.trial.TrialState.PRUNED)
        elif ended.status == "COMPLETED" and ended.score is not None:
            study.tell(mirror, float(ended.score))
        else:
            study.tell(mirror, state=optuna.trial.TrialState.FAIL)

    def get_state(self):
        state = super().get_state()
        state["pruner"] = self.pruner
        state["pruned_trials"] = dict(self.pruned_trials)
        return state

    def set_state(self, state):
        super().set_state(state)
        self.pruner = state.get("pruner", "none")
        self._pruned = dict(state.get("pruned_trials", {}))
        self._pruning_study = None  # rebuilt from the reloaded trials when next needed
