"""What a new user does first: load a saved model after `import zoo` (in fresh processes), run
`zoo lr-find`, read `zoo show`, read the end of `zoo run` (a real process), open the run in MLflow."""

import glob
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml
from test_catalog import build, harness_data
from zoo_testing import zoo_here

import zoo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code, *, cwd, timeout=300):
    return subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


# --- 1. every catalog model loads in a fresh process after `import zoo` ------------------------

@pytest.fixture(scope="module")
def saved_catalog(tmp_path_factory):
    """Every catalog model saved to .keras, with the inputs and outputs to compare against."""
    folder = tmp_path_factory.mktemp("catalog")
    for name in zoo.list_models():
        model, spec, task, num_outputs = build(name)
        x, _ = harness_data(spec, task, num_outputs, samples=4)
        model.save(folder / f"{name}.keras")
        inputs = {f"x{i}": part for i, part in enumerate(x if isinstance(x, list) else [x])}
        np.savez(folder / f"{name}.npz", out=np.asarray(model(x, training=False)), **inputs)
    return folder


LOADER = """
import glob, os, numpy as np
{imports}
for path in sorted(glob.glob("{pattern}")):
    arrays = np.load(path[:-len(".keras")] + ".npz")
    inputs = [arrays[k] for k in sorted(arrays.files) if k != "out"]
    model = keras.saving.load_model(path, safe_mode=True)
    out = np.asarray(model(inputs if len(inputs) > 1 else inputs[0], training=False))
    np.testing.assert_allclose(out, arrays["out"], rtol=1e-6, atol=1e-6, err_msg=path)
    print("loaded", os.path.basename(path))
"""


@pytest.mark.parametrize("imports", [
    "import zoo\nimport keras",  # the README's order: registered when Keras is imported
    "import keras\nimport zoo",  # Keras first: registered by `import zoo`
])
def test_every_catalog_model_loads_safely_in_a_fresh_process_after_import_zoo(saved_catalog, imports):
    done = run_python(LOADER.format(imports=imports, pattern="*.keras"), cwd=saved_catalog)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split().count("loaded") == len(zoo.list_models())


def test_import_zoo_imports_no_tensorflow_and_registers_when_tensorflow_imports_keras(saved_catalog):
    imports = ("import sys, zoo\n"
               "print(sorted(m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow')))\n"
               "import tensorflow\n"  # which imports Keras from its own __init__
               "import keras")
    done = run_python(LOADER.format(imports=imports, pattern="[tv]*.keras"), cwd=saved_catalog)  # transformer, vae
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["[]", "loaded transformer.keras", "loaded vae.keras"]


# --- 2. `zoo lr-find` suggests near the best fixed rate of a grid --------------------------------

GRID = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)  # half decades, around the bests of benchmarks/lr_find_rules.py


def lr_find_configs(folder):
    """Three families on small data: name -> (config, grid epochs)."""
    steps = np.arange(300)
    rng = np.random.default_rng(0)
    # fast waves: the last value (where a forecaster starts, zoo.series) is far from the next one,
    # so the learning rate decides how much of the gap training closes
    series = np.sin(steps / 2.0) + 0.5 * np.sin(steps / 5.0) + rng.normal(scale=0.1, size=steps.size)
    (folder / "wave.csv").write_text("value\n" + "\n".join(f"{v:.5f}" for v in series) + "\n")
    return {
        "mlp": ({"data": {"source": "digits"}, "model": {"name": "mlp", "params": {"hidden_units": [32]}}}, 3),
        "cnn": ({"data": {"source": "digits", "shape": "image"}, "model": {"name": "cnn", "params": {
            "filters": [8, 16], "dense_units": [16], "batch_norm": False, "dropout_rate": 0.0}}}, 3),
        "gru": ({"data": {"source": "wave.csv", "series": {"target": "value", "window": 8}},
                 "model": {"name": "gru", "params": {"units": [8]}}}, 5),
    }


