"""`search`: a Keras Tuner search over the catalog, tracked in MLflow, resumable, cross-validated.

It is a short composition of steps with one job each: checks (before TensorFlow loads), the
hypermodel, the resume state, the MLflow parent run, running the trials (in this process, or
served to distributed workers by a `TrialRunner`), retraining the best, and its artifacts."""

import dataclasses
import json
import os
import platform
import time

import numpy as np

from tuning import deploy
from tuning.options import (
    SearchOptions,
    check_algorithm,
    check_pruner,
    check_objective,
    default_objective,
    is_better,
    objective_direction,
)
from zoo._json import write_json_atomic
from zoo._paths import check_writable_dir
from zoo.errors import InvalidParameterError, JobFailed
from zoo.tasks import CLASSIFICATION_TASKS

STATE_FILE = "zoo_search.json"


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
    its own `fit`). `runner` runs the trials (default `LocalRunner`); the distributed chief
    (`tuning.distributed.Chief`) serves them to workers instead.

    Returns:
        SearchResult with the retrained best model, its hyperparameters, the trials table and
        the MLflow parent run id.

    Example:
        >>> from zoo.data import load_dataset
        >>> result = search(load_dataset("iris"), families=["mlp"], max_trials=3, max_epochs=5,
        ...                 directory="out/search", tracking_uri="sqlite:///mlflow.db")
    """
    options = dataclasses.replace(options, **fields) if options else SearchOptions(**fields)
    return _Plan(data, options, hypermodel).run(runner or LocalRunner())


def work_trials(data, link, options, *, hypermodel=None):
    """A distributed worker's part of `search`: run the trials the chief hands out through `link`
    (a `tuning.distributed.WorkerLink` that has joined), logging them under the chief's parent
    run. The chief owns the parent run, the state file and the oracle."""
    options = dataclasses.replace(options, tracking_uri=link.tracking_uri,
                                  experiment=link.experiment, tracking=bool(link.tracking_uri))
    plan = _Plan(data, options, hypermodel)
    # a worker's folder is scratch: a dead server fails its trials instead of journaling
    tracker = plan.tracker_module.Tracker(plan.uri, options.experiment) if options.tracking else None
    link.run(lambda: plan.make_tuner(plan.make_oracle(), tracker, link.parent_run_id, True, None),
             plan.fit_args, plan.fit_kwargs)


class _Plan:
    """One search: its checked options and the steps that run it."""

    def __init__(self, data, options, hypermodel):
        from tuning import tracking

        self.data, self.options, self.tracker_module = data, options, tracking
        self.objective = (options.objectives[0] if options.objectives else options.objective
                          or default_objective(data.task))
        self.deployment = deploy.make_deployment(options.constraints, options.objectives, options.select)
        self.uri = tracking.resolve_uri(options.tracking_uri) if options.tracking else None
        self._check(hypermodel)  # before TensorFlow is imported: nothing is written until all pass
        self.hypermodel = hypermodel or self._build_hypermodel()
        if options.algorithm == "grid" and self.custom:
            check_grid(self.hypermodel)
        self.fit_args = (data.X_train, data.y_train)
        self.fit_kwargs = {"validation_data": (data.X_val, data.y_val) if len(data.X_val) else None,
                           "verbose": 0}  # our own progress line per trial replaces Keras Tuner's

    # === checks =================================================================================
    def _check(self, hypermodel):
        from tuning import space

        data, options = self.data, self.options
        self.custom = hypermodel is not None or options.transfer is not None  # spaces Keras Tuner knows
        self.families = list(options.families)
        if not self.custom:
            self.families = space.check_families(self.families, input_shape=_feature_shape(data),
                                                 num_outputs=data.num_outputs, task=data.task,
                                                 params=options.params)
        if hypermodel is not None:
            self.families = hypermodel.families
        deploy.check_deployment(options.constraints, options.objectives, options.select,
                                algorithm=options.algorithm, objective=options.objective, task=data.task)
        check_objective(self.objective, data.task)
        if self.objective.startswith("val_") and not options.cv_folds and len(data.X_val) == 0:
            raise InvalidParameterError(
                f"`search.objective` {self.objective!r} needs a validation split (data.val_size > 0) "
                f"or cv_folds. Received: data.val_size=0"
            )
        check_cv_folds(options.cv_folds, np.concatenate([data.y_train, data.y_val]), data.task,
                       len(data.X_train) + len(data.X_val))
        check_algorithm(options.algorithm)
        check_pruner(options.pruner)
        if options.algorithm == "grid" and not self.custom:
            space.check_grid(self.families, options.params, options.tune_training)
        check_writable_dir(options.directory, "out")
        if options.tracking:
            self.tracker_module.check_reachable(self.uri)

    def _build_hypermodel(self):
        from tuning.hypermodel import ZooHyperModel

        data, options = self.data, self.options
        # checks that need Keras: the transfer source, the class weights
        hypermodel = ZooHyperModel(self.families, input_shape=_feature_shape(data),
                                   num_outputs=data.num_outputs, task=data.task,
                                   compose=getattr(data, "compose", None),
                                   params=options.params, batch_sizes=options.batch_sizes,
                                   tune_training=options.tune_training,
                                   class_weight=options.class_weight, class_names=data.class_names,
                                   transfer=options.transfer)
        self.families = hypermodel.families
        return hypermodel

    # === the Keras Tuner parts ==================================================================
    def make_oracle(self):
        import keras_tuner as kt

        from tuning import oracles

        options = self.options
        return oracles.make_oracle(
            options.algorithm, objective=kt.Objective(self.objective, objective_direction(self.objective)),
            max_trials=options.max_trials, max_epochs=options.max_epochs, seed=options.seed,
            time_budget=options.time_budget, max_consecutive_failures=options.max_consecutive_failures,
            pruner=options.pruner, deployment=self.deployment)

    def make_tuner(self, oracle, tracker, parent_id, overwrite, progress):
        from tuning.tuner import ZooTuner

        options = self.options
        return ZooTuner(
            oracle=oracle, hypermodel=self.hypermodel, directory=options.directory,
            project_name="trials", tracker=tracker, parent_run_id=parent_id,
            algorithm=options.algorithm, max_epochs=options.max_epochs, cv_folds=options.cv_folds,
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
        progress = _progress_printer(self.options.max_trials, self.objective, oracle,
                                     self.options.verbose) if self.options.progress else None
        tuner = self.make_tuner(oracle, tracker, parent_id, state is None, progress)
        search_seconds = self._run_trials(runner, tuner, Session(
            tracker, parent_id, self.uri, self.options.experiment, progress))
        best = self._best_trial(oracle, tracker, parent_id)
        self.oracle = oracle
        model, history = self._retrain(best) if self.options.retrain else (None, None)
        best_values = dict(best.hyperparameters.values)
        front = oracle.pareto_front() if self.deployment is not None and self.deployment.multi else None
        result = SearchResult(tracker=tracker, best_model=model, best_hyperparameters=best_values,
                              best_score=best.score, objective=self.objective,
                              trials=_trials_frame(oracle, front), run_id=parent_id, tracking_uri=self.uri,
                              directory=self.options.directory, history=history,
                              family=self.hypermodel.family_of(best_values), trial_id=best.trial_id,
                              _plan=self)
        if self.deployment is not None:
            result.costs = oracle.trial_costs(best)
        if front:
            result.front = deploy.front_frame(oracle, front, best)
            result.front_plot = deploy.front_plot(oracle, front, best, self.objective)
        if tracker:
            _log_search_artifacts(tracker, result, self.data, self.options.register_model,
                                  search_seconds, tuner.fit_seconds)
        return result

    def _resume_state(self):
        state_path = os.path.join(self.options.directory, STATE_FILE)
        if not os.path.isfile(state_path):
            return None
        with open(state_path) as handle:
            state = json.load(handle)
        fingerprint = self.options.fingerprint
        if fingerprint and state.get("fingerprint") != fingerprint:
            raise InvalidParameterError(
                f"`out` holds a search with a different configuration; use another --out to "
                f"start a new one. Received: out={self.options.directory!r}"
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
                    "objective": self.objective, "max_trials": options.max_trials,
                    "max_epochs": options.max_epochs, "seed": options.seed,
                    "cv_folds": options.cv_folds, "time_budget": options.time_budget,
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
        """Run the trials; returns the seconds they took. The oracle's clock is the one time
        budget: it counts from here, after set-up."""
        tuner.oracle.start_budget(self.options.time_budget)
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

    def _retrain(self, best):
        """The best configuration retrained for the full epoch budget (Hyperband's best trial may
        have had a short bracket), keeping the weights of the best validation epoch. It is seeded
        as its trial was, so a trial that ran the full budget is trained again the same way (what
        a deployment-aware search measured of it is what gets exported)."""
        import keras

        data, options = self.data, self.options
        keras.backend.clear_session()
        keras.utils.set_random_seed(options.seed + int(best.trial_id))
        model = self.hypermodel.build(best.hyperparameters)
        callbacks = []
        validation = (data.X_val, data.y_val) if len(data.X_val) else None
        if validation:
            monitor = self.objective if self.objective.startswith("val_") else f"val_{self.objective}"
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor=monitor, mode=objective_direction(self.objective),
                patience=options.early_stopping_patience or options.max_epochs,
                restore_best_weights=True))
        history = self.hypermodel.fit(best.hyperparameters, model, data.X_train, data.y_train,
                                      validation_data=validation, epochs=options.max_epochs,
                                      callbacks=callbacks, verbose=2 if options.verbose else 0)
        return model, history


def _feature_shape(data):
    """The input shape of the catalog model: after the preprocessing the data's model carries."""
    return tuple(getattr(data, "feature_shape", data.input_shape))


