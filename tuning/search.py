"""`search`: a Keras Tuner search over the catalog, tracked in MLflow, resumable, cross-validated.
`run_search` does the same from a validated `RunConfig` for `zoo tune` and `zoo run`."""

import dataclasses
import json
import os
import platform
import time

import numpy as np

from zoo._paths import check_writable_dir
from zoo.errors import InvalidParameterError, JobFailed

TASK_METRICS = {
    "binary": ("loss", "accuracy", "auc"),
    "multiclass": ("loss", "accuracy"),
    "regression": ("loss", "mae", "rmse"),
}
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


def default_objective(task):
    return "val_accuracy" if task in ("binary", "multiclass") else "val_loss"


def check_objective(objective, task):
    allowed = [prefix + name for prefix in ("val_", "") for name in TASK_METRICS[task]]
    if objective not in allowed:
        from zoo.errors import suggest

        raise InvalidParameterError(
            f"`search.objective` must be a metric the model reports for task '{task}': "
            f"{', '.join(allowed)}. Received: search.objective={objective!r}.{suggest(objective, allowed)}"
        )


def check_cv_folds(cv_folds, y, task, samples):
    if not cv_folds:
        return
    if cv_folds > samples:
        raise InvalidParameterError(
            f"`search.cv_folds` must not exceed the number of samples ({samples}). "
            f"Received: search.cv_folds={cv_folds}"
        )
    if task in ("binary", "multiclass"):
        smallest = int(np.bincount(np.asarray(y, dtype="int64")).min())
        if cv_folds > smallest:
            raise InvalidParameterError(
                f"`search.cv_folds` must not exceed the smallest class's sample count ({smallest}). "
                f"Received: search.cv_folds={cv_folds}"
            )


def check_grid(hypermodel):
    """Grid search enumerates values: every float hyperparameter needs a step."""
    import keras_tuner as kt

    hp = kt.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    for item in hp.space:
        if isinstance(item, kt.engine.hyperparameters.Float) and item.step is None:
            raise InvalidParameterError(
                f"`search.algorithm` 'grid' needs a step for every float hyperparameter; "
                f"'{item.name}' is continuous (fix it in model.params, or use another algorithm). "
                f"Received: search.algorithm='grid'"
            )


