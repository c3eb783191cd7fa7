"""Model diagnostics for Keras models through scikit-learn: k-fold / stratified k-fold
cross-validation, learning curves and validation curves, each a `Report` with its plot.

Keras models become scikit-learn estimators with scikeras (`KerasClassifier`/`KerasRegressor`),
so scikit-learn's own `cross_val_score`, `learning_curve` and `validation_curve` do the loops.
"""

import functools

import numpy as np

from evaluation import _checks
from evaluation import plots as _plots
from evaluation.report import Report
from zoo.errors import InvalidParameterError, InvalidTypeError
from zoo.tasks import SUPERVISED_TASKS

# scikeras fit options; any other hyperparameter is routed to the model builder
FIT_PARAMS = ("epochs", "batch_size")
SPLITTERS = ("auto", "kfold", "stratified")


@functools.lru_cache(maxsize=None)
def _wrappers():
    """scikeras' wrappers with scikit-learn >= 1.6 estimator-type tags.

    scikeras 0.13 lists `BaseEstimator` before `ClassifierMixin`/`RegressorMixin`, so under the
    tags API of scikit-learn 1.6+ `is_classifier(KerasClassifier())` is False: scorers such as
    'roc_auc' then get both probability columns and fail. Setting the type here restores them.
    """
    from scikeras.wrappers import KerasClassifier, KerasRegressor
    from sklearn.utils import ClassifierTags, RegressorTags

    class Classifier(KerasClassifier):
        def __sklearn_tags__(self):
            tags = super().__sklearn_tags__()
            tags.estimator_type = "classifier"
            tags.classifier_tags = tags.classifier_tags or ClassifierTags()
            return tags

    class Regressor(KerasRegressor):
        def __sklearn_tags__(self):
            tags = super().__sklearn_tags__()
            tags.estimator_type = "regressor"
            tags.regressor_tags = tags.regressor_tags or RegressorTags()
            return tags

    return Classifier, Regressor


def make_estimator(model, *, task, params=None, epochs=10, batch_size=32, seed=0):
    """A scikit-learn estimator that builds a fresh Keras model for every fit.

    Args:
        model: a catalog model name (built with `zoo.create_model`), or a callable
            `build(*, input_shape, num_outputs, task, **params) -> compiled keras.Model`.
        task: 'binary', 'multiclass' or 'regression'.
        params: builder and training parameters, e.g. `{"hidden_units": (16,), "dropout_rate": 0.1}`.
    """
    if task not in SUPERVISED_TASKS:
        raise InvalidParameterError(
            f"`task` must be 'binary', 'multiclass' or 'regression' for diagnostics. Received: task={task!r}"
        )
    build = _builder(model)

    def build_for_sklearn(meta, compile_kwargs, params, **model_params):
        # scikeras passes `meta` (shapes, classes seen in this fold) to size the model
        if task == "regression":
            num_outputs = meta["n_outputs_expected_"]
        else:
            num_outputs = 1 if task == "binary" else meta["n_classes_"]
        return build(input_shape=tuple(meta["X_shape_"][1:]), num_outputs=num_outputs, task=task, **model_params)

    routed = {f"model__{k}": v for k, v in (params or {}).items()}
    classifier, regressor = _wrappers()
    wrapper = regressor if task == "regression" else classifier
    return wrapper(model=build_for_sklearn, epochs=epochs, batch_size=batch_size, verbose=0,
                   random_state=seed, **routed)


def _builder(model):
    if isinstance(model, str):
        import zoo

        zoo.get_spec(model)  # an unknown name fails here, with its suggestion

        def build(**kwargs):
            return zoo.create_model(model, **kwargs)

        return build
    if callable(model):
        return model
    raise InvalidTypeError(
        f"`model` must be a catalog model name or a build function. Received: {type(model).__name__}"
    )


def _splitter(task, folds, cv, seed):
    from sklearn.model_selection import KFold, StratifiedKFold

    if cv not in SPLITTERS:
        raise InvalidParameterError(f"`cv` must be one of {', '.join(SPLITTERS)}. Received: cv={cv!r}")
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise InvalidParameterError(f"`folds` must be an integer >= 2. Received: folds={folds!r}")
    stratified = cv == "stratified" or (cv == "auto" and task != "regression")
    if stratified and task == "regression":
        raise InvalidParameterError("`cv` 'stratified' needs class labels. Received: cv='stratified' with task='regression'")
    splitter = StratifiedKFold if stratified else KFold
    return splitter(n_splits=folds, shuffle=True, random_state=seed)


def _scoring(task, scoring):
    return scoring or ("r2" if task == "regression" else "accuracy")


def _data(X, y, task):
    X, y = _checks.check_samples(X), _checks.check_samples(y, "y")
    if len(X) != len(y):
        raise InvalidParameterError(f"`X` and `y` must have the same length. Received: len(X)={len(X)}, len(y)={len(y)}")
    return X.astype("float32"), (y.astype("float32") if task == "regression" else y)


