"""The best model logged to MLflow: registered under the configured name, with a signature that
says what it takes and gives, and the registered version computes what the search's model does."""

import mlflow
import numpy as np
from mlflow import MlflowClient

from tuning import search
from zoo.data import load_dataset


def test_the_best_model_is_registered_with_its_signature_and_predicts_the_same(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    data = load_dataset("iris")
    result = search(data, algorithm="random", families=["mlp"], max_trials=1, max_epochs=2, directory=str(tmp_path / "s"),
                    tracking_uri=uri, progress=False, register_model="iris-mlp",
                    params={"hidden_units": (8,)})
    client = MlflowClient(uri)
    (version,) = client.search_model_versions("name = 'iris-mlp'")
    assert str(version.version) == "1" and version.run_id == result.run_id

    mlflow.set_tracking_uri(uri)
    info = mlflow.models.get_model_info("models:/iris-mlp/1")
    (inputs,), (outputs,) = info.signature.inputs.inputs, info.signature.outputs.inputs
    assert inputs.shape == (-1, 4) and str(inputs.type) == "float32"
    assert outputs.shape == (-1, 3) and str(outputs.type) == "float32"

    loaded = mlflow.pyfunc.load_model("models:/iris-mlp/1")
    expected = result.best_model.predict(data.X_test, verbose=0)
    np.testing.assert_allclose(np.asarray(loaded.predict(data.X_test.astype("float32"))), expected,
                               atol=1e-6)
