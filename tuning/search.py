"""`search`: a Keras Tuner search over the catalog, tracked in MLflow, resumable, cross-validated.

The steps of one search (`_Plan`): its checks (`tuning.checks`, before TensorFlow loads), the
hypermodel, the resume state, the MLflow parent run (`tuning.tracking`), running the trials (in
this process, or served to distributed workers by a `TrialRunner`), retraining the best; what it
leaves is plain data (`tuning.result`)."""

import contextlib
import dataclasses
import json
import os
import pickle
import platform
import time
import warnings

from tuning import deploy
from tuning.checks import check_grid, check_search, cv_below, cv_folds_for, feature_shape, objective_of
from tuning.options import (
    TRIALS_WITHIN_BUDGET,
    SearchOptions,
    is_better,
    objective_direction,
    trials_bound,
)
from tuning.result import SearchResult, trials_frame
from zoo._json import write_json_atomic
from zoo.errors import InvalidParameterError, JobFailed

STATE_FILE = "zoo_search.json"
# set (to anything but 0 or empty): every search runs its trials in the calling process, for
# debugging (a breakpoint in `fit`, one traceback), whatever `parallel` says; no recycling
INLINE_ENV = "KERAS_ZOO_INLINE_TRIALS"


@dataclasses.dataclass
class Session:
    """What a trial runner is handed besides the tuner: where trials are logged and reported."""

    tracker: object
    parent_run_id: str
    tracking_uri: str
    experiment: str
    progress: object


class SearchFailed(JobFailed):
    """The search could not produce a model (every trial failed, or too many in a row)."""


class LocalRunner:
    """Runs every trial in this process: Keras Tuner's own search loop."""

    def run_trials(self, tuner, fit_args, fit_kwargs, session):
        tuner.search(*fit_args, **fit_kwargs)


def search(data, options=None, *, hypermodel=None, runner=None, **fields):
    """Search the catalog for the best configuration on `data` (a `zoo.data.Dataset`).

    `options` is a `SearchOptions`; `fields` are its fields by name (families, algorithm,
    objective, max_trials, max_epochs, time_budget, cv_folds, directory, tracking_uri, ...),
    replacing those of `options`. Every check runs before
    anything is written. Running the same search again with the same `directory` resumes it:
    finished trials are kept, the parent MLflow run is reused, runs a killed process left RUNNING
    are closed as KILLED.

    `hypermodel` replaces the one built from the options (a `ZooHyperModel` subclass, e.g. with
    its own `fit`). `runner` runs the trials: by default `n_jobs` worker processes that the search
    starts, supervises and replaces (`trials_per_worker`, `worker_memory_mb`), served by a
    `tuning.distributed.Chief` on loopback; `LocalRunner()` (or `KERAS_ZOO_INLINE_TRIALS=1`) runs
    them in this process; a `Chief` bound to an address serves remote workers.

    Returns:
        SearchResult with the retrained best model, its hyperparameters, the trials table and
        the MLflow parent run id.

    Example:
        >>> from zoo.data import load_dataset
        >>> result = search(load_dataset("iris"), families=["mlp"], max_trials=3, max_epochs=5,
        ...                 directory="out/search", tracking_uri="sqlite:///mlflow.db")
    """
    options = dataclasses.replace(options, **fields) if options else SearchOptions(**fields)
    plan = _Plan(data, options, hypermodel)
    runner = runner or _default_runner(plan, hypermodel)
    with _workers_of(runner, plan, hypermodel):
        return plan.run(runner)


def _default_runner(plan, hypermodel):
    """Worker processes (`n_jobs` of them) served by a chief on loopback; this process when
    `KERAS_ZOO_INLINE_TRIALS` says so, or when the search cannot be handed to another process."""
    from tuning.distributed import Chief

    options = plan.options
    if os.environ.get(INLINE_ENV, "") not in ("", "0"):
        return LocalRunner()
    try:
        plan.worker_payload = _payload(plan.data, options, hypermodel)
    except (pickle.PicklingError, TypeError, AttributeError) as error:  # a live lock, client...
        warnings.warn(f"the search cannot be sent to worker processes ({type(error).__name__}: "
                      f"{error}); its trials run in this process", stacklevel=3)
        return LocalRunner()
    return Chief.on_loopback(
        options.n_jobs, fingerprint=options.fingerprint or os.urandom(8).hex(),
        worker_timeout=options.worker_timeout, verbose=options.verbose, announce=options.progress,
        retire={"trials": options.trials_per_worker, "memory_mb": options.worker_memory_mb})


