"""Data loading: `.npz`, CSV and DataFrames (typed columns, missing values), scikit-learn's
bundled datasets, and images streamed from disk (a folder of class subfolders or a CSV of image
paths: `zoo.images`); a seeded stratified train/val/test split, task inference, and preprocessing
fitted on the training split only that the model carries inside it (`scale="model"`)."""

import dataclasses
import os

import numpy as np

from zoo._params import Int, Options, Real, check_params
from zoo.errors import InvalidParameterError, unknown_name
from zoo.tasks import SUPERVISED_TASKS

BUNDLED = ("digits", "iris", "wine", "breast_cancer", "diabetes")
TASKS = SUPERVISED_TASKS

SCALES = ("model", "auto", "standard", "minmax", "none")
MAX_INTEGER_CLASSES = 20  # an integer target with more distinct values is a quantity, not a class

CONSTRAINTS = {
    "shape": Options(("flat", "image")),
    "task": Options(TASKS, allow_none=True),
    "test_size": Real(0.0, 1.0, closed="neither"),
    "val_size": Real(0.0, 1.0, closed="left"),
    "seed": Int(0),
    "scale": Options(SCALES),
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
    # scale="model": what the model carries (None otherwise): an ArrayPreprocessor, or for frames a
    # TabularPreprocessor whose codes matrices are X_*; the regression target's mean and variance
    preprocessor: object = None
    target_stats: tuple = None
    schema: object = None  # frames: the inferred zoo.tabular.Schema
    frames: dict = None  # frames: the raw rows of each split ("train", "val", "test")
    inputs: dict = None  # frames: each split's rows as raw inputs (zoo.tabular.frame_to_inputs)
    notes: list = dataclasses.field(default_factory=list)
    series: dict = None  # windows (zoo.series): window, horizon, season, target index, split times

    @property
    def input_shape(self):
        return tuple(self.X_train.shape[1:])

    @property
    def feature_shape(self):
        """The shape the catalog model sees: after the preprocessing the model carries."""
        shape = getattr(self.preprocessor, "feature_shape", None)  # windows: with missing indicators
        if shape is not None:
            return tuple(shape)
        names = getattr(self.preprocessor, "feature_names", None)
        return (len(names),) if names is not None else self.input_shape

    def compose(self, core):
        """`core` (a catalog model on `feature_shape`) behind the fitted preprocessing and before
        the target unscaling, as one uncompiled model on this dataset's raw arrays; `core` itself
        when there is nothing to carry."""
        return compose_model(core, input_shape=self.input_shape, preprocessor=self.preprocessor,
                             target_stats=self.target_stats, class_names=self.class_names)

    def raw_model(self, model):
        """The model a user is shipped: for frames, `model` (on codes) behind the encoder that
        takes the raw columns ({column: (n, 1)} strings or numbers); `model` itself otherwise."""
        if self.schema is None:
            return model
        import keras

        encoder = self.preprocessor.build_encoder_model()
        return keras.Model(encoder.input, model(encoder.output), name="raw_model")

    @property
    def image_input(self):
        """For images, what the model and its artifacts take (`ImagePreprocessor.to_dict`:
        size, channels, uint8 pixels, how files are decoded and resized), else None."""
        if type(self.preprocessor).__name__ != "ImagePreprocessor":
            return None
        return self.preprocessor.to_dict()

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


def compose_model(core, *, input_shape, preprocessor=None, target_stats=None, class_names=None):
    """raw input → preprocessing (fresh layers holding the training statistics) → `core` →
    target unscaling → class names (an identity layer that stores them), uncompiled. A series'
    preprocessor (zoo.series.SeriesPreprocessor) composes its own: the forecast is the naive value
    plus the core's change, restored in the target's units by the windows' own level and scale."""
    if preprocessor is None and target_stats is None:
        return core
    from zoo.series import SeriesPreprocessor

    if isinstance(preprocessor, SeriesPreprocessor):
        return preprocessor.compose(core)
    if type(preprocessor).__name__ == "ImagePreprocessor":  # zoo.images (imports Keras)
        return preprocessor.compose(core, target_stats=target_stats, class_names=class_names)
    import keras

    from zoo.layers.preprocessing import ClassNames
    from zoo.preprocessing import unscale_target

    inputs = keras.Input(input_shape, name="inputs")
    x = preprocessor.build_feature_model()(inputs) if preprocessor is not None else inputs
    x = core(x)
    if target_stats is not None:
        x = unscale_target(target_stats)(x)
    if class_names:
        x = ClassNames([str(c) for c in class_names], name="class_names")(x)
    return keras.Model(inputs, x, name=core.name)


def class_names_of(model):
    """The label vocabulary a model stores (its `class_names` layer), or None."""
    for layer in model.layers:
        if layer.name == "class_names":
            return list(layer.get_config()["names"])
        if hasattr(layer, "layers"):
            found = class_names_of(layer)
            if found:
                return found
    return None


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

    frame = read_csv(path)
    if target is None:
        raise InvalidParameterError(f"`target` (the label column) is required for a CSV source. Received: target=None for {path!r}")
    if target not in frame.columns:
        raise InvalidParameterError(
            f"`target` must be a column of {os.path.basename(path)!r} (columns: "
            f"{', '.join(map(str, frame.columns))}). Received: target={target!r}"
        )
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
    if (inferred == "multiclass" and np.issubdtype(np.asarray(y).dtype, np.integer)
            and len(np.unique(y)) > MAX_INTEGER_CLASSES):
        inferred = "regression"  # a car's weight in pounds is a quantity, not 300 classes
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


def task_note(y, task, inferred_from_override):
    """The line that says why an integer target became regression (None otherwise)."""
    if inferred_from_override or task != "regression":
        return None
    y = np.asarray(y)
    if np.issubdtype(y.dtype, np.integer) or (y.size and np.all(np.mod(y, 1) == 0)):
        return (f"task: regression (the target holds {len(np.unique(y))} distinct integers, more "
                f"than {MAX_INTEGER_CLASSES}); set `task: multiclass` if they are class labels")
    return None


def _check_split_sizes(test_size, val_size):
    if test_size + val_size >= 0.9:
        raise InvalidParameterError(
            f"`test_size` + `val_size` must leave at least 10% for training. "
            f"Received: test_size={test_size}, val_size={val_size}"
        )


def _encode_labels(y, task):
    """(encoded y, class names, stratify labels) for a task; regression targets as float32."""
    from sklearn.preprocessing import LabelEncoder

    if task == "regression":
        y = np.asarray(y, dtype="float32")
        if not np.isfinite(y).all():
            raise InvalidParameterError("`y` must contain only finite values. Received: NaN/inf targets")
        return y, None, None
    encoder = LabelEncoder().fit(y)
    class_names = [str(c) for c in encoder.classes_]
    y = encoder.transform(y).astype("int64")
    counts = np.bincount(y)
    if counts.min() < 3:
        raise InvalidParameterError(
            f"`y` needs at least 3 samples of each class to split. Received: class "
            f"{class_names[int(np.argmin(counts))]!r} with {int(counts.min())}"
        )
    return y, class_names, y


def split_indices(count, *, stratify, test_size, val_size, seed):
    """Seeded (stratified) row indices of the train, val and test splits."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(count)
    try:
        if test_size:
            rest, test = train_test_split(rows, test_size=test_size, random_state=seed, stratify=stratify)
        else:  # everything for training and validation (AutoModel.fit)
            rest, test = rows, rows[:0]
        if not val_size:
            return rest, rest[:0], test
        train, val = train_test_split(rest, test_size=val_size / (1.0 - test_size), random_state=seed,
                                      stratify=None if stratify is None else stratify[rest])
    except ValueError as error:  # a split smaller than the number of classes
        raise InvalidParameterError(
            f"`test_size` and `val_size` of {count} samples must leave each split at least one "
            f"sample of each class ({str(error).splitlines()[0]}). Received: test_size={test_size}, "
            f"val_size={val_size}") from None
    return train, val, test


def load_dataset(source, *, target=None, shape="flat", task=None, test_size=0.2, val_size=0.1,
                 seed=0, scale="auto", columns=None, image_size=None):
    """Load, check, split (stratified for classification) and scale a dataset.

    Args:
        source: 'digits', 'iris', 'wine', 'breast_cancer', 'diabetes', a .npz/.csv path, or a
            folder with one subfolder of images per class (a CSV whose column holds image paths
            is read as images too): streamed from disk (`zoo.images.load_images`).
        target: the label column of a CSV.
        shape: 'flat', or 'image' for digits as 8×8×1.
        task: override the inferred task.
        test_size, val_size: fractions of all samples held out for test and validation.
        scale: 'model' keeps the arrays raw and fits, on the training split only, the
            preprocessing the model carries inside it (`Dataset.compose`): normalization, and for
            a CSV typed columns (categories, booleans, dates, missing values; see
            `dataset_from_frame`); regression targets are unscaled inside the model.
            'auto' (standard for features, min-max for images), 'standard', 'minmax' and 'none'
            transform the arrays here instead, for experiments that build their own models.
        columns: for a CSV with scale='model', column kinds that replace the inferred ones
            ({column: 'numeric'|'categorical'|'boolean'|'datetime'|'drop'}).
        image_size: images: (height, width) they are resized to; None infers it from the files.
    """
    options = check_params("load_dataset", CONSTRAINTS, {
        "shape": shape, "task": task, "test_size": test_size, "val_size": val_size, "seed": seed,
        "scale": scale})
    _check_split_sizes(options["test_size"], options["val_size"])
    images = _image_source(source)
    if images is not None or image_size is not None:
        from zoo.images import load_images

        if images is None:
            raise InvalidParameterError(
                f"`data.image_size` applies to images (a folder of class subfolders, or a CSV of image "
                f"paths). Received: data.image_size={image_size!r} with data.source={str(source)!r}")
        return load_images(source, target=target, image_size=image_size, task=options["task"],
                           test_size=options["test_size"], val_size=options["val_size"],
                           seed=options["seed"], frame=None if isinstance(images, str) else images)
    if options["scale"] == "model" and str(source).lower().endswith(".csv"):
        return dataset_from_frame(read_csv(source), target=target, task=options["task"],
                                  columns=columns, test_size=options["test_size"],
                                  val_size=options["val_size"], seed=options["seed"],
                                  name=os.path.basename(str(source)))
    X, y, feature_names = load_arrays(source, target=target, shape=options["shape"])
    return dataset_from_arrays(X, y, task=options["task"], test_size=options["test_size"],
                               val_size=options["val_size"], seed=options["seed"],
                               scale=options["scale"], feature_names=feature_names,
                               name=os.path.basename(str(source)))


def _image_source(source):
    """'folder' for a folder, the frame of a CSV with a column of image paths, else None."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    if os.path.isdir(source):
        return "folder"
    if str(source).lower().endswith(".csv") and os.path.isfile(source):
        from zoo.images import image_column

        frame = read_csv(source)
        return frame if image_column(frame) is not None else None
    return None


def dataset_from_arrays(X, y, *, task=None, test_size=0.2, val_size=0.1, seed=0, scale="model",
                        feature_names=None, name="arrays"):
    """A `Dataset` from numeric arrays (features, images or windows) and their targets."""
    from zoo.preprocessing import ArrayPreprocessor, target_stats

    X = np.asarray(X)
    if len(X) == 0:
        raise InvalidParameterError(f"`X` holds no samples. Received: X with shape {X.shape}")
    if not np.issubdtype(X.dtype, np.number):
        raise InvalidParameterError(f"`X` must be numeric. Received: dtype {X.dtype}")
    X = X.astype("float32")
    if scale == "model":  # missing values are imputed inside the model; infinities are refused
        check_finite(np.where(np.isnan(X), 0.0, X), feature_names or ())
    else:
        check_finite(X, feature_names or ())
    if len(X) != len(y):
        raise InvalidParameterError(
            f"`X` and `y` must have the same length. Received: len(X)={len(X)}, len(y)={len(y)}")
    resolved = infer_task(y, task)
    note = task_note(y, resolved, task is not None)
    y, class_names, stratify = _encode_labels(y, resolved)
    train, val, test = split_indices(len(X), stratify=stratify, test_size=test_size,
                                     val_size=val_size, seed=seed)
    X_train, X_val, X_test = X[train], X[val], X[test]
    preprocessor = stats = None
    if scale == "model":
        preprocessor = ArrayPreprocessor(X_train)
        stats = target_stats(y[train]) if resolved == "regression" else None
    else:
        transform = _scaler(X_train, scale)
        if transform is not None:
            X_train, X_test = transform(X_train), transform(X_test)
            X_val = transform(X_val) if len(X_val) else X_val
    num_outputs = 1 if resolved in ("binary", "regression") else len(class_names)
    return Dataset(X_train, y[train], X_val, y[val], X_test, y[test], task=resolved,
                   num_outputs=num_outputs, class_names=class_names,
                   feature_names=list(feature_names) if feature_names else None, name=name,
                   preprocessor=preprocessor, target_stats=stats,
                   notes=[note] if note else [])


def read_csv(path):
    import pandas as pd

    _require_file(path)
    try:
        frame = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise InvalidParameterError(f"`source` is not a readable CSV file ({str(error).splitlines()[0]}). Received: source={path!r}") from None
    if frame.empty:
        raise InvalidParameterError(f"`source` CSV has no rows. Received: source={path!r}")
    return frame


def dataset_from_frame(frame, *, target, task=None, columns=None, test_size=0.2, val_size=0.1,
                       seed=0, name="frame"):
    """A `Dataset` from a DataFrame with a `target` column: column kinds inferred (or set in
    `columns`), rows with a missing target dropped and counted, a seeded (stratified) split, and a
    `TabularPreprocessor` fitted on the training rows; `X_*` are its codes matrices. The frame is
    read into raw inputs (`tabular.frame_to_inputs`) once: `inputs` holds each split's."""
    from zoo import tabular
    from zoo.preprocessing import TabularPreprocessor, target_stats

    if target is None or target not in frame.columns:
        raise InvalidParameterError(
            f"`data.target` must be a column of {name!r} (columns: "
            f"{', '.join(map(str, frame.columns))}). Received: data.target={target!r}")
    schema = tabular.infer_schema(frame, target=target, overrides=columns)
    frame, dropped = tabular.drop_missing_target(frame, target)
    schema.dropped_target_rows = dropped
    y_raw = frame[target].to_numpy()
    if y_raw.dtype == object:
        y_raw = y_raw.astype(str)
    resolved = infer_task(y_raw, task)
    notes = list(schema.notes)
    if dropped and not any("missing target" in n for n in notes):
        notes.append(f"{dropped} rows with a missing target dropped")
    note = task_note(y_raw, resolved, task is not None)
    notes += [note] if note else []
    y, class_names, stratify = _encode_labels(y_raw, resolved)
    train, val, test = split_indices(len(frame), stratify=stratify, test_size=test_size,
                                     val_size=val_size, seed=seed)
    frames = {"train": frame.iloc[train], "val": frame.iloc[val], "test": frame.iloc[test]}
    # the frame is read into raw inputs once; each split takes its rows of them
    every_row = tabular.frame_to_inputs(frame, schema)
    inputs = {split: {name: values[index] for name, values in every_row.items()}
              for split, index in (("train", train), ("val", val), ("test", test))}
    preprocessor = TabularPreprocessor.from_inputs(schema, inputs["train"])
    X = {split: preprocessor.encode_inputs(part) for split, part in inputs.items()}
    num_outputs = 1 if resolved in ("binary", "regression") else len(class_names)
    return Dataset(X["train"], y[train], X["val"], y[val], X["test"], y[test], task=resolved,
                   num_outputs=num_outputs, class_names=class_names,
                   feature_names=[c.name for c in schema.features], name=name,
                   preprocessor=preprocessor,
                   target_stats=target_stats(y[train]) if resolved == "regression" else None,
                   schema=schema, frames=frames, inputs=inputs, notes=notes)