def _trials_frame(oracle):
    import pandas as pd

    rows = []
    for trial_id in sorted(oracle.trials):
        trial = oracle.trials[trial_id]
        row = {"trial_id": trial_id, "status": trial.status, "score": trial.score}
        row.update({f"hp:{k}": v for k, v in trial.hyperparameters.values.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def _progress_printer(total, objective, budget, verbose):
    best = {"score": None}
    direction_max = objective.split("val_", 1)[-1] in ("accuracy", "auc")
    started = time.monotonic()

    def report(trial, result, seconds, worker=None):
        score = result.get("score")
        if score is not None and (best["score"] is None or
                                  (score > best["score"] if direction_max else score < best["score"])):
            best["score"] = score
        shown = "failed" if trial.status != "COMPLETED" else f"{objective}={score:.4f}"
        left = ""
        if budget:
            left = f" | budget left {max(0.0, budget - (time.monotonic() - started)):.0f}s"
        best_text = "n/a" if best["score"] is None else f"{best['score']:.4f}"
        where = f" on {worker}" if worker else ""
        print(f"trial {int(trial.trial_id) + 1}/{total} {shown} in {seconds:.1f}s{where} | best {best_text}{left}",
              flush=True)

    return report


def search(data, *, families, params=None, algorithm="random", objective=None, max_trials=10,
           max_epochs=10, time_budget=None, seed=0, cv_folds=None, batch_sizes=(32,),
           max_consecutive_failures=3, early_stopping_patience=None, tune_training=True,
           directory="zoo_search", tracking_uri=None, experiment="keras-zoo", tracking=True,
           register_model=None, fingerprint=None, verbose=False, progress=True, retrain=True,
           hypermodel=None, class_weight=None, transfer=None, serve=None, worker=None):
    """Search the catalog for the best configuration on `data` (a `zoo.data.Dataset`).

    Every check runs before anything is written. Running the same search again with the same
    `directory` resumes it: finished trials are kept, the parent MLflow run is reused, runs a
    killed process left RUNNING are closed as KILLED.

    `hypermodel` replaces the one built from `families`, `params`, `class_weight` and
    `transfer` (see `ZooHyperModel`): a `ZooHyperModel` subclass, e.g. with its own `fit`.

    Distributed search (`tuning.distributed`): on the chief, `serve(tuner, ...)` replaces
    `tuner.search` and serves the oracle to the workers until every trial has ended; everything
    else (parent run, state file, resume, retraining the best) is as in one process. On a worker,
    `worker` (a `WorkerLink` that has joined the chief) runs the trials the chief hands out, logging
    them under the chief's parent run; it returns None.

    Returns:
        SearchResult with the retrained best model, its hyperparameters, the trials table and
        the MLflow parent run id.

    Example:
        >>> from zoo.data import load_dataset
        >>> result = search(load_dataset("iris"), families=["mlp"], max_trials=3, max_epochs=5,
        ...                 directory="out/search", tracking_uri="sqlite:///mlflow.db")
    """
    from tuning import space, tracking as tracking_module

    # === checks, before TensorFlow is imported: nothing is written until all pass ===
    task = data.task
    families = [families] if isinstance(families, str) else list(families)
    if hypermodel is None and transfer is None:
        families = space.check_families(families, input_shape=data.input_shape,
                                        num_outputs=data.num_outputs, task=task, params=params)
    custom = hypermodel is not None or transfer is not None  # spaces known only to Keras Tuner
    if hypermodel is not None:
        families = hypermodel.families
    objective = objective or default_objective(task)
    check_objective(objective, task)
    if objective.startswith("val_") and not cv_folds and len(data.X_val) == 0:
        raise InvalidParameterError(
            f"`search.objective` {objective!r} needs a validation split (data.val_size > 0) or "
            f"cv_folds. Received: data.val_size=0"
        )
    check_cv_folds(cv_folds, np.concatenate([data.y_train, data.y_val]), task,
                   len(data.X_train) + len(data.X_val))
    if algorithm not in ("random", "grid", "bayesian", "hyperband", "evolution"):
        from zoo.errors import unknown_name

        raise unknown_name("search.algorithm", algorithm,
                           ("random", "grid", "bayesian", "hyperband", "evolution"))
    if algorithm == "grid" and not custom:
        space.check_grid(families, params, tune_training)
    check_writable_dir(directory, "out")
    uri = tracking_module.resolve_uri(tracking_uri) if tracking else None
    if tracking:
        tracking_module.check_reachable(uri)

    import keras

    from tuning import oracles
    from tuning.hypermodel import ZooHyperModel
    from tuning.tuner import ZooTuner, objective_direction

    if hypermodel is None:  # checks that need Keras: the transfer source, the class weights
        hypermodel = ZooHyperModel(families, input_shape=data.input_shape,
                                   num_outputs=data.num_outputs, task=task, params=params,
                                   batch_sizes=batch_sizes, tune_training=tune_training,
                                   class_weight=class_weight, class_names=data.class_names,
                                   transfer=transfer)
        families = hypermodel.families
    if algorithm == "grid" and custom:
        check_grid(hypermodel)
    import keras_tuner as kt

    def make_oracle():
        return oracles.make_oracle(algorithm, objective=kt.Objective(objective, objective_direction(objective)),
                                   max_trials=max_trials, max_epochs=max_epochs, seed=seed,
                                   time_budget=time_budget,
                                   max_consecutive_failures=max_consecutive_failures)

    def make_tuner(oracle, tracker, parent_id, overwrite, progress_report):
        return ZooTuner(
            oracle=oracle, hypermodel=hypermodel, directory=directory, project_name="trials",
            tracker=tracker, parent_run_id=parent_id, algorithm=algorithm, max_epochs=max_epochs,
            cv_folds=cv_folds, seed=seed, early_stopping_patience=early_stopping_patience,
            fit_verbose=2 if verbose else 0, overwrite=overwrite, progress=progress_report)

    fit_args = (data.X_train, data.y_train)
    fit_kwargs = {"validation_data": (data.X_val, data.y_val) if len(data.X_val) else None,
                  "verbose": 0}  # our own progress line per trial replaces Keras Tuner's
    if worker is not None:  # the chief owns the parent run, the state file and the oracle
        # a worker's folder is scratch: a dead server fails its trials instead of journaling
        tracker = tracking_module.Tracker(uri, experiment) if tracking else None
        worker.run(lambda: make_tuner(make_oracle(), tracker, worker.parent_run_id, True, None),
                   fit_args, fit_kwargs)
        return None

    state_path = os.path.join(directory, STATE_FILE)
    state = None
    if os.path.isfile(state_path):
        with open(state_path) as handle:
            state = json.load(handle)
        if fingerprint and state.get("fingerprint") != fingerprint:
            raise InvalidParameterError(
                f"`out` holds a search with a different configuration; use another --out to "
                f"start a new one. Received: out={directory!r}"
            )

    # === search ===
    os.makedirs(directory, exist_ok=True)
    oracle = make_oracle()
    tracker = parent_id = None
    if tracking:
        replayed = tracking_module.replay_journal(directory)
        if replayed and progress:
            print(f"replayed {replayed} tracking writes kept while the server was down", flush=True)
        tracker = tracking_module.Tracker(uri, experiment, journal_dir=directory)
        resume_id = state.get("parent_run_id") if state and state.get("tracking_uri") == uri else None
        parent_id = tracker.start_parent(
            name=f"search-{'-'.join(families)}-{algorithm}", run_id=resume_id,
            params={"algorithm": algorithm, "families": ",".join(families), "objective": objective,
                    "max_trials": max_trials, "max_epochs": max_epochs, "seed": seed,
                    "cv_folds": cv_folds, "time_budget": time_budget, "task": task,
                    "dataset": data.name, **{f"fixed.{k}": v for k, v in (params or {}).items()}},
            tags={"zoo.kind": "search", "zoo.algorithm": algorithm, "zoo.host": platform.node()})
        if resume_id:
            killed = tracker.close_stale_trials(parent_id)
            if killed and progress:
                print(f"resuming: closed {len(killed)} run(s) left RUNNING as KILLED", flush=True)
    with open(state_path + ".tmp", "w") as handle:
        json.dump({"fingerprint": fingerprint, "parent_run_id": parent_id, "tracking_uri": uri,
                   "experiment": experiment}, handle)
    os.replace(state_path + ".tmp", state_path)

    tuner = make_tuner(oracle, tracker, parent_id, state is None,
                       _progress_printer(max_trials, objective, time_budget, verbose) if progress else None)
    oracle.start_budget(time_budget)  # the budget counts from the first trial, after set-up
    started = time.monotonic()
    try:
        if serve is not None:
            serve(tuner, tracker=tracker, parent_run_id=parent_id, tracking_uri=uri,
                  experiment=experiment, progress=tuner.progress)
        else:
            tuner.search(*fit_args, **fit_kwargs)
    except RuntimeError as error:
        if "consecutive failures" not in str(error):
            raise
        if tracker:
            tracker.client.set_terminated(parent_id, status="FAILED")
        reason = str(error).strip().splitlines()[-1]
        raise SearchFailed(
            f"search stopped: {max_consecutive_failures} consecutive trials failed (last: {reason})"
        ) from None
    search_seconds = time.monotonic() - started

    trials = _trials_frame(oracle)
    best_trials = oracle.get_best_trials(1)
    if not best_trials:
        if tracker:
            tracker.client.set_terminated(parent_id, status="FAILED")
        if not len(trials) and time_budget:
            raise SearchFailed(f"the time budget ({time_budget:g} s) ran out before the first trial")
        raise SearchFailed("search finished with no successful trial")
    best = best_trials[0]
    best_values = dict(best.hyperparameters.values)

    # === retrain the best configuration and record it ===
    model, history = None, None
    if retrain:
        keras.backend.clear_session()
        keras.utils.set_random_seed(seed)
        model = hypermodel.build(best.hyperparameters)
        # the full epoch budget (Hyperband's best trial may have had a short bracket), keeping
        # the weights of the best validation epoch
        callbacks = []
        if len(data.X_val):
            monitor = objective if objective.startswith("val_") else f"val_{objective}"
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor=monitor, mode=objective_direction(objective),
                patience=early_stopping_patience or max_epochs, restore_best_weights=True))
        history = hypermodel.fit(best.hyperparameters, model, data.X_train, data.y_train,
                                 validation_data=(data.X_val, data.y_val) if len(data.X_val) else None,
                                 epochs=max_epochs, callbacks=callbacks,
                                 verbose=2 if verbose else 0)
    result = SearchResult(tracker=tracker, best_model=model, best_hyperparameters=best_values, best_score=best.score,
                          objective=objective, trials=trials, run_id=parent_id, tracking_uri=uri,
                          directory=directory, history=history,
                          family=hypermodel.family_of(best_values))
    if tracker:
        _log_search_artifacts(tracker, result, data, register_model, search_seconds, tuner.fit_seconds)
    return result