def _payload(data, options, hypermodel):
    """The search as a worker process gets it: pickled by value where it must be (a class defined
    in `__main__` or a function), by reference to its module otherwise."""
    import cloudpickle

    return cloudpickle.dumps((data, options, hypermodel))


@contextlib.contextmanager
def _workers_of(runner, plan, hypermodel):
    """The runner's local worker processes started now, while the search sets up (they import
    TensorFlow meanwhile), and ended however the search ends."""
    launch = getattr(runner, "launch", None)
    if launch is None:
        yield
        return
    try:
        launch(lambda: getattr(plan, "worker_payload", None) or _payload(plan.data, plan.options, hypermodel))
        yield
    finally:
        runner.close()


def work_trials(data, link, options, *, hypermodel=None, shared=False, retirement=None):
    """A distributed worker's part of `search`: run the trials the chief hands out through `link`
    (a `tuning.distributed.WorkerLink` that has joined), logging them under the chief's parent
    run. The chief owns the parent run, the state file and the oracle. `shared`: `options.directory`
    is the chief's own folder (a local worker), where a retried trial finds its last epoch's
    checkpoint; else it is this worker's scratch. `retirement` (a local worker's): when to leave
    for a fresh process."""
    options = dataclasses.replace(options, tracking_uri=link.tracking_uri,
                                  experiment=link.experiment, tracking=bool(link.tracking_uri))
    plan = _Plan(data, options, hypermodel)
    # a local worker journals what a dead server could not take in the search's folder, beside
    # the chief (one line a write: appends from several processes do not mix); a remote worker's
    # folder is scratch, so a dead server fails its trials instead
    journal = options.directory if shared else None
    tracker = plan.tracker_module.Tracker(plan.uri, options.experiment, journal_dir=journal) if options.tracking else None
    link.run(lambda: plan.make_tuner(plan.make_oracle(), tracker, link.parent_run_id, not shared, None),
             plan.fit_args, plan.fit_kwargs, retirement=retirement)