def cross_validate(model, X, y, *, task, params=None, folds=5, cv="auto", scoring=None, epochs=10,
                   batch_size=32, seed=0):
    """Cross-validation estimate (mean ± std over folds) of a catalog configuration.

    `cv`: 'kfold', 'stratified', or 'auto' (stratified for classification). `scoring`: any
    scikit-learn scorer name; default 'accuracy' for classification, 'r2' for regression.

    Example:
        >>> report = cross_validate("mlp", X, y, task="multiclass", params={"hidden_units": (16,)}, folds=5)
        >>> report.metrics["cv_mean"], report.metrics["cv_std"]
    """
    from sklearn.model_selection import cross_val_score

    X, y = _data(X, y, task)
    estimator = make_estimator(model, task=task, params=params, epochs=epochs, batch_size=batch_size, seed=seed)
    splitter = _splitter(task, folds, cv, seed)
    score_name = _scoring(task, scoring)
    scores = cross_val_score(estimator, X, y, cv=splitter, scoring=score_name, error_score="raise")
    report = Report(kind="cross_validation", task=task, meta={
        "model": model if isinstance(model, str) else getattr(model, "__name__", "build"),
        "folds": folds, "splitter": type(splitter).__name__, "scoring": score_name, "epochs": epochs,
        "samples": len(X)})
    report.metrics = {"cv_mean": float(np.mean(scores)), "cv_std": float(np.std(scores))}
    import pandas as pd

    report.tables["fold_scores"] = pd.DataFrame({score_name: scores}, index=pd.RangeIndex(1, folds + 1, name="fold"))
    report.plots["cross_validation_scores"] = _plots.cross_validation_scores(scores, score_name=score_name)
    return report


def learning_curve(model, X, y, *, task, params=None, train_sizes=(0.25, 0.5, 0.75, 1.0), folds=3, cv="auto",
                   scoring=None, epochs=10, batch_size=32, seed=0):
    """Score against training-set size (scikit-learn's `learning_curve`), with its plot."""
    from sklearn import model_selection

    X, y = _data(X, y, task)
    estimator = make_estimator(model, task=task, params=params, epochs=epochs, batch_size=batch_size, seed=seed)
    score_name = _scoring(task, scoring)
    sizes, train_scores, test_scores = model_selection.learning_curve(
        estimator, X, y, train_sizes=list(train_sizes), cv=_splitter(task, folds, cv, seed), scoring=score_name,
        error_score="raise", shuffle=True, random_state=seed)
    import pandas as pd

    report = Report(kind="learning_curve", task=task, meta={"folds": folds, "scoring": score_name, "epochs": epochs})
    report.tables["learning_curve"] = pd.DataFrame({
        "train_size": sizes, "train_mean": train_scores.mean(axis=1), "train_std": train_scores.std(axis=1),
        "validation_mean": test_scores.mean(axis=1), "validation_std": test_scores.std(axis=1)})
    report.metrics = {"final_train_score": float(train_scores[-1].mean()),
                      "final_validation_score": float(test_scores[-1].mean())}
    report.plots["learning_curve"] = _plots.learning_curve(sizes, train_scores, test_scores, score_name=score_name)
    return report


def validation_curve(model, X, y, *, task, param_name, param_range, params=None, folds=3, cv="auto",
                     scoring=None, epochs=10, batch_size=32, seed=0):
    """Score against one hyperparameter (scikit-learn's `validation_curve`), with its plot.

    `param_name` is a builder or training parameter of the model (e.g. 'dropout_rate',
    'learning_rate') or a fit option ('epochs', 'batch_size').
    """
    from sklearn import model_selection

    X, y = _data(X, y, task)
    if not isinstance(param_name, str):
        raise InvalidTypeError(f"`param_name` must be a string. Received: param_name={param_name!r}")
    values = list(param_range)
    if not values:
        raise InvalidParameterError("`param_range` must hold at least one value. Received: param_range=[]")
    estimator = make_estimator(model, task=task, params=params, epochs=epochs, batch_size=batch_size, seed=seed)
    routed = param_name if param_name in FIT_PARAMS else f"model__{param_name}"
    score_name = _scoring(task, scoring)
    train_scores, test_scores = model_selection.validation_curve(
        estimator, X, y, param_name=routed, param_range=values, cv=_splitter(task, folds, cv, seed),
        scoring=score_name, error_score="raise")
    import pandas as pd

    best = int(np.argmax(test_scores.mean(axis=1)))
    report = Report(kind="validation_curve", task=task,
                    meta={"param_name": param_name, "folds": folds, "scoring": score_name, "epochs": epochs})
    report.tables["validation_curve"] = pd.DataFrame({
        param_name: [str(v) for v in values], "train_mean": train_scores.mean(axis=1),
        "train_std": train_scores.std(axis=1), "validation_mean": test_scores.mean(axis=1),
        "validation_std": test_scores.std(axis=1)})
    report.metrics = {"best_validation_score": float(test_scores[best].mean())}
    report.meta["best_value"] = values[best]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    report.plots["validation_curve"] = _plots.validation_curve(
        param_name, values if numeric else np.arange(len(values)), train_scores, test_scores, score_name=score_name)
    return report
