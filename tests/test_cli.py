"""The CLI in real subprocesses: `zoo list`/`show` without TensorFlow, one-line errors, exit codes."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def zoo_cli(*args):
    return subprocess.run([sys.executable, "-m", "keras_zoo", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def python_code(code):
    """`code` run by a fresh `python -c` in the project's folder."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_list_and_show_do_not_import_tensorflow():
    code = (
        "import sys\n"
        "from keras_zoo.cli import main\n"
        "assert main(['list']) == 0\n"
        "assert main(['list', '--json', '--task', 'regression']) == 0\n"
        "for name in __import__('zoo').list_models():\n"
        "    assert main(['show', name]) == 0\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'keras_tuner'))\n"
        "assert not heavy, heavy[:5]\n"
    )
    result = python_code(code)
    assert result.returncode == 0, result.stderr[-2000:]


def test_list_json_filters_by_task():
    result = zoo_cli("list", "--json", "--task", "binary")
    assert result.returncode == 0
    names = [row["name"] for row in json.loads(result.stdout)]
    assert "cnn" in names and "perceptron" in names
    assert zoo_cli("list", "res*").stdout.split()[0] == "resnet"


def test_show_prints_defaults_constraints_and_space():
    result = zoo_cli("show", "mlp", "--json")
    info = json.loads(result.stdout)
    params = {p["name"]: p for p in info["parameters"]}
    assert params["dropout_rate"]["default"] == 0.0
    assert params["dropout_rate"]["constraint"] == "a float in [0.0, 1.0)"
    assert any(entry["name"] == "mlp_units_count" for entry in info["search_space"])
    text = zoo_cli("show", "cnn").stdout
    assert "search space:" in text and "filters = [32, 64]" in text


@pytest.mark.parametrize("args,expected", [
    (("show", "resnt"), "error: Unknown model 'resnt'. Did you mean 'resnet'? See `zoo list`."),
    (("lst",), "error: argument COMMAND: invalid choice: 'lst'"),
    (("list", "--bogus"), "error: unrecognized arguments: --bogus"),
])
def test_mistakes_get_one_error_line_and_exit_2(args, expected):
    result = zoo_cli(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), result.stderr
    assert "Traceback" not in result.stderr


def test_the_console_script_collects_less_while_the_stack_imports_then_freezes_it():
    """`zoo`'s own process (`entry_point`, here running `zoo list`): a young generation of
    IMPORTING_THRESHOLD objects until Keras has imported; then Python's thresholds again, and the
    objects the imports made frozen out of the collector's sight."""
    code = (
        "import gc, sys\n"
        "from keras_zoo.cli import IMPORTING_THRESHOLD, entry_point\n"
        "defaults = gc.get_threshold()\n"
        "sys.argv = ['zoo', 'list']\n"
        "try:\n"
        "    entry_point()\n"
        "except SystemExit as done:\n"
        "    assert done.code == 0, done.code\n"
        "assert gc.get_threshold() == (IMPORTING_THRESHOLD, *defaults[1:]), gc.get_threshold()\n"
        "assert gc.get_freeze_count() == 0 and 'keras' not in sys.modules\n"
        "import keras\n"
        "assert gc.get_threshold() == defaults, gc.get_threshold()\n"
        "print(gc.get_freeze_count())\n"
    )
    result = python_code(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.splitlines()[-1]) > 100_000  # TensorFlow's and Keras's objects


def test_a_callback_after_keras_import_runs_at_once_when_keras_is_imported():
    import keras  # noqa: F401

    from zoo.saving import after_keras_import

    calls = []
    after_keras_import(lambda: calls.append(1))
    assert calls == [1]
