"""Every case of the bad-input corpus through the CLI (in process; three also as real processes): exit 2, one `error:` line naming the
field, no traceback, nothing written. Plus generated configs thrown at the validator."""

import base64
import glob
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_zoo.config import parse_config
from zoo.errors import InvalidParameterError

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = sorted(glob.glob(os.path.join(HERE, "bad_inputs", "*.yaml")))


def _generate(kind, variant, path, model_path):
    if kind == "npz":
        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(30, 3)), np.arange(30) % 2
        if variant == "lengths":
            y = y[:-1]
        elif variant == "inf":
            X[3, 1] = np.inf
        elif variant == "one_class":
            y = np.zeros(30, dtype=int)
        np.savez(path, X=X, y=y)
    elif kind == "model":
        shutil.copy(model_path, path)


def _materialize(case, folder, model_path):
    for name, text in case.get("files", {}).items():
        with open(os.path.join(folder, name), "w") as handle:
            handle.write(text)
    for name, encoded in case.get("binary_files", {}).items():
        with open(os.path.join(folder, name), "wb") as handle:
            handle.write(base64.b64decode(encoded))
    for name, (kind, variant) in case.get("generated_files", {}).items():
        _generate(kind, variant, os.path.join(folder, name), model_path)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    import zoo

    path = str(tmp_path_factory.mktemp("model") / "iris_mlp.keras")
    zoo.create_model("mlp", input_shape=(4,), num_outputs=3, hidden_units=(4,)).save(path)
    return path


def test_the_corpus_has_at_least_30_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", [os.path.basename(path) for path in CASES])
def test_bad_input_case(name, tmp_path, model_path, monkeypatch, capfd):
    """The CLI's `main` in this process (the same code the console script runs, without paying a
    TensorFlow import per case); `test_the_console_script_...` below runs real processes."""
    from keras_zoo.cli import main

    with open(os.path.join(HERE, "bad_inputs", name)) as handle:
        case = yaml.safe_load(handle)
    folder = tmp_path / "case"
    folder.mkdir()
    _materialize(case, str(folder), model_path)
    before = set(os.listdir(folder))
    monkeypatch.chdir(folder)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder}/mlflow.db")
    code = main(case["argv"])
    stderr = capfd.readouterr().err
    lines = stderr.strip().splitlines()
    assert code == 2, (case["about"], code, stderr[-2000:])
    assert "Traceback" not in stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    assert case["expect"] in lines[0], lines[0]
    after = set(os.listdir(folder))
    assert after == before, f"{case['about']}: created {sorted(after - before)}"


@pytest.mark.parametrize("name", ["cli_unknown_command.yaml", "config_malformed_yaml.yaml",
                                  "export_unknown_format.yaml"])
def test_the_console_script_prints_the_same_one_line_in_a_real_process(name, tmp_path, model_path):
    with open(os.path.join(HERE, "bad_inputs", name)) as handle:
        case = yaml.safe_load(handle)
    _materialize(case, str(tmp_path), model_path)
    before = set(os.listdir(tmp_path))
    result = subprocess.run([sys.executable, "-m", "keras_zoo", *case["argv"]], cwd=tmp_path,
                            env=dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/mlflow.db"),
                            capture_output=True, text=True, timeout=300)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and case["expect"] in lines[0], result.stderr[-2000:]
    assert set(os.listdir(tmp_path)) == before


# --- the validator under generated configs --------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=12)
section_keys = {
    "data": ["source", "target", "shape", "test_size", "val_size", "seed", "scale"],
    "model": ["name", "families", "params"],
    "search": ["algorithm", "objective", "max_trials", "max_epochs", "time_budget", "seed",
               "cv_folds", "batch_sizes", "max_consecutive_failures", "early_stopping_patience"],
    "tracking": ["uri", "experiment", "register_model", "enabled"],
    "export": ["enabled", "formats", "quantize"],
}
sections = st.fixed_dictionaries({}, optional={
    name: st.dictionaries(st.sampled_from(keys + ["unknown_key"]), values, max_size=5)
    for name, keys in section_keys.items()
})
configs = st.one_of(values, sections, st.builds(
    lambda base, extra: {**base, **extra},
    st.just({"data": {"source": "iris"}, "model": {"name": "mlp"}}), sections))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_the_validator_accepts_or_raises_its_one_error_type(config):
    try:
        parsed = parse_config(config)
    except InvalidParameterError as error:
        message = str(error)
        assert message and "\n" not in message
    else:  # no model named: the data chooses the families (tuning.space.families_for)
        families = parsed.model.family_names
        assert families is None or (families and all(isinstance(f, str) for f in families))