def grid_best(config, epochs):
    """The fixed learning rate of `GRID` whose default model reaches the lowest validation loss."""
    import keras
    import keras_tuner as kt

    from keras_zoo.pipeline import hypermodel_for, load_data

    data = load_data(config)
    keras.utils.set_random_seed(0)
    model = hypermodel_for(config, data).build(kt.HyperParameters())  # what `zoo lr-find` sweeps
    initial = model.get_weights()
    scores = {}
    for rate in GRID:  # one model, restarted at each rate: its training function is traced once
        model.set_weights(initial)
        for variable in model.optimizer.variables:
            variable.assign(keras.ops.zeros_like(variable))
        model.optimizer.learning_rate = rate
        history = model.fit(data.X_train, data.y_train, validation_data=(data.X_val, data.y_val),
                            epochs=epochs, batch_size=32, verbose=0).history
        scores[rate] = np.nanmin(history["val_loss"])
    return min(scores, key=scores.get), scores


def test_zoo_lr_find_suggests_within_10x_of_a_grids_best_for_three_families(tmp_path, monkeypatch):
    """Also the suite's one full `zoo lr-find` run, through the CLI's entry point in this process:
    it writes the plot and the JSON (the bad ranges and configs, one in a real process, are in
    test_techniques.py)."""
    from keras_zoo.config import parse_config

    monkeypatch.chdir(tmp_path)
    configs = lr_find_configs(tmp_path)
    for name, (config, epochs) in configs.items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(config))
        steps = ["--steps", "100"] if name == "mlp" else []  # the default, given: the flag is read
        # the CLI's entry point in this process (`zoo run` below is the real process of this file)
        done = zoo_here("lr-find", f"{name}.yaml", "--out", f"out-{name}", *steps, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        stdout = done.stdout
        assert "suggested learning_rate=" in stdout
        assert os.path.getsize(tmp_path / f"out-{name}" / "lr_finder.png") > 0
        assert os.path.isfile(tmp_path / f"out-{name}" / "lr_finder.json")
        suggested = json.loads((tmp_path / f"out-{name}" / "lr_finder.json").read_text())["suggested_learning_rate"]
        assert f"suggested learning_rate={suggested:.3g}" in stdout
        best, scores = grid_best(parse_config(config), epochs)
        assert best / 10 <= suggested <= best * 10, (name, suggested, scores)


# --- 4. `zoo show` and the README say what the config takes -----------------------------------

def test_zoo_show_names_the_config_key_that_takes_training_options(capsys):
    from keras_zoo.cli import main
    from keras_zoo.config import parse_config, search_options

    assert main(["show", "mlp"]) == 0
    text = capsys.readouterr().out
    where = re.search(r"training options \(.*config `([\w.]+)`\)", text)
    assert where, text
    keys = where.group(1).split(".")
    config = {"data": {"source": "iris"}, "model": {"name": "mlp"}}
    section = config
    for key in keys[:-1]:
        section = section.setdefault(key, {})
    section[keys[-1]] = {"optimizer": "adamw", "label_smoothing": 0.1}
    options = search_options(parse_config(config), "out")
    assert options.params == {"optimizer": "adamw", "label_smoothing": 0.1}


def test_readme_states_the_export_default_the_config_has():
    from keras_zoo.config import ExportConfig

    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    section = readme.split("## Search, evaluate, export: `zoo run`", 1)[1].split("```", 1)[0]
    described = " ".join(section.split())
    assert ExportConfig().enabled is False
    # export is off unless the config turns it on: the text must say so where it lists export/
    assert "`export/`" in described
    assert "`export.enabled: true`" in described and "off by default" in described, described


# --- 5 and 6. the end of `zoo run`, and the run in MLflow --------------------------------------

@pytest.fixture(scope="module")
def zoo_run(tmp_path_factory):
    """One real `zoo run` on a small CSV, TFLite export on (its interpreter logs on stderr)."""
    from sklearn.datasets import load_iris

    folder = tmp_path_factory.mktemp("run")
    frame = load_iris(as_frame=True).frame
    frame["target"] = np.asarray(["setosa", "versicolor", "virginica"])[frame["target"]]
    frame.to_csv(folder / "iris.csv", index=False)
    config = {"data": {"source": "iris.csv", "target": "target", "seed": 0},
              "model": {"name": "mlp", "params": {"hidden_units": [8]}},
              "search": {"algorithm": "random", "max_trials": 1, "max_epochs": 2, "seed": 0},
              "tracking": {"experiment": "first-run"},
              "export": {"enabled": True, "formats": ["keras", "tflite"]}}
    (folder / "run.yaml").write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    done = subprocess.run([sys.executable, "-m", "keras_zoo", "run", "run.yaml", "--out", "out"],
                          check=False, capture_output=True, text=True, cwd=folder, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder, done


def parent_run(folder, experiment="first-run"):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{folder}/mlflow.db")
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], filter_string="tags.`zoo.kind` = 'search'")
    assert len(runs) == 1
    return client, found, runs[0]


