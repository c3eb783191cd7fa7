"""`AutoModel`: the search of the catalog as a scikit-learn estimator, and the engine of `zoo run`.

Its parameters are the options declared in `tuning.options` that are offered at the AutoModel
door, with their declared defaults (the config's defaults), plus `directory`, `warm_start` and
`verbose`. `AutoClassifier` and `AutoRegressor` say which kind of estimator they are before
`fit`, as `cross_val_score`'s stratified folds and scikit-learn's scorers need."""

import contextlib
import hashlib
import inspect
import os
import shutil
import tempfile

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from export._options import FORMATS
from tuning.options import AUTOMODEL, flat_values, nest, parameters, search_options, validate
from zoo.errors import InvalidParameterError
from zoo.tasks import CLASSIFICATION_TASKS

# the AutoModel door's own parameters, besides the declared options
OWN_PARAMETERS = {
    "directory": (None, "where the search keeps its trials: a fresh temporary folder when None "
                        "(removed after `fit` unless `warm_start`); a named folder that holds a "
                        "search of the same options and rows resumes it"),
    "warm_start": (False, "resume the previous `fit`'s search instead of starting a fresh one"),
    "verbose": (0, "0 silent, 1 one line per trial, 2 also Keras's epochs and library logs"),
}


def _signature():
    """`AutoModel.__init__`'s signature: keyword-only, every default a scikit-learn friendly one
    (tuples, not lists)."""
    found = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for name, item in parameters(AUTOMODEL).items():
        default = tuple(item.default) if isinstance(item.default, list) else item.default
        found.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default))
    for name, (default, _) in OWN_PARAMETERS.items():
        found.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default))
    return inspect.Signature(found)


def _init(self, **params):
    for name, parameter in list(_init.__signature__.parameters.items())[1:]:
        setattr(self, name, params.pop(name, parameter.default))
    if params:
        raise TypeError(f"AutoModel got unexpected keyword arguments: {', '.join(sorted(params))}")


_init.__signature__ = _signature()


def _parameters_doc():
    lines = [f"    {name}: {item.help} (default {item.default!r})"
             for name, item in parameters(AUTOMODEL).items()]
    lines += [f"    {name}: {help} (default {default!r})" for name, (default, help) in OWN_PARAMETERS.items()]
    return "\n".join(lines)