class _Plan:
    """One search: its checked options and the steps that run it."""

    def __init__(self, data, options, hypermodel):
        from tuning import tracking

        self.data, self.options, self.tracker_module = data, options, tracking
        self.objective = objective_of(options, data.task)
        self.max_trials = trials_bound(options.max_trials, options.time_budget)
        self.deployment = deploy.make_deployment(options.constraints, options.objectives, options.select)
        self.uri = tracking.resolve_uri(options.tracking_uri) if options.tracking else None
        # spaces only Keras Tuner knows: a hypermodel given, or a transfer source
        self.custom = hypermodel is not None or options.transfer is not None
        # before TensorFlow is imported: nothing is written until every check passes
        self.families = check_search(data, options, custom=self.custom,
                                     tracker_module=tracking, uri=self.uri)
        if hypermodel is not None:
            self.families = hypermodel.families
        self.cv_folds = cv_folds_for(data, options)
        self.refit_epochs = self.validation_predictions = None  # set by `_retrain`
        self.oracle, self.final_notes = None, []  # the final training's lines (`_say`)
        self.hypermodel = hypermodel or self._build_hypermodel()
        if options.algorithm == "grid" and self.custom:
            check_grid(self.hypermodel)
        self.fit_args = (data.X_train, data.y_train)
        self.fit_kwargs = {"validation_data": (data.X_val, data.y_val) if len(data.X_val) else None,
                           "verbose": 0}  # our own progress line per trial replaces Keras Tuner's

    def _build_hypermodel(self):
        from tuning.hypermodel import ZooHyperModel

        data, options = self.data, self.options
        # checks that need Keras: the transfer source, the class weights
        hypermodel = ZooHyperModel(self.families, input_shape=feature_shape(data),
                                   num_outputs=data.num_outputs, task=data.task,
                                   compose=getattr(data, "compose", None),
                                   params=options.params, batch_sizes=options.batch_sizes,
                                   tune_training=options.tune_training,
                                   class_weight=options.class_weight, class_names=data.class_names,
                                   transfer=options.transfer, objective=self.objective)
        self.families = hypermodel.families
        return hypermodel

    # === the Keras Tuner parts ==================================================================
    def make_oracle(self):
        import keras_tuner as kt

        from tuning import oracles

        options = self.options
        return oracles.make_oracle(
            options.algorithm, objective=kt.Objective(self.objective, objective_direction(self.objective)),
            max_trials=self.max_trials, max_epochs=options.max_epochs, seed=options.seed,
            time_budget=options.time_budget, max_consecutive_failures=options.max_consecutive_failures,
            pruner=options.pruner, deployment=self.deployment, final=self.final_training())

    def final_training(self):
        """What the final training runs (`oracles.FinalTraining`), which the time budget keeps
        time for: for each ensemble member, the validation fit and the refit (`_retrain`); None
        without one."""
        from tuning.oracles import FinalTraining

        options = self.options
        if not options.retrain:
            return None
        return FinalTraining(members=options.ensemble_size, epochs=options.max_epochs,
                             patience=options.early_stopping_patience, refit=options.refit)

    def make_tuner(self, oracle, tracker, parent_id, overwrite, progress):
        from tuning.tuner import ZooTuner

        options = self.options
        return ZooTuner(
            oracle=oracle, hypermodel=self.hypermodel, directory=options.directory,
            project_name="trials", tracker=tracker, parent_run_id=parent_id,
            algorithm=options.algorithm, max_epochs=options.max_epochs, cv_folds=self.cv_folds,
            seed=options.seed, early_stopping_patience=options.early_stopping_patience,
            fit_verbose=2 if options.verbose else 0, overwrite=overwrite, progress=progress,
            pruning=options.pruner != "none", deployment=self.deployment)

    # === the steps ==============================================================================
    def run(self, runner):
        state = self._resume_state()
        os.makedirs(self.options.directory, exist_ok=True)
        oracle = self.make_oracle()
        tracker, parent_id = self._open_parent(state)
        self._save_state(parent_id)
        progress = _progress_printer(self.max_trials, self.objective, oracle,
                                     self.options.verbose) if self.options.progress else None
        tuner = self.make_tuner(oracle, tracker, parent_id, state is None, progress)
        if self.options.progress and self.cv_folds and not self.options.cv_folds:
            rows = len(self.data.X_train) + len(self.data.X_val)
            print(f"trials are scored by {self.cv_folds}-fold cross-validation: {rows} rows, "
                  f"below search.cv_below ({cv_below(self.options)})", flush=True)
        search_seconds = self._run_trials(runner, tuner, Session(
            tracker, parent_id, self.uri, self.options.experiment, progress))
        stop_reason = oracle.stop_reason() or "the trials' runner ended"
        if self.options.progress:
            print(f"search stopped: {stop_reason}", flush=True)
        best = self._best_trial(oracle, tracker, parent_id)
        self.oracle = oracle
        best = self._affordable(best)
        result = self._result(oracle, best, tracker, parent_id)
        result.stop_reason = stop_reason
        result.validation_predictions, result.refit_epochs = self.validation_predictions, self.refit_epochs
        result.final_notes = list(self.final_notes)
        if tracker:
            self.tracker_module.log_search(tracker, result, self.data, self.options.register_model,
                                           search_seconds, tuner.fit_seconds)
        return result

    def _result(self, oracle, best, tracker, parent_id):
        """The best trial retrained, and how the search found it, as plain data."""
        model, history = self._retrain(best, within_budget=True) if self.options.retrain else (None, None)
        members = [best.trial_id]
        if model is not None and self.options.ensemble_size > 1:
            model, members = self._ensemble(oracle, best, model)
        best_values = dict(best.hyperparameters.values)
        front = oracle.pareto_front() if self.deployment is not None and self.deployment.multi else None
        result = SearchResult(tracker=tracker, best_model=model, best_hyperparameters=best_values,
                              best_score=best.score, objective=self.objective,
                              trials=trials_frame(oracle, front), run_id=parent_id, tracking_uri=self.uri,
                              directory=self.options.directory, history=history,
                              family=self.hypermodel.family_of(best_values), trial_id=best.trial_id,
                              _plan=self)
        result.members = members
        if self.deployment is not None:
            result.costs = oracle.trial_costs(best)
        if front:
            result.front = deploy.front_frame(oracle, front, best)
            result.front_plot = deploy.front_plot(oracle, front, best, self.objective)
        return result

    def _ensemble(self, oracle, best, model):
        """The best `ensemble_size` distinct configurations (Hyperband runs one configuration in
        several trials), each retrained as the best was, averaged as one model
        (`tuning.ensemble`); returns it and the members' trial ids."""
        from tuning.ensemble import ensemble_model

        wanted = self.options.ensemble_size
        trials, seen = [], set()
        for trial in oracle.get_best_trials(len(oracle.trials)):
            key = json.dumps({k: v for k, v in trial.hyperparameters.values.items()
                              if not k.startswith("tuner/")}, sort_keys=True, default=str)
            if key not in seen:
                seen.add(key)
                trials.append(trial)
        trials = [best] + [t for t in trials if t.trial_id != best.trial_id][:wanted - 1]
        if len(trials) < wanted and self.options.progress:
            print(f"ensemble of {len(trials)}: only {len(trials)} distinct trials completed "
                  f"(search.ensemble_size={wanted})", flush=True)
        models, predictions = [model], [self.validation_predictions]
        refit_epochs = self.refit_epochs
        for trial in trials[1:]:
            if self._deadline_passed():
                self._say(f"ensemble of {len(models)}: the time budget ended before member "
                          f"{len(models) + 1} of {wanted}")
                break
            models.append(self._retrain(trial, within_budget=True)[0])
            predictions.append(self.validation_predictions)
        self.refit_epochs = refit_epochs  # the best's
        if all(p is not None for p in predictions):
            import numpy as np

            self.validation_predictions = np.mean(predictions, axis=0)
        return (ensemble_model(models, task=self.data.task, extra_metrics=self.hypermodel.extra_metrics),
                [t.trial_id for t in trials])

    def _resume_state(self):
        state_path = os.path.join(self.options.directory, STATE_FILE)
        if not os.path.isfile(state_path):
            return None
        with open(state_path) as handle:
            state = json.load(handle)
        fingerprint = self.options.fingerprint
        if fingerprint and state.get("fingerprint") != fingerprint:
            raise InvalidParameterError(
                f"`directory` holds a search of other options or data; name another folder (zoo "
                f"run: another --out) to start a new one. Received: directory={self.options.directory!r}"
            )
        return state

    def _open_parent(self, state):
        options = self.options
        if not options.tracking:
            return None, None
        tracking = self.tracker_module
        replayed = tracking.replay_journal(options.directory)
        if replayed and options.progress:
            print(f"replayed {replayed} tracking writes kept while the server was down", flush=True)
        tracker = tracking.Tracker(self.uri, options.experiment, journal_dir=options.directory)
        resume_id = state.get("parent_run_id") if state and state.get("tracking_uri") == self.uri else None
        parent_id = tracker.start_parent(
            name=f"search-{'-'.join(self.families)}-{options.algorithm}", run_id=resume_id,
            params={"algorithm": options.algorithm, "families": ",".join(self.families),
                    "objective": self.objective, "max_trials": self.max_trials,
                    "max_epochs": options.max_epochs, "seed": options.seed,
                    "cv_folds": self.cv_folds, "time_budget": options.time_budget,
                    "task": self.data.task, "dataset": self.data.name,
                    **{f"fixed.{k}": v for k, v in (options.params or {}).items()}},
            tags={"zoo.kind": "search", "zoo.algorithm": options.algorithm,
                  "zoo.host": platform.node()})
        if resume_id:
            killed = tracker.close_stale_trials(parent_id)
            if killed and options.progress:
                print(f"resuming: closed {len(killed)} run(s) left RUNNING as KILLED", flush=True)
        return tracker, parent_id

    def _save_state(self, parent_id):
        write_json_atomic(os.path.join(self.options.directory, STATE_FILE), {
            "fingerprint": self.options.fingerprint, "parent_run_id": parent_id,
            "tracking_uri": self.uri, "experiment": self.options.experiment})

    def _run_trials(self, runner, tuner, session):
        """Run the trials; returns the seconds they took. The time budget is the oracle's clock
        (started when it is made, or reloaded on a resume)."""
        started = time.monotonic()
        try:
            runner.run_trials(tuner, self.fit_args, self.fit_kwargs, session)
        except RuntimeError as error:
            if "consecutive failures" not in str(error):
                raise
            _fail_parent(session.tracker, session.parent_run_id)
            reason = str(error).strip().splitlines()[-1]
            raise SearchFailed(
                f"search stopped: {self.options.max_consecutive_failures} consecutive trials failed "
                f"(last: {reason})"
            ) from None
        return time.monotonic() - started

    def _best_trial(self, oracle, tracker, parent_id):
        best_trials = oracle.get_best_trials(1)
        if best_trials:
            return best_trials[0]
        _fail_parent(tracker, parent_id)
        if self.deployment is not None and self.deployment.constraints and any(
                t.status == "COMPLETED" for t in oracle.trials.values()):
            raise SearchFailed(
                f"no trial met search.constraints ({self.deployment.describe()}): "
                f"{_smallest_costs(oracle)}; loosen a limit or search smaller models")
        if not oracle.trials and self.options.time_budget:
            raise SearchFailed(
                f"the time budget ({self.options.time_budget:g} s) ran out before the first trial")
        raise SearchFailed("search finished with no successful trial")

    def _affordable(self, best):
        """The trial the final training retrains: the best, unless its validation fit is expected
        not to end within the time budget's rest (a slow trial that won at the end) and a
        completed trial's would; then the best of those, said in one line (a model cut after an
        epoch or two of its retraining would be worse than the runner-up's, and end late)."""
        if not (self.options.retrain and self.options.time_budget) or self.deployment is not None:
            return best
        ranked = self.oracle.get_best_trials(len(self.oracle.trials))
        chosen = self.oracle.affordable(ranked)
        if chosen is None or chosen.trial_id == best.trial_id:
            return best
        self._say(f"trial {chosen.trial_id} retrained instead of the best, trial {best.trial_id} "
                  f"(score {best.score:.4g} against {chosen.score:.4g}): its retraining would not end "
                  f"within the {self.oracle.budget_left():.0f} s of the time budget left")
        return chosen

    def _deadline(self):
        """When the time budget ends (`time.monotonic()`), None without one."""
        left = self.oracle.budget_left() if self.oracle is not None else None
        return None if left is None else time.monotonic() + left

    def _deadline_passed(self):
        deadline = self._deadline()
        return deadline is not None and time.monotonic() >= deadline

    def _say(self, line):
        """A line about the final training (printed with `progress`; the result's `final_notes`)."""
        self.final_notes.append(line)
        if self.options.progress:
            print(line, flush=True)

    def _retrain(self, best, within_budget=False):
        """The best configuration retrained for the full epoch budget (Hyperband's best trial may
        have had a short bracket), keeping the weights of the best validation epoch. It is seeded
        as its trial was, so a trial that ran the full budget is trained again the same way (what
        a deployment-aware search measured of it is what gets exported).

        With `refit` (and a validation split in memory), that fit only chooses the epochs: the
        model returned is trained afresh, seeded the same, on the training and validation rows
        together for that many epochs (a cross-validated trial's: its folds' mean best epoch).
        The history returned is the validation fit's; `self.validation_predictions` holds its
        predictions on the validation rows (the refit model has seen them). A model trained in
        mixed precision (images on a GPU) is returned in float32, as it is saved and exported."""
        import keras
        import numpy as np

        from tuning.tuner import BEST_EPOCH, EpochClock, best_epoch, seed_trial
        from zoo.images import float32_model

        data, options = self.data, self.options
        keras.backend.clear_session()
        building = time.monotonic()
        seed_trial(options.seed, best.trial_id)
        model = self.hypermodel.build(best.hyperparameters)
        deadline = self._deadline() if within_budget else None
        clock = EpochClock()
        callbacks = [clock] if deadline is None else [clock, stop_at(deadline)]
        validation = (data.X_val, data.y_val) if len(data.X_val) else None
        monitor = self.objective if self.objective.startswith("val_") else f"val_{self.objective}"
        if validation:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor=monitor, mode=objective_direction(self.objective),
                patience=options.early_stopping_patience or options.max_epochs,
                restore_best_weights=True))
        history = self.hypermodel.fit(best.hyperparameters, model, data.X_train, data.y_train,
                                      validation_data=validation, epochs=options.max_epochs,
                                      callbacks=callbacks, verbose=2 if options.verbose else 0)
        trained = len(history.history.get("loss", [])) or 1
        if deadline is not None and trained < options.max_epochs and time.monotonic() >= deadline:
            self._say(f"final training of trial {best.trial_id} stopped at the time budget's end "
                      f"after {trained} of {options.max_epochs} epochs")
        self.refit_epochs = self.validation_predictions = None
        if not (options.refit and validation and isinstance(data.X_train, np.ndarray)):
            return float32_model(model), history  # streamed images: their split is files, kept as it is
        self.validation_predictions = model.predict(data.X_val, verbose=0)
        cv_epochs = best.metrics.get_best_value(BEST_EPOCH) if best.metrics.exists(BEST_EPOCH) else None
        epochs = cv_epochs or best_epoch(history.history.get(monitor), objective_direction(self.objective))
        if epochs is None:
            return float32_model(model), history
        refit_epochs = max(1, round(epochs))
        if deadline is not None:  # the refit takes every row: seconds per epoch grow with them
            rows = len(data.X_train) + len(data.X_val)
            durations = clock.durations or [0.0]
            epoch_seconds = float(np.median(durations[1:] or durations))
            # the refit's build and tracing cost what the validation fit's did
            overhead = durations[0] - epoch_seconds + (clock.started - building)
            needed = overhead + refit_epochs * epoch_seconds * rows / max(1, len(data.X_train))
            if time.monotonic() + needed > deadline:
                self._say(f"refit of trial {best.trial_id} skipped: it would take about "
                          f"{needed:.0f} s, {max(0.0, deadline - time.monotonic()):.0f} s of the "
                          f"time budget are left; the model keeps its validation fit")
                return float32_model(model), history
        self.refit_epochs = refit_epochs
        seed_trial(options.seed, best.trial_id)
        model = self.hypermodel.build(best.hyperparameters)
        self.hypermodel.fit(best.hyperparameters, model, np.concatenate([data.X_train, data.X_val]),
                            np.concatenate([data.y_train, data.y_val]), epochs=self.refit_epochs,
                            verbose=2 if options.verbose else 0)
        return float32_model(model), history