class SearchFailed(JobFailed):
    """The search could not produce a model (every trial failed, or too many in a row)."""


def _log_search_artifacts(tracker, result, data, register_model, search_seconds, fit_seconds):
    import shutil
    import tempfile

    import mlflow

    from tuning import tracking as tracking_module

    parent = result.run_id
    with tempfile.TemporaryDirectory() as folder:
        trials_path = os.path.join(folder, "trials.csv")
        result.trials.to_csv(trials_path, index=False)
        best_path = os.path.join(folder, "best_hyperparameters.json")
        with open(best_path, "w") as handle:
            json.dump(result.best_hyperparameters, handle, indent=2, default=str)
        tracker.log_artifact(parent, trials_path)
        tracker.log_artifact(parent, best_path)
    tracker.log_metrics(parent, {"best_score": result.best_score, "search_seconds": search_seconds,
                                 "fit_seconds": fit_seconds,
                                 "trials_completed": int((result.trials["status"] == "COMPLETED").sum()),
                                 "trials_failed": int((result.trials["status"] != "COMPLETED").sum())})
    tracker.client.set_tag(parent, "zoo.best_family", result.family)
    if result.best_model is not None:
        from mlflow.models import infer_signature

        sample = np.asarray(data.X_train[:4])
        # a signature, not input_example: mlflow.keras.save_model writes the example before it
        # creates the model folder (FileNotFoundError in MLflow 3.x)
        signature = infer_signature(sample, np.asarray(result.best_model.predict(sample, verbose=0)))
        try:
            if tracker.offline:
                raise ConnectionError("tracking server offline")
            mlflow.set_tracking_uri(result.tracking_uri)
            with mlflow.start_run(run_id=parent):
                mlflow.keras.log_model(result.best_model, name="best_model", signature=signature,
                                       registered_model_name=register_model,
                                       pip_requirements=_requirements())
        except Exception:  # noqa: BLE001 - a dead server: keep the MLflow model for the replay
            if not tracker.offline and not tracking_module.server_down(result.tracking_uri):
                raise
            folder = os.path.join(result.directory, "best_model_mlflow")
            shutil.rmtree(folder, ignore_errors=True)
            mlflow.keras.save_model(result.best_model, folder, signature=signature,
                                    pip_requirements=_requirements())
            tracker.client.log_artifacts(parent, folder, "best_model")
    tracker.client.set_terminated(parent, status="FINISHED")


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


