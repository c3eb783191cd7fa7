"""Safety: loading never runs code (safe_mode, no Lambda, YAML safe_load, no pickles), names
cannot escape the output directory, the tracking server listens on loopback by default."""

import ast
import os
import pathlib

import keras
import pytest
from zoo_testing import zoo_here

from zoo.errors import InvalidParameterError
from zoo.saving import load_keras_model

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ["zoo", "tuning", "evaluation", "export", "keras_zoo"]


def product_calls():
    """(file, call node) for every call in the five packages."""
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    yield path.relative_to(ROOT), node


def call_name(node):
    return ast.unparse(node.func)


def keyword(node, name):
    for item in node.keywords:
        if item.arg == name:
            return ast.unparse(item.value)
    return None


@pytest.fixture(scope="module")
def lambda_model(tmp_path_factory):
    inputs = keras.Input(shape=(4,))
    outputs = keras.layers.Dense(2)(keras.layers.Lambda(lambda x: x * 2.0)(inputs))
    path = tmp_path_factory.mktemp("lambda") / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    return path


def test_a_model_with_a_lambda_layer_is_refused_with_a_message(lambda_model):
    with pytest.raises(InvalidParameterError, match="`model` contains a Lambda layer"):
        load_keras_model(lambda_model)


def test_the_cli_refuses_a_lambda_model_in_one_line(lambda_model, tmp_path):
    # `zoo evaluate` and `zoo export` load through the same `load_keras_model`
    result = zoo_here("export", lambda_model, "--out", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: `model` contains a Lambda layer"), result.stderr
    assert not (tmp_path / "out").exists()


def test_every_keras_load_uses_safe_mode():
    loads = [(path, node) for path, node in product_calls()
             if call_name(node).endswith("load_model") and "saving" in call_name(node)]
    assert loads, "no keras.saving.load_model call found"
    for path, node in loads:
        assert keyword(node, "safe_mode") == "True", f"{path}:{node.lineno}"


# the one unpickling: a local worker process reads the search its own parent pickled, from its
# stdin (a pipe), never from a file (tuning/distributed/spawned.py)
PIPE_UNPICKLING = "tuning/distributed/spawned.py"


def test_yaml_is_only_safe_loaded_and_nothing_is_unpickled_from_a_file():
    for path, node in product_calls():
        name = call_name(node)
        if name == "pickle.loads" and path.as_posix() == PIPE_UNPICKLING:
            assert "payload = sys.stdin.buffer.read()" in (ROOT / path).read_text(), f"{path}:{node.lineno}"
            continue
        assert name not in ("yaml.load", "yaml.unsafe_load", "yaml.full_load", "pickle.load",
                            "pickle.loads", "joblib.load", "cloudpickle.load"), f"{path}:{node.lineno}"
        if name in ("np.load", "numpy.load"):
            assert keyword(node, "allow_pickle") == "False", f"{path}:{node.lineno}"
        assert keyword(node, "safe_mode") != "False", f"{path}:{node.lineno}"


def test_the_config_loader_refuses_python_tags(tmp_path):
    from keras_zoo.config import load_config

    marker = tmp_path / "executed"
    config = tmp_path / "config.yaml"
    config.write_text(f"data: !!python/object/apply:os.system ['touch {marker}']\nmodel: {{name: mlp}}\n")
    with pytest.raises(InvalidParameterError, match="`config` is not valid YAML"):
        load_config(config)
    assert not marker.exists()


@pytest.mark.parametrize("worker_id", ["../evil", "a/../../b", "..", "x/y", "chief-2"])
def test_worker_ids_cannot_name_paths_outside_the_output(worker_id):
    from tuning.distributed import check_worker_id

    with pytest.raises(InvalidParameterError, match="worker-id"):
        check_worker_id(worker_id)


def test_tracking_server_listens_on_loopback_unless_told_otherwise():
    from keras_zoo.cli import build_parser
    from tuning import server

    args = build_parser().parse_args(["tracking-server"])
    assert args.host == "127.0.0.1"
    command = server.mlflow_command(host=args.host, port=5000, backend_store="sqlite:///x.db",
                                    artifacts="artifacts")
    assert command[command.index("--host") + 1] == "127.0.0.1"


def test_outputs_keep_to_their_folder(tmp_path):
    """Every file `zoo run` writes lies under --out (names are fixed, never taken from input)."""
    import yaml

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "data": {"source": "iris"}, "model": {"name": "perceptron"},
        "search": {"max_trials": 1, "max_epochs": 1},
        "tracking": {"uri": f"sqlite:///{tmp_path}/mlflow.db"},
        "export": {"enabled": True, "formats": ["keras", "onnx"]}}))
    before = set(os.listdir(tmp_path))
    result = zoo_here("run", config, "--out", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    # besides --out, only the tracking store: MLflow's sqlite database and its artifact root
    assert set(os.listdir(tmp_path)) - before == {"out", "mlflow.db", "mlruns"}
