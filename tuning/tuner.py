"""`ZooTuner`: a Keras Tuner `Tuner` that tracks every trial in MLflow, cross-validates, fails
NaN trials cleanly and keeps memory flat between trials."""

import os
import time
import warnings

import keras
import keras_tuner as kt
import numpy as np

from tuning import _kt_compat as kt_compat
from tuning import checkpoints, deploy, oracles
from tuning.oracles import EPOCH_SECONDS, FIT_SECONDS, TRIAL_SECONDS
from zoo.tasks import CLASSIFICATION_TASKS

STATUS = {"COMPLETED": "FINISHED"}
# reporting each epoch through `oracle.update_trial` (pruning) is what Keras Tuner's deprecation
# note is about; it still scores the trial by its best reported epoch, which is what pruning needs
warnings.filterwarnings("ignore", message="The use case of calling", category=DeprecationWarning)
GC_EVERY = 10
BEST_EPOCH = "cv_best_epoch"  # a cross-validated trial's mean best epoch over its folds


def seed_trial(seed, trial_id):
    """Seed Python, NumPy, TensorFlow and Keras for one trial, and for its configuration's retrain:
    the search's seed plus the trial's number, so each trial draws its own initial weights,
    dropout masks and batch order, the same ones in every run of the search."""
    keras.utils.set_random_seed(seed + int(trial_id))


class EpochClock(keras.callbacks.Callback):
    """The seconds each epoch of a fit took (its validation included)."""

    def __init__(self):
        super().__init__()
        self.durations, self.started, self._last = [], None, None

    def on_train_begin(self, logs=None):
        self.started = self._last = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        now = time.monotonic()
        self.durations.append(now - self._last)
        self._last = now


class _Timing:
    """A trial's fits, timed for the time budget (tuning.oracles._TimeBudget): the seconds of an
    epoch, and what a fit of a fresh model costs beyond its epochs (its build, and the tracing
    its first epoch holds)."""

    def __init__(self):
        self.epochs, self.fresh = [], []  # steady epochs' seconds; (build, first epoch) of fresh fits
        self.seconds = 0.0  # every fit, built and trained

    def add(self, durations, build_seconds):
        self.seconds += sum(durations) + (build_seconds or 0.0)
        if build_seconds is None:  # the same model again: no tracing
            self.epochs += durations
        elif durations:
            self.fresh.append((build_seconds, durations[0]))
            self.epochs += durations[1:]

    def metrics(self):
        """{EPOCH_SECONDS, FIT_SECONDS, TRIAL_SECONDS}; with no epoch past a first one, the first
        epochs stand for the epochs (tracing included, so the estimate errs long) and the overhead
        is the builds."""
        if not self.epochs and not self.fresh:
            return {}
        epoch = (float(np.median(self.epochs)) if self.epochs
                 else float(np.mean([first for _, first in self.fresh])))
        overhead = [build + max(0.0, first - epoch) for build, first in self.fresh]
        return {EPOCH_SECONDS: epoch, FIT_SECONDS: float(np.mean(overhead)) if overhead else 0.0,
                TRIAL_SECONDS: self.seconds}


class _Start:
    """A compiled model's starting point: its variables (weights, seed generators) and its
    optimizer's, as built. Each fold of a cross-validated trial trains the one model from this
    same start, so Keras traces its train and test functions once a trial, not once a fold (on a
    small table the tracing was most of a trial's time)."""

    def __init__(self, model):
        self.model = model
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)  # as `fit` would on its first step
        optimizer = list(model.optimizer.variables) if model.optimizer is not None else []
        self._values = [(v, keras.ops.convert_to_numpy(v)) for v in [*model.variables, *optimizer]]

    def restore(self):
        for variable, value in self._values:
            variable.assign(value)


def best_epoch(values, direction):
    """The number of epochs (1-based) after which the finite `values` (one per epoch) were at
    their best ("max" or "min"), or None when none is finite."""
    values = np.asarray(values if values else [], dtype="float64")
    if not np.isfinite(values).any():
        return None
    values = np.where(np.isfinite(values), values, np.nan)
    return int(np.nanargmax(values) if direction == "max" else np.nanargmin(values)) + 1


class EpochPruner(keras.callbacks.Callback):
    """Reports the objective to the oracle at each epoch end (`oracle.update_trial`, over gRPC in
    distributed mode) and stops training when the oracle's pruner answers STOPPED."""

    def __init__(self, oracle, trial_id, objective):
        super().__init__()
        self.oracle, self.trial_id, self.objective = oracle, trial_id, objective
        self.pruned_after = None
        self.reported = None  # (epoch, value) of the last report

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.objective)
        if value is None:
            return
        self.reported = (epoch, float(value))
        answer = self.oracle.update_trial(self.trial_id, {self.objective: float(value)}, step=epoch)
        if getattr(answer, "status", None) == "STOPPED":
            self.pruned_after = epoch
            self.model.stop_training = True


