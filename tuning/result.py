"""What a search leaves, as plain data: `SearchResult` and the trials table."""

import dataclasses


@dataclasses.dataclass
class SearchResult:
    """What a search leaves: the retrained best model and how it was found."""

    best_model: object
    best_hyperparameters: dict
    best_score: float
    objective: str
    trials: object  # pandas.DataFrame, one row per trial
    run_id: str = None
    tracking_uri: str = None
    directory: str = None
    history: object = None  # keras History of the retrained best model
    family: str = None
    tracker: object = dataclasses.field(default=None, repr=False)  # logs on to the parent run
    # deployment-aware search (search.constraints / search.objectives): the chosen trial and its
    # costs, and with several objectives the Pareto front (one row per member) and its plot
    trial_id: str = None
    costs: dict = None
    front: object = None  # pandas.DataFrame
    front_plot: bytes = dataclasses.field(default=None, repr=False)
    stop_reason: str = None  # one sentence: why the search stopped
    # with `refit`: the validation fit's predictions on the validation rows (the model returned
    # has trained on them); refit_epochs: the epochs of that refit
    validation_predictions: object = dataclasses.field(default=None, repr=False)
    refit_epochs: int = None
    members: list = None  # the trial ids averaged in the model (`ensemble_size`): the best first
    # what the time budget cut from the final training (a fit stopped, a refit skipped, members)
    final_notes: list = dataclasses.field(default_factory=list)
    _plan: object = dataclasses.field(default=None, repr=False)

    def retrain(self, trial_id):
        """Retrain one trial's configuration as the best was retrained (a front member, to
        export it too); returns `(model, history)`."""
        trial = self._plan.oracle.trials[trial_id]
        return self._plan._retrain(trial)

    def build(self, trial_id):
        """One trial's model, built (untrained) from its hyperparameters."""
        return self._plan.hypermodel.build(self._plan.oracle.trials[trial_id].hyperparameters)

    def costs_of(self, trial_id):
        """One trial's deployment costs as the search measured them."""
        oracle = self._plan.oracle
        return oracle.trial_costs(oracle.trials[trial_id])


def trials_frame(oracle, front=None):
    import pandas as pd

    rows = []
    pruned = getattr(oracle, "pruned_trials", {})
    deployment = getattr(oracle, "deployment", None)
    on_front = {t.trial_id for t in front or ()}
    for trial_id in sorted(oracle.trials, key=lambda t: (len(t), t)):  # "10" after "9"
        trial = oracle.trials[trial_id]
        row = {"trial_id": trial_id, "status": trial.status, "score": trial.score,
               "pruned_after_epoch": pruned[trial_id] + 1 if trial_id in pruned else None}
        if deployment is not None:
            row.update(oracle.trial_costs(trial))
            row["feasible"] = oracle.is_feasible(trial) if trial.status == "COMPLETED" else None
            if deployment.multi:
                row["pareto"] = trial_id in on_front
        row.update({f"hp:{k}": v for k, v in trial.hyperparameters.values.items()})
        rows.append(row)
    return pd.DataFrame(rows)