def _fail_parent(tracker, parent_id):
    if tracker:
        tracker.client.set_terminated(parent_id, status="FAILED")


def check_cv_folds(cv_folds, y, task, samples):
    if not cv_folds:
        return
    if cv_folds > samples:
        raise InvalidParameterError(
            f"`search.cv_folds` must not exceed the number of samples ({samples}). "
            f"Received: search.cv_folds={cv_folds}"
        )
    if task in CLASSIFICATION_TASKS:
        smallest = int(np.bincount(np.asarray(y, dtype="int64")).min())
        if cv_folds > smallest:
            raise InvalidParameterError(
                f"`search.cv_folds` must not exceed the smallest class's sample count ({smallest}). "
                f"Received: search.cv_folds={cv_folds}"
            )


def check_grid(hypermodel):
    """Grid search over a custom hypermodel (a space only Keras Tuner knows): the check of
    `tuning.space.check_grid`, on the hyperparameters the hypermodel declares."""
    import keras_tuner as kt

    from tuning.space import continuous_error

    hp = kt.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    for item in hp.space:
        if isinstance(item, kt.engine.hyperparameters.Float) and item.step is None:
            raise continuous_error(item.name)


def _smallest_costs(oracle):
    """The smallest value of each constrained cost among the trials, for the error message."""
    smallest = {}
    for trial in oracle.trials.values():
        for name, value in oracle.trial_costs(trial).items():
            if name in oracle.deployment.limits:
                smallest[name] = min(value, smallest.get(name, value))
    return "the smallest measured were " + ", ".join(f"{k} {v:g}" for k, v in sorted(smallest.items()))


