"""Data loading: bundled sets, .npz and CSV, splits, task inference, train-only scaling, bad input."""

import numpy as np
import pandas as pd
import pytest

from zoo.data import load_dataset
from zoo.errors import InvalidParameterError, UnknownNameError


@pytest.mark.parametrize("name,task,shape,outputs", [
    ("digits", "multiclass", (64,), 10), ("iris", "multiclass", (4,), 3),
    ("wine", "multiclass", (13,), 3), ("breast_cancer", "binary", (30,), 1),
    ("diabetes", "regression", (10,), 1),
])
def test_bundled_datasets(name, task, shape, outputs):
    data = load_dataset(name)
    assert data.task == task and data.input_shape == shape and data.num_outputs == outputs
    total = len(data.X_train) + len(data.X_val) + len(data.X_test)
    assert abs(len(data.X_test) / total - 0.2) < 0.01 and abs(len(data.X_val) / total - 0.1) < 0.01


def test_digits_as_images_scaled_on_train_only():
    data = load_dataset("digits", shape="image")
    assert data.input_shape == (8, 8, 1)
    assert data.X_train.min() == 0.0 and data.X_train.max() == 1.0
    tabular = load_dataset("digits")
    # standardization statistics come from train: train columns are centred, test's are not
    assert np.allclose(tabular.X_train.mean(axis=0), 0.0, atol=1e-5)
    assert not np.allclose(tabular.X_test.mean(axis=0), 0.0, atol=1e-3)


def test_split_is_stratified_and_seeded():
    first, second = load_dataset("iris", seed=3), load_dataset("iris", seed=3)
    np.testing.assert_array_equal(first.X_test, second.X_test)
    assert np.bincount(first.y_test).tolist() == [10, 10, 10]
    assert not np.array_equal(first.X_test, load_dataset("iris", seed=4).X_test)


def test_task_override_and_mismatch():
    assert load_dataset("iris", task="multiclass").task == "multiclass"
    assert load_dataset("diabetes", task="regression").task == "regression"
    with pytest.raises(InvalidParameterError, match="`task` 'binary' needs exactly 2 classes"):
        load_dataset("iris", task="binary")
    with pytest.raises(InvalidParameterError, match="`task` 'multiclass' needs class labels"):
        load_dataset("diabetes", task="multiclass")


def test_csv_with_target_column_and_string_labels(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    frame["label"] = np.where(frame["a"] > 0, "yes", "no")
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    data = load_dataset(str(path), target="label")
    assert data.task == "binary" and data.class_names == ["no", "yes"]
    assert data.feature_names == ["a", "b", "c"]
    with pytest.raises(InvalidParameterError, match=r"`target` must be a column of 'data.csv' \(columns: a, b, c, label\). Received: target='lable'"):
        load_dataset(str(path), target="lable")


def test_nan_and_inf_are_refused_naming_the_column(tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2.0, np.nan, 4.0] * 5, "b": [1.0] * 20, "y": [0, 1] * 10})
    path = tmp_path / "nan.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(InvalidParameterError, match=r"finite values.*5 NaN/inf values, first in column 'a'"):
        load_dataset(str(path), target="y")
    np.savez(tmp_path / "inf.npz", X=np.array([[1.0, np.inf]] * 12), y=np.arange(12) % 2)
    with pytest.raises(InvalidParameterError, match="finite"):
        load_dataset(str(tmp_path / "inf.npz"))


def test_npz_and_its_mistakes(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "ok.npz", X=rng.normal(size=(40, 5, 2)), y=rng.normal(size=40))
    data = load_dataset(str(tmp_path / "ok.npz"))
    assert data.task == "regression" and data.input_shape == (5, 2)
    np.savez(tmp_path / "short.npz", X=rng.normal(size=(40, 3)), y=np.zeros(39))
    with pytest.raises(InvalidParameterError, match=r"len\(X\)=40, len\(y\)=39"):
        load_dataset(str(tmp_path / "short.npz"))
    np.savez(tmp_path / "keys.npz", features=np.zeros((4, 2)))
    with pytest.raises(InvalidParameterError, match="must hold arrays 'X' and 'y'"):
        load_dataset(str(tmp_path / "keys.npz"))


def test_single_class_missing_file_and_unknown_name(tmp_path):
    np.savez(tmp_path / "one.npz", X=np.zeros((20, 2)), y=np.zeros(20, dtype=int))
    with pytest.raises(InvalidParameterError, match="`y` must hold at least 2 classes. Received: a single class 0"):
        load_dataset(str(tmp_path / "one.npz"))
    with pytest.raises(InvalidParameterError, match="does not exist"):
        load_dataset(str(tmp_path / "missing.csv"), target="y")
    with pytest.raises(UnknownNameError, match="Did you mean 'digits'"):
        load_dataset("digit")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InvalidParameterError, match="not a readable CSV"):
        load_dataset(str(tmp_path / "empty.csv"), target="y")
