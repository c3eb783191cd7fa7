"""`AutoModel`: the `zoo run` pipeline as a scikit-learn style estimator."""

import os

import numpy as np

from export._options import FORMATS
from zoo.errors import InvalidParameterError
from zoo.tasks import CLASSIFICATION_TASKS


class AutoModel:
    """Search the catalog for a model of raw data; predict, evaluate and export it.

    `fit` takes numpy arrays, a DataFrame with `y` a column name or a Series, or a CSV path with
    `y` its target column; the preprocessing (normalization, category lookups, imputation, date
    parts, target unscaling) is fitted on the training rows and lives inside the model, so
    `best_model_` and every exported artifact take the same raw rows `fit` took.

    Example:
        >>> from sklearn.datasets import load_breast_cancer
        >>> X, y = load_breast_cancer(return_X_y=True)
        >>> model = AutoModel(max_trials=2, max_epochs=10, tracking_uri="sqlite:///mlflow.db")
        >>> model.fit(X, y).score(X, y)
    """

    def __init__(self, task=None, families=("mlp",), algorithm="random", objective=None,
                 max_trials=10, max_epochs=20, time_budget=None, cv_folds=None, seed=0,
                 validation_size=0.15, columns=None, params=None, tracking_uri=None,
                 experiment="keras-zoo", tracking=True, directory="keras_zoo_search",
                 verbose=False, constraints=None, objectives=None, select=None):
        self.task, self.families, self.algorithm, self.objective = task, families, algorithm, objective
        self.max_trials, self.max_epochs, self.time_budget = max_trials, max_epochs, time_budget
        self.cv_folds, self.seed, self.validation_size = cv_folds, seed, validation_size
        self.columns, self.params = columns, params
        self.tracking_uri, self.experiment, self.tracking = tracking_uri, experiment, tracking
        self.directory, self.verbose = directory, verbose
        # deployment-aware search (tuning.deploy): limits on costs, a Pareto front, its pick
        self.constraints, self.objectives, self.select = constraints, objectives, select

    # === fitting ====================================================================================
    def fit(self, X, y=None, *, validation_data=None):
        from tuning import search

        data = self._dataset(X, y, validation_data)
        result = search(data, families=self.families, params=self.params,
                        algorithm=self.algorithm, objective=self.objective,
                        max_trials=self.max_trials, max_epochs=self.max_epochs,
                        time_budget=self.time_budget, cv_folds=self.cv_folds, seed=self.seed,
                        directory=self.directory, tracking_uri=self.tracking_uri,
                        experiment=self.experiment, tracking=self.tracking,
                        verbose=self.verbose, progress=self.verbose, constraints=self.constraints,
                        objectives=self.objectives, select=self.select)
        self.data_, self.model_ = data, result.best_model
        self.best_model_ = data.raw_model(result.best_model)
        self.best_hyperparameters_ = result.best_hyperparameters
        self.best_score_, self.trials_, self.run_id_ = result.best_score, result.trials, result.run_id
        self.costs_, self.front_ = result.costs, result.front  # None unless the search asked for them
        self.task_ = data.task
        self.classes_ = np.asarray(data.class_names) if data.class_names else None
        self.schema_ = data.schema
        return self

    def _dataset(self, X, y, validation_data):
        from zoo.data import dataset_from_arrays, dataset_from_frame, read_csv

        split = {"task": self.task, "test_size": 0.0, "seed": self.seed,
                 "val_size": 0.0 if validation_data is not None else self.validation_size}
        frame = _as_frame(X, y, read_csv)
        if frame is not None:
            data = dataset_from_frame(frame[0], target=frame[1], columns=self.columns,
                                      name="frame", **split)
        else:
            if y is None:
                raise InvalidParameterError("`y` is required with array inputs. Received: y=None")
            data = dataset_from_arrays(X, np.asarray(y), name="arrays", **split)
        if validation_data is not None:
            data.X_val, data.y_val = self._encode(data, *validation_data)
        return data

    # === using the fitted model ===================================================================
    def _features(self, X, data=None):
        """What the trained model takes: the raw arrays, or a frame's codes matrix."""
        data = data or self.data_
        if data.schema is None:
            return np.asarray(X, dtype="float32")
        from zoo.data import read_csv

        frame = read_csv(X) if isinstance(X, (str, os.PathLike)) else X
        return data.preprocessor.encode_frame(frame)

    def _encode(self, data, X, y):
        y = np.asarray(y)
        if data.class_names:
            lookup = {name: index for index, name in enumerate(data.class_names)}
            unknown = sorted({str(v) for v in y} - set(lookup))
            if unknown:
                raise InvalidParameterError(
                    f"`y` holds labels not seen in training. Received: {', '.join(unknown[:5])}")
            y = np.asarray([lookup[str(v)] for v in y], dtype="int64")
        else:
            y = y.astype("float32")
        return self._features(X, data), y

    def _outputs(self, X):
        self._check_fitted()
        outputs = np.asarray(self.model_.predict(self._features(X), verbose=0))
        return outputs.reshape(len(outputs), -1)

    def predict_proba(self, X):
        if self.task_ not in CLASSIFICATION_TASKS:
            raise InvalidParameterError(f"`predict_proba` needs a classification task. Received: task={self.task_!r}")
        outputs = self._outputs(X)
        return np.hstack([1.0 - outputs, outputs]) if outputs.shape[1] == 1 else outputs

    def predict(self, X):
        if self.task_ in CLASSIFICATION_TASKS:
            return self.classes_[self.predict_proba(X).argmax(axis=1)]
        outputs = self._outputs(X)
        return outputs[:, 0] if outputs.shape[1] == 1 else outputs

    def score(self, X, y):
        """Accuracy for classification, R² for regression (scikit-learn's conventions)."""
        from sklearn.metrics import accuracy_score, r2_score

        predicted = self.predict(X)
        if self.task_ in CLASSIFICATION_TASKS:
            return float(accuracy_score(np.asarray(y).astype(str), predicted.astype(str)))
        return float(r2_score(np.asarray(y, dtype="float64"), predicted))

    def evaluate(self, X, y, *, out_dir=None):
        """The classification/regression report (`evaluation.Report`) on these rows."""
        from evaluation import evaluate_model

        self._check_fitted()
        features, encoded = self._encode(self.data_, X, y)
        return evaluate_model(self.model_, features, encoded, task=self.task_,
                              class_names=self.data_.class_names, out_dir=out_dir,
                              allow_missing=True)

    def export(self, directory, *, formats=FORMATS, quantize=()):
        """SavedModel/TFLite/ONNX (and .keras) of the model, each verified; returns the manifest."""
        from export import export_model
        from keras_zoo.pipeline import preprocessing_description

        self._check_fitted()
        data = self.data_
        return export_model(self.model_, directory, formats=formats, quantize=quantize,
                            representative_data=data.X_train[:64], samples=data.X_train[:64],
                            preprocessing=preprocessing_description(data))

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise InvalidParameterError("`AutoModel` is not fitted yet: call `fit` first. Received: an unfitted AutoModel")


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