def test_zoo_run_keeps_library_noise_off_the_terminal(zoo_run):
    _, done = zoo_run
    for noise in ("XNNPACK", "Creating initial MLflow database tables", "Updating database tables",
                  "alembic", "INFO"):
        assert noise not in done.stderr and noise not in done.stdout, noise
    assert done.stderr.strip() == "", done.stderr[-2000:]


def test_zoo_run_ends_with_test_metrics_the_run_and_the_paths(zoo_run):
    folder, done = zoo_run
    _, experiment, run = parent_run(folder)
    text = done.stdout
    report = json.loads((folder / "out" / "report" / "report.json").read_text())
    table = dict(re.findall(r"^  ([a-z0-9_]+)\s+(-?\d+\.\d{4})$", text, flags=re.MULTILINE))
    assert {"accuracy_score", "f1_score_macro", "log_loss"} <= set(table), text
    for name, shown in table.items():
        assert float(shown) == pytest.approx(report["metrics"][name], abs=5e-5)
    assert f"MLflow: run {run.info.run_id} in experiment 'first-run' (sqlite:///mlflow.db)" in text
    assert "mlflow ui --backend-store-uri sqlite:///mlflow.db" in text
    assert "zoo tracking-server --backend-store sqlite:///mlflow.db" in text
    assert f"#/experiments/{experiment.experiment_id}/runs/{run.info.run_id}?workflowType=machine_learning" in text
    written = text.split("written:", 1)[1].split()
    for path in ("out/best_model.keras", "out/report/report.html", "out/export/manifest.json"):
        assert path in written and (folder / path).is_file(), path


def test_the_experiment_opens_under_model_training_in_mlflows_ui(zoo_run):
    import mlflow

    from tuning.tracking import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG

    _, experiment, _ = parent_run(zoo_run[0])
    assert experiment.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    # the value is one the installed UI knows as model training (not a GenAI kind)
    bundle = glob.glob(os.path.join(os.path.dirname(mlflow.__file__), "server", "js", "build",
                                    "static", "js", "main.*.js"))
    with open(bundle[0], encoding="utf-8") as handle:
        text = handle.read()
    assert f'CUSTOM_MODEL_DEVELOPMENT="{EXPERIMENT_KIND}"' in text and f'"{EXPERIMENT_KIND_TAG}"' in text
    # and the page address the printed link carries picks its model-training pages
    assert 'MACHINE_LEARNING="machine_learning"' in text and 'get("workflowType")' in text


def test_an_existing_experiment_gets_the_kind_unless_it_has_one(zoo_run):
    from mlflow import MlflowClient

    from tuning.tracking import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, Tracker

    uri = f"sqlite:///{zoo_run[0]}/mlflow.db"  # a store that exists: no migrations to wait for
    client = MlflowClient(tracking_uri=uri)
    plain = client.create_experiment("plain")
    chosen = client.create_experiment("chosen", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    Tracker(uri, "plain"), Tracker(uri, "chosen")
    assert client.get_experiment(plain).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    assert client.get_experiment(chosen).tags[EXPERIMENT_KIND_TAG] == "genai_development"


def test_the_search_logs_its_dataset_splits_as_mlflow_inputs(zoo_run):
    import mlflow.data

    from keras_zoo.config import load_config
    from keras_zoo.pipeline import load_data

    folder, _ = zoo_run
    _, _, run = parent_run(folder)
    logged = {next(t.value for t in i.tags if t.key == "mlflow.data.context"): i.dataset
              for i in run.inputs.dataset_inputs}
    assert set(logged) == {"training", "validation", "test"}
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        data = load_data(load_config("run.yaml"))
    finally:
        os.chdir(cwd)
    for split, context in (("train", "training"), ("val", "validation"), ("test", "test")):
        expected = mlflow.data.from_pandas(data.frames[split], targets="target", name="iris.csv")
        assert logged[context].name == "iris.csv"
        assert logged[context].digest == expected.digest
        schema = json.loads(logged[context].schema)["mlflow_colspec"]
        assert [column["name"] for column in schema] == list(data.frames[split].columns)
        assert json.loads(logged[context].profile)["num_rows"] == len(data.frames[split])