class AutoModel(BaseEstimator):
    """Search the catalog for a model of raw data; predict, evaluate and export it.

    `fit` takes numpy arrays, a DataFrame with `y` a column name or a Series, or a CSV path with
    `y` its target column, and starts a fresh search each time (see `directory`, `warm_start`).
    The preprocessing (normalization, category lookups, imputation, date parts, target unscaling)
    is fitted on the training rows and lives inside the model, so `best_model_` and every exported
    artifact take the same raw rows `fit` took.

    Parameters (keyword-only; declared once in `tuning.options`, the config's keys):
    {parameters}

    Example:
        >>> from sklearn.datasets import load_breast_cancer
        >>> X, y = load_breast_cancer(return_X_y=True)
        >>> model = AutoModel(max_trials=2, max_epochs=10, tracking=False)
        >>> model.fit(X, y).score(X, y)
    """

    __init__ = _init
    _estimator_type_ = None  # AutoClassifier / AutoRegressor fix it; AutoModel follows `task`

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, RegressorTags

        tags = super().__sklearn_tags__()
        kind = self._kind()
        tags.estimator_type = kind
        if kind == "classifier":
            tags.classifier_tags = ClassifierTags(multi_class=True)
        elif kind == "regressor":
            tags.regressor_tags = RegressorTags()
        tags.input_tags.allow_nan = True  # imputed inside the model
        tags.input_tags.string = True  # a frame's categories
        tags.input_tags.categorical = True
        return tags

    def _kind(self):
        if self._estimator_type_ is not None:
            return self._estimator_type_
        task = getattr(self, "task", None)
        if task is None:
            return None
        return "classifier" if task in CLASSIFICATION_TASKS else "regressor"

    @classmethod
    def from_config(cls, config, **own):
        """The AutoModel a run config describes (`zoo run`, `zoo tune`); `own` sets `directory`,
        `warm_start`, `verbose`."""
        model = cls(**flat_values(config, AUTOMODEL), **own)
        model._model_options = config.model  # the config-only ones: a named model, transfer
        return model

    # === fitting ==================================================================================
    def fit(self, X, y=None, *, validation_data=None):
        """Search, retrain the best configuration, keep it; returns `self`.

        `validation_data`: `(X_val, y_val)`, the rows the trials (and the baseline) are scored on
        instead of a `val_size` share of `X`; with a frame, `y_val` may name its target column."""
        from zoo._backend import check_backend

        check_backend()
        options = self._options()
        with self._quiet():
            data = self._dataset(X, y, validation_data, options)
            self._search(data, options, store_here=True)
            self._compare_with_baseline(data, options.data.seed)
        return self

    def _compare_with_baseline(self, data, seed):
        """`baseline_`: the simplest strong baseline (`evaluation.baseline`) fitted on the training
        rows and scored beside the model on the validation rows. The search chose the model on
        those rows, so the model's figure there is optimistic: a model that loses to the baseline
        even there loses. `zoo run` compares the two on its untouched test split instead."""
        from evaluation.baseline import score_baseline

        baseline = score_baseline(data, seed=seed, fit_on=("train",), score_on="val")
        # with `refit` the model has trained on the validation rows: its validation fit speaks
        outputs = self.search_result_.validation_predictions
        if outputs is None and baseline is not None:
            outputs = self.model_.predict(data.X_val, verbose=0)
        self.baseline_ = None if baseline is None else baseline.against(
            _model_score(outputs, data.y_val, baseline.metric, data.task))
        self.baseline_score_ = None if baseline is None else baseline.score

    def _options(self):
        """The parameters checked against the declaration (the one place every door checks)."""
        values = {name: getattr(self, name) for name in parameters(AUTOMODEL)}
        nested = nest(values, AUTOMODEL)
        model = getattr(self, "_model_options", None)
        if model is not None:  # from a config: its model section as it was given
            nested["model"] = {**model.model_dump(exclude_unset=True), **{
                k: v for k, v in nested.get("model", {}).items() if k != "families"}}
        return validate(nested, door=AUTOMODEL)

    def _search(self, data, options, runner=None, store_here=False):
        """The search on a `zoo.data.Dataset` (`fit`, and `zoo run`'s data with its test split).

        `store_here`: MLflow's default store is the working folder's `mlflow.db` as it is now
        (MLflow keeps the engine of a relative sqlite URI for the life of the process, so a fit
        after a `chdir` would log into the first folder's store)."""
        from tuning import search

        directory, temporary = self._directory()
        uri = options.tracking.uri
        if store_here and uri is None and not os.environ.get("MLFLOW_TRACKING_URI"):
            uri = "sqlite:///" + os.path.abspath("mlflow.db")
        try:
            result = search(data, search_options(
                options, directory, fingerprint=options.fingerprint(extra=_rows_hash(data)),
                verbose=self.verbose >= 2, progress=self.verbose >= 1), tracking_uri=uri,
                runner=runner)
        except BaseException:
            if temporary:
                shutil.rmtree(directory, ignore_errors=True)
            raise
        if temporary and not self.warm_start:
            shutil.rmtree(directory, ignore_errors=True)
            directory = None
        self._set_fitted(result, data, directory)
        return result

    def _directory(self):
        """(the search folder, whether it is a temporary one of this estimator's)."""
        if self.directory is not None:
            return os.fspath(self.directory), False
        previous = getattr(self, "search_directory_", None)
        if self.warm_start and previous and os.path.isdir(previous):
            return previous, True
        return tempfile.mkdtemp(prefix="keras_zoo_search_"), True

    def _set_fitted(self, result, data, directory):
        self.search_result_, self.data_, self.model_ = result, data, result.best_model
        self.search_directory_ = directory
        self.best_model_ = data.raw_model(result.best_model)
        self.best_hyperparameters_ = result.best_hyperparameters
        self.best_score_, self.trials_, self.run_id_ = result.best_score, result.trials, result.run_id
        self.costs_, self.front_ = result.costs, result.front  # None unless the search asked for them
        self.task_ = data.task
        self.schema_ = data.schema
        if data.task in CLASSIFICATION_TASKS and not hasattr(self, "classes_"):
            self.classes_ = np.asarray(data.class_names)

    def _dataset(self, X, y, validation_data, options):
        from zoo.data import Dataset, dataset_from_arrays, dataset_from_frame, read_csv

        for name in ("classes_", "n_features_in_", "feature_names_in_"):
            self.__dict__.pop(name, None)  # a refit learns them again
        if isinstance(X, Dataset):  # `zoo run`: loaded from its config, with a test split
            return X
        task = self._task_for(y, options.task)
        split = {"task": task, "test_size": 0.0, "seed": options.data.seed,
                 "val_size": 0.0 if validation_data is not None else options.data.val_size}
        from zoo.images import is_image_source, load_images

        if is_image_source(X):  # a folder of class subfolders, a CSV of image paths (`y` its label
            if validation_data is not None:  # column) or a tf.data.Dataset of (image, label)
                raise InvalidParameterError(
                    "`validation_data` is not taken with images: `val_size` of the files is held out")
            data = load_images(X, target=y, image_size=options.data.image_size, field="X", **split)
            if data.task in CLASSIFICATION_TASKS:
                self.classes_ = np.asarray(data.class_names)
            return data
        frame = _as_frame(X, y, read_csv)
        if frame is not None:
            features = frame[0].drop(columns=[frame[1]])
            self.feature_names_in_ = np.asarray(features.columns, dtype=object)
            self.n_features_in_ = features.shape[1]
            labels = frame[0][frame[1]].dropna().to_numpy()
            data = dataset_from_frame(frame[0], target=frame[1], columns=options.data.columns,
                                      name="frame", **split)
        else:
            if y is None:
                raise InvalidParameterError("`y` is required with array inputs. Received: y=None")
            X, labels = np.asarray(X), np.asarray(y)
            self.n_features_in_ = X.shape[1] if X.ndim > 1 else 1
            data = dataset_from_arrays(X, labels, name="arrays", **split)
        if data.task in CLASSIFICATION_TASKS:  # the labels' own values and type, in the data's order
            from sklearn.preprocessing import LabelEncoder

            self.classes_ = LabelEncoder().fit(labels).classes_
        if validation_data is not None and data.inputs is not None:
            data.X_val, data.y_val = self._validation_frame(data, *validation_data)
        elif validation_data is not None:
            data.X_val, data.y_val = self._encode(data, *validation_data)
        return data

    def _validation_frame(self, data, X, y):
        """A frame's own validation rows (`y`: labels, or the frame's target column by name): its
        codes and labels, its raw inputs kept in `data.inputs` so that the baseline is scored on
        the same rows; the frame is read once."""
        from zoo.data import read_csv
        from zoo.tabular import frame_to_inputs

        frame = read_csv(X) if isinstance(X, (str, os.PathLike)) else X
        if isinstance(y, str) and hasattr(frame, "columns") and y in frame.columns:
            y = frame[y]
        inputs = frame_to_inputs(frame, data.schema)
        data.inputs["val"] = inputs
        return data.preprocessor.encode_inputs(inputs), self._labels(data, y)

    def _task_for(self, y, task):
        """The task: the parameter's, else what AutoClassifier/AutoRegressor are, else inferred."""
        if task is not None or self._estimator_type_ is None:
            return task
        if self._estimator_type_ == "regressor":
            return "regression"
        labels = y.to_numpy() if hasattr(y, "to_numpy") else y
        if isinstance(y, str) or labels is None:
            return None  # a frame's column: inferred with it
        return "binary" if len(np.unique(np.asarray(labels))) == 2 else "multiclass"

    def _quiet(self):
        """TensorFlow's, Keras's and MLflow's log lines and warnings only when `verbose` >= 2."""
        from keras_zoo._logs import quiet

        return contextlib.nullcontext() if self.verbose >= 2 else quiet()

    # === using the fitted model ===================================================================
    def _features(self, X, data=None):
        """What the trained model takes: the raw arrays, or a frame's codes matrix."""
        data = data or self.data_
        if data.image_input is not None and isinstance(X, (str, os.PathLike)):  # image files
            from zoo.images import read_pixels

            return read_pixels(X, data.preprocessor.feature_shape)[1]
        if data.schema is None:
            return np.asarray(X, dtype="float32")
        from zoo.data import read_csv

        frame = read_csv(X) if isinstance(X, (str, os.PathLike)) else X
        return data.preprocessor.encode_frame(frame)

    def _encode(self, data, X, y):
        return self._features(X, data), self._labels(data, y)

    @staticmethod
    def _labels(data, y):
        y = np.asarray(y)
        if data.class_names:
            lookup = {name: index for index, name in enumerate(data.class_names)}
            unknown = sorted({str(v) for v in y} - set(lookup))
            if unknown:
                raise InvalidParameterError(
                    f"`y` holds labels not seen in training. Received: {', '.join(unknown[:5])}")
            return np.asarray([lookup[str(v)] for v in y], dtype="int64")
        return y.astype("float32")

    def _outputs(self, X):
        check_is_fitted(self, "model_")
        with self._quiet():
            outputs = np.asarray(self.model_.predict(self._features(X), verbose=0))
        return outputs.reshape(len(outputs), -1)

    def predict_proba(self, X):
        check_is_fitted(self, "model_")
        if self.task_ not in CLASSIFICATION_TASKS:
            raise InvalidParameterError(f"`predict_proba` needs a classification task. Received: task={self.task_!r}")
        outputs = self._outputs(X)
        return np.hstack([1.0 - outputs, outputs]) if outputs.shape[1] == 1 else outputs

    def predict(self, X):
        """The classes in `classes_`' own values and type, or numbers in the target's units."""
        check_is_fitted(self, "model_")
        if self.task_ in CLASSIFICATION_TASKS:
            return self.classes_[self.predict_proba(X).argmax(axis=1)]
        outputs = self._outputs(X)
        return outputs[:, 0] if outputs.shape[1] == 1 else outputs

    def score(self, X, y, sample_weight=None):
        """Accuracy for classification, R² for regression (scikit-learn's conventions)."""
        from sklearn.metrics import accuracy_score, r2_score

        predicted = self.predict(X)
        if self.task_ in CLASSIFICATION_TASKS:
            return float(accuracy_score(y, predicted, sample_weight=sample_weight))
        return float(r2_score(np.asarray(y, dtype="float64"), predicted, sample_weight=sample_weight))

    def evaluate(self, X, y, *, out_dir=None):
        """The classification/regression report (`evaluation.Report`) on these rows."""
        from evaluation import evaluate_model

        check_is_fitted(self, "model_")
        features, encoded = self._encode(self.data_, X, y)
        return evaluate_model(self.model_, features, encoded, task=self.task_,
                              class_names=self.data_.class_names, out_dir=out_dir,
                              allow_missing=True)

    def export(self, directory, *, formats=FORMATS, quantize=(), samples=None, labels=None):
        """SavedModel/TFLite/ONNX (and .keras) of the model, each verified on `samples` (default:
        training rows); returns the manifest."""
        from keras_zoo.pipeline import export_artifacts

        check_is_fitted(self, "model_")
        data = self.data_
        return export_artifacts(self.model_, data, directory, formats=formats, quantize=quantize,
                                samples=data.X_train[:64] if samples is None else samples,
                                labels=labels)