class EpochLogger(keras.callbacks.Callback):
    """Keras callback logging each epoch's metrics to a trial's run, one batch per epoch."""

    def __init__(self, tracker, run_id, prefix=""):
        super().__init__()
        self.tracker, self.run_id, self.prefix = tracker, run_id, prefix

    def on_epoch_end(self, epoch, logs=None):
        metrics = {f"{self.prefix}{k}": v for k, v in (logs or {}).items()}
        self.tracker.log_metrics(self.run_id, metrics, step=epoch)


def _feasibility(deployment, costs):
    """'true', 'false (params 61290 > 50000)', or 'unmeasured' for a trial whose TFLite costs were
    not worth measuring (it could not be chosen)."""
    over = deployment.over(costs)
    if over:
        return f"false ({over})"
    return "true" if deployment.feasible(costs) else "unmeasured"


def cv_splitter(task, input_rank, folds, seed):
    """Stratified k-fold for classification, time-ordered folds for sequences, k-fold otherwise."""
    from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit

    if input_rank == 2:  # (timesteps, features): later folds must not train on the future
        return TimeSeriesSplit(n_splits=folds)
    if task in CLASSIFICATION_TASKS:
        return StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return KFold(n_splits=folds, shuffle=True, random_state=seed)


class ZooTuner(kt.Tuner):
    """Runs trials for `ZooHyperModel` and reports them to a `Tracker`."""

    def __init__(self, *, oracle, hypermodel, directory, project_name, tracker=None,
                 parent_run_id=None, algorithm="random", max_epochs=10, cv_folds=None, seed=0,
                 early_stopping_patience=None, fit_verbose=0, progress=None, overwrite=False,
                 pruning=False, deployment=None):
        super().__init__(oracle=oracle, hypermodel=hypermodel, directory=directory,
                         project_name=project_name, overwrite=overwrite)
        self.tracker = tracker
        self.parent_run_id = parent_run_id
        self.algorithm = algorithm
        self.max_epochs = max_epochs
        self.cv_folds = cv_folds
        self.seed = seed
        self.early_stopping_patience = early_stopping_patience
        self.pruning = pruning
        self.deployment = deployment  # tuning.deploy.Deployment: the costs each trial reports
        self._model = None  # the model the last fit trained
        self._reported = None  # (epoch, value) the pruner last reported to the oracle
        self._feasibility = {}
        self._pruned = {}
        self._handed_over = {}
        self.fit_verbose = fit_verbose
        self.progress = progress
        self._runs = {}
        self._results = {}
        self._started = {}
        self.fit_seconds = 0.0
        self._timing = {}  # trial id -> _Timing of its fits
        self._trials_begun = 0

    # --- hooks -------------------------------------------------------------------------------
    def on_trial_begin(self, trial):
        # Keras's global state goes every trial; the full gc.collect of clear_session's default
        # (1-2 s a trial on 2 cores) only every GC_EVERY trials (RSS: benchmarks/ figure 6)
        self._trials_begun += 1
        keras.backend.clear_session(free_memory=self._trials_begun % GC_EVERY == 0)
        seed_trial(self.seed, trial.trial_id)
        self._started[trial.trial_id] = time.monotonic()
        self._drop_unneeded_weights()
        resumed_run = self._killed_run_to_resume(trial)
        if resumed_run:
            self._runs[trial.trial_id] = resumed_run
        elif self.tracker:
            values = trial.hyperparameters.values
            self._runs[trial.trial_id] = self.tracker.start_trial(
                self.parent_run_id, trial_id=trial.trial_id, params=values,
                tags={"zoo.algorithm": self.algorithm,
                      "zoo.family": self.hypermodel.family_of(values),
                      "zoo.worker": str(self.tuner_id)})
        super().on_trial_begin(trial)

    def _killed_run_to_resume(self, trial):
        """The MLflow run of a trial whose process was killed mid-fit, reopened so that its history
        goes on at the next epoch (None when the trial starts afresh)."""
        from tuning.tracking import TRIAL_TAG

        resumed_at = checkpoints.resumable_epoch(self.get_trial_dir(trial.trial_id))
        if resumed_at is None or not self.tracker or self.cv_folds:
            return None
        for run in self.tracker.trial_runs(self.parent_run_id, status="KILLED"):
            if run.data.tags.get(TRIAL_TAG) == trial.trial_id:
                self.tracker.set_status(run.info.run_id, "RUNNING")
                self.tracker.set_tags(run.info.run_id, {"zoo.resumed_at_epoch": resumed_at + 1})
                return run.info.run_id
        return None

    def _drop_unneeded_weights(self):
        """Hyperband: final weights no bracket in progress can hand on any more are deleted."""
        if self.algorithm != "hyperband":
            return
        live = kt_compat.hyperband_live_trials(self.oracle)
        if live is None or not os.path.isdir(self.project_dir):
            return
        for name in os.listdir(self.project_dir):
            if name.startswith("trial_") and name[len("trial_"):] not in live:
                checkpoints.drop_final_weights(os.path.join(self.project_dir, name))

    def on_trial_end(self, trial):
        checkpoints.clear(self.get_trial_dir(trial.trial_id))
        past = self._handed_over.pop(trial.trial_id, None)
        if past is not None:  # a later round took its weights on: nothing else will
            checkpoints.drop_final_weights(self.get_trial_dir(past))
        status = trial.status
        result = self._results.pop(trial.trial_id, {})
        run_id = self._runs.pop(trial.trial_id, None)
        # the MLflow run ends before the oracle hears of it: a process killed in between leaves a
        # trial the oracle runs again (its earlier run is then replaced), never a trial the oracle
        # counts as ended whose run stays RUNNING, then KILLED, for good
        if run_id and trial.trial_id in self._pruned:
            self.tracker.set_tags(run_id, {"zoo.pruned": "true",
                                           "zoo.pruned_after_epoch": self._pruned.pop(trial.trial_id) + 1})
        feasibility = self._feasibility.pop(trial.trial_id, None)
        if run_id and feasibility:
            self.tracker.set_tags(run_id, {"zoo.feasible": feasibility})
        if run_id:
            reason = None
            if status != "COMPLETED" and trial.message:
                reason = trial.message.strip().splitlines()[-1]
            self.tracker.end_trial(run_id, status=STATUS.get(status, "FAILED"),
                                   metrics=result, reason=reason)
        super().on_trial_end(trial)  # oracle.end_trial may raise after too many failures
        if self.progress:
            self.progress(trial, result, time.monotonic() - self._started.pop(trial.trial_id, time.monotonic()))

    # --- one trial ---------------------------------------------------------------------------
    def run_trial(self, trial, x, y, validation_data=None, **kwargs):
        hp = trial.hyperparameters
        epochs = hp.values.get("tuner/epochs", self.max_epochs)
        objective = self.oracle.objective.name
        run_id = self._runs.get(trial.trial_id)
        if self.cv_folds:
            scores, best_epochs = [], []
            if validation_data is not None and len(validation_data[0]):
                x = np.concatenate([x, validation_data[0]])
                y = np.concatenate([y, validation_data[1]])
            splitter = cv_splitter(self.hypermodel.task, len(x.shape) - 1, self.cv_folds, self.seed)
            folds = splitter.split(x, y if self.hypermodel.task != "regression" else None)
            model = start = None
            # a transfer model's fine-tuning unfreezes layers and compiles again: each fold
            # builds its own
            reuse = not getattr(self.hypermodel, "transfer", None)
            for fold, (train_index, val_index) in enumerate(folds):
                build_seconds = None
                if start is not None:
                    start.restore()
                elif reuse:
                    building = time.monotonic()
                    model = self.hypermodel.build(hp)
                    start = _Start(model)
                    build_seconds = time.monotonic() - building
                history = self._fit(hp, trial, x[train_index], y[train_index],
                                    (x[val_index], y[val_index]), epochs, run_id, prefix=f"fold{fold}_",
                                    model=model, build_seconds=build_seconds)
                scores.append(self._best(history, objective))
                best_epochs.append(best_epoch(history.history[objective], self.oracle.objective.direction))
            result = {objective: float(np.mean(scores)), f"{objective}_cv_std": float(np.std(scores)),
                      f"{objective}_cv_mean": float(np.mean(scores)),
                      # the epochs the refit on every row trains for (tuning.search._retrain)
                      BEST_EPOCH: float(np.mean(best_epochs))}
            trial_best = result[BEST_EPOCH]
        else:
            history = self._fit(hp, trial, x, y, validation_data, epochs, run_id)
            result = {objective: self._best(history, objective)}
            trial_best = best_epoch(history.history.get(objective), self.oracle.objective.direction)
            final = {k: v[-1] for k, v in history.history.items() if k != objective}
            result.update({f"final_{k}": float(v) for k, v in final.items()})
        score = result.pop(objective)
        returned = {objective: score}
        if BEST_EPOCH in result:
            returned[BEST_EPOCH] = result[BEST_EPOCH]
        # for the oracle only (what the final training will cost: tuning.oracles._TimeBudget)
        extra = self._timing.pop(trial.trial_id, _Timing()).metrics()
        if extra and trial_best is not None:
            extra[oracles.BEST_EPOCH] = float(trial_best)
        if self.deployment is not None:  # the costs go to the oracle as the trial's metrics
            costs = self._costs(self._model, x, score)
            extra.update(costs)
            result.update({k: v for k, v in costs.items() if np.isfinite(v)})
            self._feasibility[trial.trial_id] = _feasibility(self.deployment, costs)
        returned.update(extra)
        if self._reported is not None and extra:
            # a pruned search reported every epoch already, so Keras Tuner drops what this
            # returns: the costs and timing go with the last epoch's report again
            step, value = self._reported
            self.oracle.update_trial(trial.trial_id, {objective: value, **extra}, step=step)
        self._model = self._reported = None
        # the run's per-epoch history already holds `objective`; the final score goes in `score`
        self._results[trial.trial_id] = {"score": score, **result}
        return returned

    def _costs(self, model, x, score):
        """The trial's deployment costs. TFLite is measured only where it can matter: not for a
        trial over a cheap limit (params, FLOPs) and, with one objective, only for a trial that
        beats the best feasible trial so far."""
        deployment = self.deployment

        def worth_converting(cheap):
            if deployment.violations(cheap):
                return False
            if deployment.multi:
                return True
            best = self.oracle.get_best_trials(1)  # feasible trials only (DeploymentAware)
            return not best or self.oracle.objective.better_than(score, best[0].score)

        return deploy.measure(model, x, deployment.wanted, tflite=worth_converting)

    def _fit(self, hp, trial, x, y, validation_data, epochs, run_id, prefix="", model=None,
             build_seconds=None):
        """One fit of `model`, or of one built from `hp`. `build_seconds`: what building the given
        model took, None when it has trained before (its functions are traced)."""
        timing = self._timing.setdefault(trial.trial_id, _Timing())
        if model is None:
            building = time.monotonic()
            model = self.hypermodel.build(hp)
            build_seconds = time.monotonic() - building
        self._model = model
        setup = time.monotonic()  # the callbacks and handed-over weights count with the build
        clock = EpochClock()
        callbacks = [keras.callbacks.TerminateOnNaN(), clock]
        folder = self.get_trial_dir(trial.trial_id)
        initial_epoch, keeper = 0, None
        if not prefix:  # epoch-level resume, and Hyperband's hand-over (not for CV folds)
            resumed_at = checkpoints.resumable_epoch(folder)
            past = hp.values.get("tuner/trial_id")
            weights = checkpoints.final_weights(self.get_trial_dir(past)) if past else None
            if resumed_at is None and weights:
                model.load_weights(weights)  # the predecessor's weights: this round goes on from them
                initial_epoch = int(hp.values.get("tuner/initial_epoch", 0))
                self._handed_over[trial.trial_id] = past
            keeper = checkpoints.EpochHistory(folder, resumed_at)
            callbacks += [checkpoints.backup_callback(folder), keeper]
        if self.tracker and run_id:
            callbacks.append(EpochLogger(self.tracker, run_id, prefix))
        pruner = None
        if self.pruning and not prefix:  # cross-validated trials are not pruned mid-fold
            pruner = EpochPruner(self.oracle, trial.trial_id, self.oracle.objective.name)
            callbacks.append(pruner)
        if self.early_stopping_patience:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor=self.oracle.objective.name, mode=self.oracle.objective.direction,
                patience=self.early_stopping_patience))
        started = time.monotonic()
        extra = {"initial_epoch": initial_epoch} if initial_epoch else {}
        history = self.hypermodel.fit(hp, model, x, y, validation_data=validation_data,
                                      epochs=epochs, callbacks=callbacks, verbose=self.fit_verbose, **extra)
        self.fit_seconds += time.monotonic() - started
        timing.add(clock.durations, None if build_seconds is None else build_seconds + started - setup)
        if keeper is not None:
            history = keeper.merged(history)
            if self.algorithm == "hyperband":
                checkpoints.save_final_weights(folder, model)
        if pruner is not None and pruner.pruned_after is not None:
            self._pruned[trial.trial_id] = pruner.pruned_after
        if pruner is not None:
            self._reported = pruner.reported
        losses = history.history.get("loss", [])
        if not losses or not np.all(np.isfinite(losses)):
            raise kt.errors.FailedTrialError(
                f"loss became NaN or inf at epoch {len(losses)} of trial {trial.trial_id}"
            )
        return history

    def _best(self, history, objective):
        values = history.history.get(objective)
        if not values:
            raise kt.errors.FatalError(
                f"objective '{objective}' is not reported by the model "
                f"(it reports {', '.join(history.history)})"
            )
        values = [v for v in values if np.isfinite(v)]
        if not values:
            raise kt.errors.FailedTrialError(f"objective '{objective}' is NaN in every epoch")
        return float(max(values) if self.oracle.objective.direction == "max" else min(values))

    def save_model(self, trial_id, model, step=0):
        """No model artifact per trial: the best configuration is retrained at the end."""

    def load_model(self, trial):
        raise NotImplementedError("trial models are not kept; use SearchResult.best_model")