def _trials_frame(oracle, front=None):
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
        print(f"trial {int(trial.trial_id) + 1}/{total} {shown} in {seconds:.1f}s{where} | best {best_text}{left}",
              flush=True)

    return report


def _log_search_artifacts(tracker, result, data, register_model, search_seconds, fit_seconds):
    import tempfile

    parent = result.run_id
    with tempfile.TemporaryDirectory() as folder:
        trials_path = os.path.join(folder, "trials.csv")
        result.trials.to_csv(trials_path, index=False)
        best_path = os.path.join(folder, "best_hyperparameters.json")
        write_json_atomic(best_path, result.best_hyperparameters)
        tracker.log_artifact(parent, trials_path)
        tracker.log_artifact(parent, best_path)
        if result.front is not None:  # the Pareto front: a table and a plot on the parent run
            front_path = os.path.join(folder, "pareto_front.csv")
            result.front.to_csv(front_path, index=False)
            tracker.log_artifact(parent, front_path)
            plot_path = os.path.join(folder, "pareto_front.png")
            with open(plot_path, "wb") as handle:
                handle.write(result.front_plot)
            tracker.log_artifact(parent, plot_path)
    tracker.log_metrics(parent, {"best_score": result.best_score, "search_seconds": search_seconds,
                                 "fit_seconds": fit_seconds,
                                 "trials_completed": int((result.trials["status"] == "COMPLETED").sum()),
                                 "trials_failed": int((result.trials["status"] != "COMPLETED").sum())})
    tracker.client.set_tag(parent, "zoo.best_family", result.family)
    if result.costs:
        tracker.log_metrics(parent, {f"best_{k}": v for k, v in result.costs.items() if np.isfinite(v)})
    if result.front is not None:
        tracker.log_metrics(parent, {"pareto_front_size": len(result.front)})
    if not tracker.offline:  # the splits as MLflow dataset inputs: the UI's Dataset column
        tracker.log_dataset(parent, data)
    if result.best_model is not None:
        _log_best_model(tracker, result, data, register_model)
    tracker.client.set_terminated(parent, status="FINISHED")


def _log_best_model(tracker, result, data, register_model):
    import shutil

    import mlflow
    from mlflow.models import infer_signature

    sample = np.asarray(data.X_train[:4])
    # a signature, not input_example: mlflow.keras.save_model writes the example before it
    # creates the model folder (FileNotFoundError in MLflow 3.x)
    signature = infer_signature(sample, np.asarray(result.best_model.predict(sample, verbose=0)))
    try:
        if tracker.offline:
            raise ConnectionError("tracking server offline")
        mlflow.set_tracking_uri(result.tracking_uri)
        with mlflow.start_run(run_id=result.run_id):
            mlflow.keras.log_model(result.best_model, name="best_model", signature=signature,
                                   registered_model_name=register_model,
                                   pip_requirements=_requirements())
    except Exception:  # noqa: BLE001 - a dead server: keep the MLflow model for the replay
        from tuning.tracking import server_down

        if not tracker.offline and not server_down(result.tracking_uri):
            raise
        folder = os.path.join(result.directory, "best_model_mlflow")
        shutil.rmtree(folder, ignore_errors=True)
        mlflow.keras.save_model(result.best_model, folder, signature=signature,
                                pip_requirements=_requirements())
        tracker.client.log_artifacts(result.run_id, folder, "best_model")


def _requirements():
    """The model's pip requirements, given explicitly: MLflow's inference reloads the model in a
    subprocess, which costs seconds per search."""
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for package in ("tensorflow", "keras", "keras-zoo"):
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pass
    return pins
