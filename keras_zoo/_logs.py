"""Library log lines kept off the user's screen: TensorFlow's C++ runtime logs (which
TF_CPP_MIN_LOG_LEVEL does not all silence), Python loggers and warnings. `zoo` and `AutoModel`
show them only when asked (`--verbose`, `verbose=2`)."""

import contextlib
import logging
import os
import re
import sys
import threading
import warnings

# TensorFlow's C++ runtime logs in glog format on stderr at import and first device query
# ("oneDNN custom operations are on", "Could not find cuda drivers"); TF_CPP_MIN_LOG_LEVEL does
# not silence all of them in TF 2.21. They would break the one-`error:`-line promise.
# TFLite's interpreter logs its own way ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.").
_RUNTIME_LOG = re.compile(rb"^([IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] "
                          rb"|WARNING: All log messages before absl|INFO: )")


@contextlib.contextmanager
def runtime_logs_filtered():
    """Pass stderr through a pipe that drops TensorFlow's runtime log lines, line by line."""
    try:
        sys.stderr.flush()
        original = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded use)
        yield
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump():
        with os.fdopen(read_end, "rb") as lines:
            for line in lines:
                if not _RUNTIME_LOG.match(line):
                    os.write(original, line)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(original, 2)  # closes the pipe's last writer, so the pump drains and ends
        thread.join(timeout=5)
        os.close(original)


LOGGERS = ("mlflow", "absl", "tensorflow", "alembic", "keras_tuner")


@contextlib.contextmanager
def quiet():
    """Everything in the block without the libraries' log lines and warnings."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")  # read when MLflow is imported
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    loggers = [logging.getLogger(name) for name in LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with runtime_logs_filtered(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
