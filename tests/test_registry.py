"""The best model logged to MLflow: registered under the configured name, with a signature that
says what it takes and gives, and the registered version computes what the search's model does."""

import mlflow
import numpy as np
import pandas as pd
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
    inputs = {spec.name: spec.type.name for spec in info.signature.inputs.inputs}
    assert inputs == {name: "double" for name in data.feature_names}  # the features by name
    outputs = [spec.name for spec in info.signature.outputs.inputs]
    assert outputs == ["prediction"] + [f"probability_{name}" for name in data.class_names]

    loaded = mlflow.pyfunc.load_model("models:/iris-mlp/1")
    expected = result.best_model.predict(data.X_test, verbose=0)
    found = loaded.predict(pd.DataFrame(data.X_test, columns=data.feature_names))
    np.testing.assert_allclose(found.iloc[:, 1:].to_numpy(dtype=float), expected, atol=1e-6)
    assert list(found["prediction"]) == list(np.asarray(data.class_names)[expected.argmax(axis=1)])