class AutoClassifier(AutoModel):
    """`AutoModel` for classification: a scikit-learn classifier before `fit` (stratified folds in
    `cross_val_score`, classifier scorers)."""

    _estimator_type_ = "classifier"


class AutoRegressor(AutoModel):
    """`AutoModel` for regression: a scikit-learn regressor before `fit`."""

    _estimator_type_ = "regressor"


AutoModel.__doc__ = AutoModel.__doc__.replace("{parameters}", _parameters_doc().strip())


def _model_score(outputs, y, metric, task):
    """The value of a scikit-learn metric (by name) of a model's outputs on encoded rows."""
    import sklearn.metrics

    outputs = np.asarray(outputs).reshape(len(y), -1)
    if task in CLASSIFICATION_TASKS:
        predicted = (outputs[:, 0] > 0.5).astype("int64") if outputs.shape[1] == 1 else outputs.argmax(axis=1)
    else:
        predicted = outputs[:, 0] if outputs.shape[1] == 1 else outputs
    return float(getattr(sklearn.metrics, metric)(y, predicted))


def _rows_hash(data):
    """A hash of the rows a search is given, so a folder's search is resumed only on them."""
    digest = hashlib.sha256()
    for array in (data.X_train, data.y_train, data.X_val, data.y_val):
        if hasattr(array, "fingerprint"):  # images streamed from disk: their files, not their pixels
            digest.update(array.fingerprint().encode())
        else:
            digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(repr(data.class_names).encode())
    return digest.hexdigest()[:16]


def _as_frame(X, y, read_csv):
    """(frame, target column) for a DataFrame or CSV input, None for arrays."""
    import pandas as pd

    if isinstance(X, (str, os.PathLike)):
        X = read_csv(X)
    if not isinstance(X, pd.DataFrame):
        return None
    if isinstance(y, str):
        return X, y
    if y is None:
        raise InvalidParameterError("`y` must name the target column of the DataFrame, or be a Series. Received: y=None")
    target = getattr(y, "name", None) or "target"
    return X.assign(**{target: np.asarray(y)}), target
