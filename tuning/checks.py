"""The checks of a search that run before TensorFlow is imported: nothing is written until all
pass. Each refusal is one line naming the option and the value received."""

import os

import numpy as np

from tuning import deploy
from tuning.options import check_algorithm, check_objective, check_pruner, default_objective
from zoo._paths import check_writable_dir
from zoo.errors import InvalidParameterError
from zoo.tasks import CLASSIFICATION_TASKS


def objective_of(options, task):
    """The metric trials are scored by: the first of several objectives, else the option, else
    the task's default."""
    if options.objectives:
        return options.objectives[0]
    return options.objective or default_objective(task)


def check_search(data, options, *, custom, tracker_module, uri):
    """Every check of a search's options against its data; returns the families searched."""
    from tuning import space

    families = list(options.families) if options.families else space.families_for(data)
    if not custom:
        families = space.check_families(families, input_shape=feature_shape(data),
                                        num_outputs=data.num_outputs, task=data.task,
                                        params=options.params)
    objective = objective_of(options, data.task)
    deploy.check_deployment(options.constraints, options.objectives, options.select,
                            algorithm=options.algorithm, objective=options.objective, task=data.task)
    check_objective(objective, data.task)
    if objective.startswith("val_") and not cv_folds_for(data, options) and len(data.X_val) == 0:
        raise InvalidParameterError(
            f"`search.objective` {objective!r} needs a validation split (data.val_size > 0) "
            f"or cv_folds. Received: data.val_size=0"
        )
    if options.cv_folds and hasattr(data.X_train, "paths"):  # folds would load every image
        raise InvalidParameterError(
            f"`search.cv_folds` is not available for images streamed from disk; trials are scored "
            f"on the `data.val_size` held out. Received: search.cv_folds={options.cv_folds}")
    check_cv_folds(options.cv_folds, np.concatenate([data.y_train, data.y_val]), data.task,
                   len(data.X_train) + len(data.X_val))
    check_algorithm(options.algorithm)
    check_pruner(options.pruner)
    check_ensemble(options)
    if options.algorithm == "grid" and not custom:
        space.check_grid(families, options.params, options.tune_training)
    check_writable_dir(options.directory, "out")
    if options.tracking:
        tracker_module.check_reachable(uri)
    return families


def check_ensemble(options):
    """An ensemble needs as many trials as members, and one score per trial (the costs of a
    deployment-aware search are measured per trial, not for their average)."""
    from tuning.ensemble import check_ensemble_size
    from tuning.options import trials_bound

    check_ensemble_size(options.ensemble_size, trials_bound(options.max_trials, options.time_budget))
    if options.ensemble_size > 1 and (options.constraints or options.objectives):
        raise InvalidParameterError(
            f"`search.ensemble_size` above 1 does not combine with `search.constraints` or "
            f"`search.objectives` (their costs are measured per trial, not for an average). "
            f"Received: search.ensemble_size={options.ensemble_size}")


def feature_shape(data):
    """The input shape of the catalog model: after the preprocessing the data's model carries."""
    return tuple(getattr(data, "feature_shape", data.input_shape))


AUTO_FOLDS = 5
AUTO_BELOW = 1000  # rows: chosen on the tuning tables of benchmarks/tabular_quality.py
# replaces AUTO_BELOW where `search.cv_below` is not set (the test suite's tiny tables keep one
# validation split with 0; its tests of the automatic folds set the option)
CV_BELOW_ENV = "KERAS_ZOO_CV_BELOW"


def cv_below(options):
    """The row count below which a table's trials are cross-validated automatically."""
    if options.cv_below is not None:
        return options.cv_below
    return int(os.environ.get(CV_BELOW_ENV, AUTO_BELOW))


def cv_folds_for(data, options):
    """The folds each trial is scored on: `cv_folds` when set; else, for a table (rows of
    features, not images or windows) of fewer training + validation rows than `cv_below`,
    `AUTO_FOLDS` (at most the smallest class's count), since choosing among many trials on a
    few dozen validation rows overfits them; else None (the validation split)."""
    if options.cv_folds:
        return options.cv_folds
    if hasattr(data.X_train, "paths") or np.ndim(data.X_train) != 2:
        return None
    rows = len(data.X_train) + len(data.X_val)
    if rows >= cv_below(options):
        return None
    folds = AUTO_FOLDS
    if data.task in CLASSIFICATION_TASKS:
        y = np.concatenate([data.y_train, data.y_val]).astype("int64")
        folds = min(folds, int(np.bincount(y).min()))
    return folds if folds >= 2 else None


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
