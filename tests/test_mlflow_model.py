"""The MLflow model of a `zoo run` takes the user's raw DataFrame: in a fresh interpreter that
cannot import keras-zoo and through `mlflow models serve` on loopback, it predicts what `zoo predict`
writes for the same rows (labels and probabilities)."""

import json
import os
import signal
import subprocess
import sys
import urllib.request

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from zoo_testing import free_port, wait_for, zoo_here

# a subprocess that runs the logged model with the keras-zoo install hidden: only the model's own
# copy of the `zoo` package (its code) can be imported
FRESH = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
import json, mlflow, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
model.predict(pd.read_csv(sys.argv[2])).to_csv(sys.argv[3], index=False)
signature = model.metadata.signature
print(json.dumps({"zoo": sys.modules["zoo"].__file__,
                  "imported": [name for name in sys.modules if name.split(".")[0] in ("keras_zoo", "tuning")],
                  "inputs": {spec.name: spec.type.name for spec in signature.inputs.inputs},
                  "outputs": {spec.name: spec.type.name for spec in signature.outputs.inputs}}))
"""


def table(rows, seed):
    """A label from a number, a string category, yes/no and a date's month; some values missing."""
    rng = np.random.default_rng(seed)
    size = rng.normal(50, 10, rows).round(2)
    region = rng.choice(["north", "south", "east"], rows)
    member = rng.choice(["yes", "no"], rows)
    day = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, rows), unit="D")
    score = (size - 50) / 10 + np.where(region == "north", 1.0, -0.5) + np.where(member == "yes", 0.5, -0.5)
    frame = pd.DataFrame({"size": size, "region": region, "member": member,
                          "sold_on": day.strftime("%Y-%m-%d"), "label": np.where(score > 0, "good", "bad")})
    frame.loc[rows // 2, "size"] = np.nan
    frame.loc[rows // 3, "region"] = np.nan
    return frame


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """A 1-trial, 1-epoch `zoo run` on a 60-row CSV tracked in a sqlite store; `zoo predict`'s
    output on 6 new rows (an unseen category, a missing number and category among them)."""
    folder = tmp_path_factory.mktemp("mlflow_model")
    table(60, seed=0).to_csv(folder / "train.csv", index=False)
    rows = table(6, seed=1).drop(columns=["label"])
    rows.loc[0, "region"] = "atlantis"
    rows.loc[1, ["size", "region"]] = np.nan
    rows.to_csv(folder / "new.csv", index=False)
    uri = f"sqlite:///{folder}/mlflow.db"
    (folder / "config.yaml").write_text(yaml.safe_dump({
        "data": {"source": "train.csv", "target": "label"},
        "model": {"name": "mlp", "params": {"hidden_units": [8]}},
        "search": {"max_trials": 1, "max_epochs": 1, "tune_training": False},
        "tracking": {"uri": uri, "experiment": "raw"}, "evaluate": {"enabled": False}}))
    run = zoo_here("run", "config.yaml", "--out", "out", cwd=folder)
    assert run.returncode == 0, run.stderr[-3000:]
    predicted = zoo_here("predict", "out", "new.csv", "--out", "zoo.csv", cwd=folder)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("raw").experiment_id
    (model,) = client.search_logged_models([experiment])
    return folder, uri, model.model_uri, pd.read_csv(folder / "zoo.csv")


def same_predictions(found, expected):
    assert list(found.columns) == ["prediction", "probability_bad", "probability_good"]
    assert list(found["prediction"]) == list(expected["prediction"])
    np.testing.assert_allclose(found.iloc[:, 1:].to_numpy(dtype=float), expected.iloc[:, 1:].to_numpy(), atol=1e-6)


@pytest.mark.slow
def test_a_fresh_interpreter_predicts_raw_rows_as_zoo_predict_does(logged):
    folder, uri, model_uri, expected = logged
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    ran = subprocess.run([sys.executable, "-c", FRESH, model_uri, "new.csv", "mlflow.csv"], check=False, cwd=folder,
                         env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    loaded = json.loads(ran.stdout.strip().splitlines()[-1])
    assert f"{os.sep}code{os.sep}zoo{os.sep}" in loaded["zoo"] and not loaded["imported"], loaded
    assert loaded["inputs"] == {"size": "double", "region": "string", "member": "string", "sold_on": "string"}
    assert loaded["outputs"] == {"prediction": "string", "probability_bad": "double", "probability_good": "double"}
    same_predictions(pd.read_csv(folder / "mlflow.csv"), expected)


@pytest.mark.slow
def test_mlflow_models_serve_answers_a_json_request_as_zoo_predict_does(logged):
    folder, uri, model_uri, expected = logged
    port = free_port()
    mlflow_cli = os.path.join(os.path.dirname(sys.executable), "mlflow")
    log = open(folder / "serve.log", "w")  # noqa: SIM115 - the server writes to it while it runs
    server = subprocess.Popen([mlflow_cli, "models", "serve", "-m", model_uri, "--env-manager", "local",
                               "-h", "127.0.0.1", "-p", str(port)], cwd=folder, stdout=log,
                              stderr=subprocess.STDOUT, env={**os.environ, "MLFLOW_TRACKING_URI": uri},
                              start_new_session=True)

    def ready():
        assert server.poll() is None, (folder / "serve.log").read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                return True
        except OSError:
            return False

    try:
        wait_for(ready, 180, "mlflow models serve")
        rows = pd.read_csv(folder / "new.csv")
        body = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the CLI and the uvicorn it started
        server.wait(60)
        log.close()
    same_predictions(pd.DataFrame(answer["predictions"]), expected)
