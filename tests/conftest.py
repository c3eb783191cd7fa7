"""Shared fixtures: quiet TensorFlow, seeded runs and tiny generated data for every input kind."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def tiny_data(input_shape, task, *, num_outputs=3, samples=64, seed=0):
    """Inputs of `input_shape` with labels a fixed linear function of them, so they are learnable."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(samples, *input_shape)).astype("float32")
    flat = X.reshape(samples, -1)
    if task == "binary":
        y = (flat @ rng.normal(size=flat.shape[1]) > 0).astype("int64")
    elif task == "multiclass":
        y = np.argmax(flat @ rng.normal(size=(flat.shape[1], num_outputs)), axis=1).astype("int64")
    else:
        y = (flat @ rng.normal(size=(flat.shape[1], num_outputs)) / np.sqrt(flat.shape[1])).astype("float32")
    return X, y


@pytest.fixture(autouse=True)
def _seeded():
    import keras

    keras.utils.set_random_seed(0)
    yield
    keras.backend.clear_session(free_memory=False)  # gc.collect per test costs ~0.5 s
