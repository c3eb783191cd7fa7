"""Data loading: `.npz`, CSV (pandas, named target column) and scikit-learn's bundled datasets;
a seeded stratified train/val/test split, task inference and scaling fitted on train only."""

import dataclasses
import os

import numpy as np

from zoo._params import Int, Options, Real, check_params
from zoo.errors import InvalidParameterError, unknown_name
from zoo.tasks import SUPERVISED_TASKS

BUNDLED = ("digits", "iris", "wine", "breast_cancer", "diabetes")
TASKS = SUPERVISED_TASKS

CONSTRAINTS = {
    "shape": Options(("flat", "image")),
    "task": Options(TASKS, allow_none=True),
    "test_size": Real(0.0, 1.0, closed="neither"),
    "val_size": Real(0.0, 1.0, closed="left"),
    "seed": Int(0),
    "scale": Options(("auto", "standard", "minmax", "none")),
}


@dataclasses.dataclass
class Dataset:
    """Split arrays plus what a model needs to know about them."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    task: str
    num_outputs: int
    class_names: list = None
    feature_names: list = None
    name: str = ""

    @property
    def input_shape(self):
        return tuple(self.X_train.shape[1:])

    def describe(self):
        return {
            "name": self.name,
            "task": self.task,
            "input_shape": list(self.input_shape),
            "num_outputs": self.num_outputs,
            "train": len(self.X_train),
            "val": len(self.X_val),
            "test": len(self.X_test),
            "class_names": self.class_names,
        }


def load_arrays(source, *, target=None, shape="flat"):
    """Raw `(X, y, feature_names)` from a bundled dataset name, an `.npz` or a `.csv` path."""
    if not isinstance(source, (str, os.PathLike)):
        raise InvalidParameterError(
            f"`source` must be a bundled dataset name or a .npz/.csv path. Received: source={source!r}"
        )
    source = str(source)
    if shape == "image" and source != "digits":
        raise InvalidParameterError(
            f"`shape` 'image' is available for the bundled 'digits' only; other sources keep "
            f"their array shape. Received: shape='image' with source={source!r}"
        )
    if source in BUNDLED:
        return _load_bundled(source, shape)
    lower = source.lower()
    if lower.endswith(".npz"):
        return _load_npz(source)
    if lower.endswith(".csv"):
        return _load_csv(source, target)
    if os.sep in source or "." in source:
        raise InvalidParameterError(
            f"`source` must be a .npz or .csv file or a bundled dataset. Received: source={source!r}"
        )
    raise unknown_name("dataset", source, BUNDLED)


def _load_bundled(name, shape):
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    X = bunch.data.astype("float32")
    if name == "digits" and shape == "image":
        X = X.reshape(-1, 8, 8, 1)
    names = [str(n) for n in getattr(bunch, "feature_names", [])]
    y = bunch.target
    if hasattr(bunch, "target_names") and name != "diabetes":
        y = np.asarray(bunch.target_names)[bunch.target]
    return X, y, names


def _require_file(path):
    if not os.path.isfile(path):
        raise InvalidParameterError(f"`source` file does not exist. Received: source={path!r}")


def _load_npz(path):
    _require_file(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise InvalidParameterError(f"`source` is not a readable .npz file ({error}). Received: source={path!r}") from None
    keys = set(archive.files)
    x_key = "X" if "X" in keys else "x" if "x" in keys else None
    if x_key is None or "y" not in keys:
        raise InvalidParameterError(
            f"`source` .npz must hold arrays 'X' and 'y'. Received: arrays {sorted(keys)} in {path!r}"
        )
    X, y = archive[x_key], archive["y"]
    if len(X) != len(y):
        raise InvalidParameterError(
            f"`source` arrays X and y must have the same length. Received: len(X)={len(X)}, "
            f"len(y)={len(y)} in {path!r}"
        )
    return X, y, []


def _load_csv(path, target):
    import pandas as pd

    _require_file(path)
    try:
        frame = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise InvalidParameterError(f"`source` is not a readable CSV file ({str(error).splitlines()[0]}). Received: source={path!r}") from None
    if target is None:
        raise InvalidParameterError(f"`target` (the label column) is required for a CSV source. Received: target=None for {path!r}")
    if target not in frame.columns:
        raise InvalidParameterError(
            f"`target` must be a column of {os.path.basename(path)!r} (columns: "
            f"{', '.join(map(str, frame.columns))}). Received: target={target!r}"
        )
    if frame.empty:
        raise InvalidParameterError(f"`source` CSV has no rows. Received: source={path!r}")
    features = frame.drop(columns=[target])
    non_numeric = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if non_numeric:
        raise InvalidParameterError(
            f"`source` feature columns must be numeric (encode them first). Received: non-numeric "
            f"column {non_numeric[0]!r} in {path!r}"
        )
    if frame[target].isna().any():
        raise InvalidParameterError(
            f"`target` column has {int(frame[target].isna().sum())} missing values. Received: target={target!r}"
        )
    return features.to_numpy(dtype="float32"), frame[target].to_numpy(), [str(c) for c in features.columns]


def check_finite(X, feature_names=()):
    """Refuse NaN or inf in features, naming the first bad column when names are known."""
    bad = ~np.isfinite(X)
    if bad.any():
        flat = bad.reshape(len(X), -1)
        column = int(np.argmax(flat.any(axis=0)))
        label = feature_names[column] if column < len(feature_names) else f"feature {column}"
        raise InvalidParameterError(
            f"`X` must contain only finite values. Received: {int(bad.sum())} NaN/inf values, "
            f"first in column {label!r}"
        )


def infer_task(y, task=None):
    """The task the labels support, checked against an override: binary, multiclass, regression."""
    from sklearn.utils.multiclass import type_of_target

    kind = type_of_target(y)
    inferred = {"binary": "binary", "multiclass": "multiclass", "continuous": "regression"}.get(kind)
    if inferred == "multiclass" and np.issubdtype(np.asarray(y).dtype, np.floating):
        inferred = "regression"  # integer-valued floats (e.g. diabetes progression) are numbers
    if inferred is None:
        raise InvalidParameterError(
            f"`y` must be one label or number per sample. Received: labels of kind {kind!r}"
        )
    classes = np.unique(y)
    if inferred != "regression" and len(classes) < 2:
        raise InvalidParameterError(
            f"`y` must hold at least 2 classes. Received: a single class {classes[0].item()!r}"
        )
    if task is None:
        return inferred
    numeric = np.issubdtype(np.asarray(y).dtype, np.number)
    if task == "regression" and not numeric:
        raise InvalidParameterError(f"`task` 'regression' needs numeric targets. Received: labels such as {classes[0].item()!r}")
    if task == "binary" and len(classes) != 2:
        raise InvalidParameterError(f"`task` 'binary' needs exactly 2 classes. Received: task='binary' with {len(classes)} distinct labels")
    if task == "multiclass" and inferred == "regression":
        raise InvalidParameterError("`task` 'multiclass' needs class labels. Received: task='multiclass' with continuous targets")
    if task == "multiclass" and len(classes) < 2:
        raise InvalidParameterError(f"`task` 'multiclass' needs 2 or more classes. Received: {len(classes)} class")
    return task


def _scaler(X_train, scale):
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    if scale == "none":
        return None
    if scale == "auto":
        scale = "minmax" if X_train.ndim == 4 else "standard"
    # images scale with one global range (pixels share a unit); features and sequence channels
    # each get their own statistics
    columns = 1 if X_train.ndim == 4 else X_train.shape[-1]
    scaler = MinMaxScaler() if scale == "minmax" else StandardScaler()
    scaler.fit(X_train.reshape(-1, columns))
    return lambda X: scaler.transform(X.reshape(-1, columns)).reshape(X.shape).astype("float32")


def load_dataset(source, *, target=None, shape="flat", task=None, test_size=0.2, val_size=0.1,
                 seed=0, scale="auto"):
    """Load, check, split (stratified for classification) and scale a dataset.

    Args:
        source: 'digits', 'iris', 'wine', 'breast_cancer', 'diabetes', or a .npz/.csv path.
        target: the label column of a CSV.
        shape: 'flat', or 'image' for digits as 8×8×1.
        task: override the inferred task.
        test_size, val_size: fractions of all samples held out for test and validation.
        scale: 'auto' (standard for features, min-max for images), 'standard', 'minmax', 'none';
            fitted on the training split only.
    """
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelEncoder

    options = check_params("load_dataset", CONSTRAINTS, {
        "shape": shape, "task": task, "test_size": test_size, "val_size": val_size, "seed": seed,
        "scale": scale})
    if options["test_size"] + options["val_size"] >= 0.9:
        raise InvalidParameterError(
            f"`test_size` + `val_size` must leave at least 10% for training. "
            f"Received: test_size={test_size}, val_size={val_size}"
        )
    X, y, feature_names = load_arrays(source, target=target, shape=options["shape"])
    X = np.asarray(X)
    if len(X) == 0:
        raise InvalidParameterError(f"`source` holds no samples. Received: source={source!r}")
    if not np.issubdtype(X.dtype, np.number):
        raise InvalidParameterError(f"`X` must be numeric. Received: dtype {X.dtype}")
    X = X.astype("float32")
    check_finite(X, feature_names)
    task = infer_task(y, options["task"])
    class_names = None
    if task == "regression":
        y = np.asarray(y, dtype="float32")
        if not np.isfinite(y).all():
            raise InvalidParameterError("`y` must contain only finite values. Received: NaN/inf targets")
        stratify = None
    else:
        encoder = LabelEncoder().fit(y)
        class_names = [str(c) for c in encoder.classes_]
        y = encoder.transform(y).astype("int64")
        counts = np.bincount(y)
        if counts.min() < 3:
            raise InvalidParameterError(
                f"`y` needs at least 3 samples of each class to split. Received: class "
                f"{class_names[int(np.argmin(counts))]!r} with {int(counts.min())}"
            )
        stratify = y
    seed = options["seed"]
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, y, test_size=options["test_size"], random_state=seed, stratify=stratify)
    X_train, X_val, y_train, y_val = X_rest, X_rest[:0], y_rest, y_rest[:0]
    if options["val_size"]:
        val_fraction = options["val_size"] / (1.0 - options["test_size"])
        X_train, X_val, y_train, y_val = train_test_split(
            X_rest, y_rest, test_size=val_fraction, random_state=seed,
            stratify=None if stratify is None else y_rest)
    transform = _scaler(X_train, options["scale"])
    if transform is not None:
        X_train, X_val, X_test = transform(X_train), transform(X_val) if len(X_val) else X_val, transform(X_test)
    num_outputs = 1 if task in ("binary", "regression") else len(class_names)
    return Dataset(X_train, y_train, X_val, y_val, X_test, y_test, task=task,
                   num_outputs=num_outputs, class_names=class_names,
                   feature_names=feature_names or None, name=os.path.basename(str(source)))
