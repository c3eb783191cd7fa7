"""The checks of a search that run before TensorFlow is imported: nothing is written until all
pass. Each refusal is one line naming the option and the value received."""

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
    if objective.startswith("val_") and not options.cv_folds and len(data.X_val) == 0:
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
    if options.algorithm == "grid" and not custom:
        space.check_grid(families, options.params, options.tune_training)
    check_writable_dir(options.directory, "out")
    if options.tracking:
        tracker_module.check_reachable(uri)
    return families


def feature_shape(data):
    """The input shape of the catalog model: after the preprocessing the data's model carries."""
    return tuple(getattr(data, "feature_shape", data.input_shape))


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