def stop_at(deadline):
    """A Keras callback that stops training at the end of the first epoch that ends past
    `deadline` (`time.monotonic()`): at least one epoch runs."""
    import keras

    class StopAt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if time.monotonic() >= deadline:
                self.model.stop_training = True

    return StopAt()


def _fail_parent(tracker, parent_id):
    if tracker:
        tracker.set_status(parent_id, "FAILED")


def _smallest_costs(oracle):
    """The smallest value of each constrained cost among the trials, for the error message."""
    smallest = {}
    for trial in oracle.trials.values():
        for name, value in oracle.trial_costs(trial).items():
            if name in oracle.deployment.limits:
                smallest[name] = min(value, smallest.get(name, value))
    return "the smallest measured were " + ", ".join(f"{k} {v:g}" for k, v in sorted(smallest.items()))


def _why_not_chosen(oracle, trial):
    """Why a completed trial of a constrained search can never be chosen, or None."""
    deployment = getattr(oracle, "deployment", None)
    if deployment is None or not deployment.constraints:
        return None
    trial = oracle.trials[trial.trial_id]
    over = deployment.over(oracle.trial_costs(trial))
    if over:
        return f"over the limit: {over}"
    if not deployment.feasible(oracle.trial_costs(trial)):
        return "no better than the best within the limits: TFLite not measured"
    return None


def _progress_printer(total, objective, oracle, verbose):
    best = {"score": None}

    def report(trial, result, seconds, worker=None):
        score = result.get("score")
        why_not = _why_not_chosen(oracle, trial) if trial.status == "COMPLETED" else None
        if score is not None and not why_not and is_better(score, best["score"], objective):
            best["score"] = score
        shown = "failed" if trial.status != "COMPLETED" else f"{objective}={score:.4f}"
        if why_not:
            shown += f" ({why_not})"
        left = oracle.budget_left()
        left = "" if left is None else f" | budget left {left:.0f}s"
        best_text = "n/a" if best["score"] is None else f"{best['score']:.4f}"
        where = f" on {worker}" if worker else ""
        of = "" if total >= TRIALS_WITHIN_BUDGET else f"/{total}"  # bounded by the budget alone
        print(f"trial {int(trial.trial_id) + 1}{of} {shown} in {seconds:.1f}s{where} | best {best_text}{left}",
              flush=True)

    return report