def run_search(config, out_dir, *, verbose=False, retrain=True, serve=None, worker=None,
               directory=None):
    """Load the data of a `RunConfig` and search as it says; returns `(SearchResult, Dataset)`.

    `serve` and `worker` are `search`'s, for the distributed roles; `directory` replaces
    `<out_dir>/search` (a worker's scratch folder)."""
    from zoo.data import load_dataset

    if worker is None:
        check_writable_dir(out_dir, "out")
    data_config = config.data
    data = load_dataset(data_config.source, target=data_config.target, shape=data_config.shape,
                        task=config.task, test_size=data_config.test_size,
                        val_size=data_config.val_size, seed=data_config.seed,
                        scale=data_config.scale)
    search_config = config.search
    tracking = config.tracking
    result = search(
        data, families=config.model.family_names, params=config.model.params,
        algorithm=search_config.algorithm, objective=search_config.objective,
        max_trials=search_config.max_trials, max_epochs=search_config.max_epochs,
        time_budget=search_config.time_budget, seed=search_config.seed,
        cv_folds=search_config.cv_folds, batch_sizes=search_config.batch_sizes,
        max_consecutive_failures=search_config.max_consecutive_failures,
        early_stopping_patience=search_config.early_stopping_patience,
        tune_training=search_config.tune_training, class_weight=config.model.class_weight,
        transfer=config.model.transfer, directory=directory or os.path.join(out_dir, "search"),
        tracking_uri=worker.tracking_uri if worker else tracking.uri,
        experiment=worker.experiment if worker else tracking.experiment,
        tracking=bool(worker.tracking_uri) if worker else tracking.enabled,
        register_model=tracking.register_model, fingerprint=config.fingerprint(),
        verbose=verbose, retrain=retrain, serve=serve, worker=worker)
    return result, data
