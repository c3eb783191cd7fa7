"""`zoo export` through a real subprocess: a verified export; and one `error:` line for mistakes,
through the CLI's entry point in this process (a TensorFlow start per case proves nothing more)."""

import json
import os
import subprocess
import sys

import pytest
from zoo_testing import zoo_here

import zoo

ZOO = os.path.join(os.path.dirname(sys.executable), "zoo")


def run(*args, cwd=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([ZOO, "export", *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "iris_mlp.keras"
    zoo.create_model("mlp", input_shape=(4,), num_outputs=3, hidden_units=(8,)).save(path)
    return path


def test_export_writes_verified_artifacts_and_prints_the_table(model_file, tmp_path):
    out = tmp_path / "export"
    result = run(model_file, "--format", "savedmodel,tflite,onnx", "--quantize", "dynamic,int8",
                 "--data", "iris", "--latency-repeats", "2", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "error:" not in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["artifact", "status", "size"]
    assert [line.split()[0] for line in lines[2:7]] == ["savedmodel", "tflite", "onnx", "tflite_dynamic",
                                                         "tflite_int8"]
    assert all(line.split()[1] == "ok" for line in lines[2:7])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["samples"]["labels"] is True
    assert manifest["samples"]["count"] == 30  # the iris test split


@pytest.mark.parametrize("args,message", [
    (["--format", "tflite,pnnx"], "error: Unknown export format 'pnnx'. Did you mean 'onnx'?"),
    (["--quantize", "int8"], "error: `quantize` 'int8' needs representative data"),
    (["--quantize", "bfloat16"], "error: Unknown quantization mode 'bfloat16'."),
    (["--opset", "30"], "error: `opset` must be in [14, 18]"),
    (["--opset", "x"], "error: argument --opset: invalid int value: 'x'"),
])
def test_a_bad_option_is_one_error_line_and_exit_2_with_nothing_written(args, message, model_file, tmp_path):
    result = zoo_here("export", model_file, *args, "--out", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(message), result.stderr
    assert not (tmp_path / "out").exists()


def test_a_bad_file_or_output_directory_is_one_error_line_and_exit_2(model_file, tmp_path):
    not_keras = tmp_path / "notes.keras"
    not_keras.write_text("not a zip")
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    cases = [
        ([tmp_path / "missing.keras"], "error: `model` must be an existing .keras file"),
        ([not_keras], "error: `model` must be a Keras model file (.keras"),
        ([model_file, "--out", a_file], "error: `out_dir` must be a directory, but a file"),
        ([model_file, "--out", "/sys/zoo-export-test"], "error: `out_dir` must be a writable directory"),
    ]
    for args, message in cases:
        result = zoo_here("export", *args, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
        assert result.stderr.startswith(message), result.stderr
    assert sorted(os.listdir(tmp_path)) == ["notes.keras", "taken"]


def test_data_that_does_not_fit_the_model_is_refused_after_loading(model_file, tmp_path):
    result = zoo_here("export", model_file, "--data", "digits", "--out", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [errors[0]] and "`--data` samples must match the model input shape (4,)" in errors[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
