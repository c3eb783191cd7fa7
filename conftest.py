"""The README's Python blocks (collected by pytest-markdown-docs) each run in an empty folder; the
slowest files are handed to the test processes first; TensorFlow runs one thread per pool; the
garbage collector leaves the imported stack alone, as in a `zoo` process."""

import collections
import gc
import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("MPLBACKEND", "Agg")
# Two test processes (and the processes tests start) share 2 cores: TensorFlow's own thread pools
# only contend there (the tiny models gain nothing from intra-op parallelism). One thread each, read
# by TensorFlow when it starts, in this process and inherited by every child process.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

# The test processes collect garbage as a `zoo` process does: less often while the stack imports,
# then the import-time objects frozen out of the collector's sight once Keras has imported
# (keras_zoo.cli.collect_less_while_importing). Left at Python's defaults, the full collections
# rescan those ~500,000 objects: about 15% of the CPU of the in-process tests.
from keras_zoo.cli import collect_less_while_importing  # no TensorFlow here: zoo only

collect_less_while_importing()

# The slowest files of a full run (`--durations`, and each file alone). xdist hands out whole
# files (`--dist loadfile`) in collection order (`--no-loadscope-reorder`; its own order is most
# tests first, which put these few-test files at the end): these first, so that the files handed
# out last are short ones and neither process waits long for the other at the end; the rest in
# xdist's order. The quick benchmark, which runs two scripts at a time itself, comes after the
# multi-process searches, whose timeouts are set for the load of the other test process only.
SLOWEST_FILES = (
    "tests/test_distributed.py",
    "tests/test_tuning.py",
    "tests/test_new_user.py",
    "tests/test_auth.py",
    "tests/test_techniques.py",
    "tests/test_faults.py",
    "tests/test_resume.py",
    "tests/test_pipeline_raw_data.py",
    "README.md",
    "tests/test_benchmarks_quick.py",
)


def _file_of(item):
    return item.nodeid.split("::", 1)[0]


_last_file = [None]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before each file's first test (the last file's module fixtures torn down, this one's not yet
    set up), what survives a full collection joins the frozen objects: before the first file, what
    collecting imported (MLflow, ONNX, the test modules); later, what earlier files left for good,
    so each test's full collections scan what the test made. TensorFlow keeps the graphs
    it traced alive (test_tuning.py alone leaves ~700,000 objects, most of them graph operations
    and tensors, that no collection frees): left in sight, they made every later full collection
    (Keras's clear_session, pytest's own at the end) scan up to 1.7 million objects."""
    name = _file_of(item)
    if name != _last_file[0]:
        _last_file[0] = name
        gc.collect()
        gc.freeze()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    tests_in = collections.Counter(_file_of(item) for item in items)

    def rank(item):
        name = _file_of(item)
        if name in SLOWEST_FILES:
            return SLOWEST_FILES.index(name), 0
        return len(SLOWEST_FILES), -tests_in[name]

    items.sort(key=rank)  # stable: each file's tests stay together, in their order


@pytest.fixture(autouse=True)
def _readme_block_in_an_empty_folder(request, monkeypatch):
    if request.node.get_closest_marker("markdown-docs") is not None:
        monkeypatch.chdir(request.getfixturevalue("tmp_path"))
    yield
