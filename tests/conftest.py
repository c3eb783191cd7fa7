"""Shared fixtures: quiet TensorFlow, seeded runs and tiny generated data for every input kind."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("MPLBACKEND", "Agg")
# a search runs its trials in this process (tuning.search.INLINE_ENV): each small search would
# otherwise start a worker process (about 4 s of TensorFlow import on 2 cores); the tests of the
# worker processes turn it off (test_workers.py, test_distributed.py)
os.environ.setdefault("KERAS_ZOO_INLINE_TRIALS", "1")
# the tiny tables of the tests keep one validation split (tuning.checks.CV_BELOW_ENV): five folds
# would make every small search five times longer; test_selection.py sets `cv_below` to test them
os.environ.setdefault("KERAS_ZOO_CV_BELOW", "0")

import pytest


@pytest.fixture(autouse=True)
def _seeded():
    import keras

    keras.utils.set_random_seed(0)
    yield
    keras.backend.clear_session(free_memory=False)  # gc.collect per test costs ~0.5 s


@pytest.fixture(scope="session")
def tracking_server(tmp_path_factory):
    """One real `zoo tracking-server` (no `--host`: its loopback default) for the whole session;
    its URI. Every test that uses it logs to an experiment of its own, so none sees another's runs;
    a test that stops its server mid-search starts its own (`zoo_testing.start_tracking_server`)."""
    import signal

    from zoo_testing import start_tracking_server

    folder = tmp_path_factory.mktemp("mlflow")
    server, uri = start_tracking_server(folder, f"sqlite:///{folder}/mlflow.db")
    yield uri
    server.send_signal(signal.SIGTERM)
    assert server.wait(30) == 0
