"""Exit code 1: the job itself failed (every trial failed; an artifact that fails verification),
as opposed to 2 for a user's mistake. The CLI runs in this process (`keras_zoo.cli.main`)."""

import json

import keras
import numpy as np
import yaml
from keras import ops

from keras_zoo.cli import main


def test_a_search_whose_every_trial_fails_exits_1_and_leaves_no_model(tmp_path, monkeypatch, capfd):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 60))
    lines = ["a,b,y"] + [f"{x},{z},{(x + 2 * z) * 1e36}" for x, z in zip(a, b)]  # squares overflow
    (tmp_path / "huge.csv").write_text("\n".join(lines) + "\n")
    config = {"data": {"source": "huge.csv", "target": "y", "scale": "none"},
              "model": {"name": "mlp", "params": {"hidden_units": [8]}},
              "search": {"max_trials": 3, "max_epochs": 1, "tune_training": False,
                         "max_consecutive_failures": 2},
              "tracking": {"uri": f"sqlite:///{tmp_path}/mlflow.db"}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.chdir(tmp_path)
    assert main(["tune", "run.yaml", "--out", "out"]) == 1
    err = capfd.readouterr().err
    assert err.strip().splitlines()[-1].startswith("error: search stopped: 2 consecutive trials failed")
    assert "loss became NaN or inf" in err.strip().splitlines()[-1]
    assert not (tmp_path / "out" / "best_model.keras").exists()


@keras.saving.register_keras_serializable(package="zoo_tests")
class Jitter(keras.layers.Layer):
    """Adds fresh noise at inference: no exported artifact can compute what Keras computed."""

    def call(self, inputs):
        return inputs + keras.random.normal(ops.shape(inputs), stddev=1.0)


def test_an_export_that_fails_verification_exits_1_and_names_the_artifact(tmp_path, capfd):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(Jitter()(inputs)))
    model.save(tmp_path / "jitter.keras")
    code = main(["export", str(tmp_path / "jitter.keras"), "--out", str(tmp_path / "export"),
                 "--format", "onnx", "--json"])
    captured = capfd.readouterr()
    assert code == 1, captured.err[-2000:]
    manifest = json.loads(captured.out[captured.out.index("{"):])
    (onnx,) = [a for a in manifest["artifacts"] if a["format"] == "onnx"]
    assert onnx["status"] == "failed" and "does not run in its runtime" in onnx["error"]
    assert "error: " in captured.err and "onnx" in captured.err.lower()
