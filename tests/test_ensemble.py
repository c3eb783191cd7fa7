"""An ensemble of a search's trained models as one Keras model: it averages its members on their
common raw input, saves in safe mode, exports to TFLite and ONNX with parity on raw rows (a string
column entering as a string), and refuses members it cannot average and a size beyond the trials."""

import warnings

import numpy as np
import pandas as pd
import pytest

ROWS = 150
SMALL_MLP = {"mlp_units_count": 1, "mlp_units_0": 16}
# members whose preprocessing differs (scaling, embeddings of numbers and of categories)
TABLE_MEMBERS = (
    {**SMALL_MLP, "features_scaling": "quantile", "features_numeric_embedding": "periodic",
     "features_frequencies": 8, "features_categories": "embedding", "features_category_dim": 4},
    {**SMALL_MLP, "features_scaling": "robust", "features_numeric_embedding": "none",
     "features_categories": "one_hot"},
    {**SMALL_MLP, "features_scaling": "standard", "features_numeric_embedding": "none",
     "features_categories": "auto", "features_category_dim": 4},
)


def frame(rows=ROWS, seed=0):
    """A number with gaps, a string category, a bool, a date and a three-class label."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({
        "size": np.where(rng.random(rows) < 0.1, np.nan, rng.normal(10, 3, rows).round(3)),
        "city": rng.choice(["north", "south", "Zürich", "east"], rows).astype(object),
        "promo": rng.choice([True, False], rows),
        "day": (pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, rows), unit="D"))
        .strftime("%Y-%m-%d").astype(object),
    })
    score = (table["size"].fillna(10) - 10) / 3 + np.where(table["city"] == "north", 1.0, -0.5)
    table["label"] = np.select([score < -0.5, score < 0.5], ["low", "mid"], "high")
    return table


def trained_members(data, points):
    """One model per hyperparameter point, each built by a table search's hypermodel in a Keras
    session of its own (so their layer names clash) and fitted for an epoch."""
    import keras
    import keras_tuner as kt

    from tuning.hypermodel import ZooHyperModel

    members = []
    for index, point in enumerate(points):
        keras.backend.clear_session(free_memory=False)
        keras.utils.set_random_seed(index)
        hypermodel = ZooHyperModel(["mlp"], input_shape=data.feature_shape, num_outputs=data.num_outputs,
                                   task=data.task, compose=data.compose, class_names=data.class_names,
                                   fixed=point)
        hp = kt.HyperParameters()
        hypermodel.declare_hyperparameters(hp)
        model = hypermodel.build(hp)
        hypermodel.fit(hp, model, data.X_train, data.y_train, epochs=1, verbose=0)
        members.append(model)
    return members


@pytest.fixture(scope="module")
def table():
    """(dataset, members, ensemble) of a multiclass table with a string column."""
    from tuning.ensemble import ensemble_model
    from zoo.data import dataset_from_frame

    data = dataset_from_frame(frame(), target="label", test_size=0.2, val_size=0.0, seed=0)
    members = trained_members(data, TABLE_MEMBERS)
    return data, members, ensemble_model(members, task=data.task)


def predictions(model, X):
    return np.asarray(model.predict(X, verbose=0), dtype="float64")


def test_the_ensemble_averages_its_members_probabilities(table):
    data, members, ensemble = table
    assert [m.name for m in members] == ["mlp"] * 3  # the same names, from separate sessions
    assert {"feature_model", "mlp"} <= {layer.name for layer in members[0].layers}
    assert [layer.name for layer in ensemble.layers] == ["inputs", "member_0", "member_1", "member_2", "average"]
    layouts = {tuple(layer.name for layer in m.get_layer("feature_model").layers) for m in members}
    assert len(layouts) == 3  # each member carries its own preprocessing
    expected = np.mean([predictions(m, data.X_test) for m in members], axis=0)
    got = predictions(ensemble, data.X_test)
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)  # still probabilities
    scores = ensemble.evaluate(data.X_test, data.y_test, verbose=0, return_dict=True)
    assert set(scores) == {"loss", "accuracy"}  # compiled as a trial's model is
    labels = np.argmax(got, axis=1)
    assert scores["accuracy"] == pytest.approx(np.mean(labels == data.y_test), abs=1e-6)


def test_a_regression_ensemble_averages_in_the_targets_units():
    import keras
    import keras_tuner as kt

    from tuning.ensemble import ensemble_model
    from tuning.hypermodel import ZooHyperModel
    from zoo.data import load_dataset

    data = load_dataset("diabetes", task="regression", scale="model", test_size=0.2, val_size=0.0, seed=0)
    assert data.target_stats is not None  # members unscale their outputs inside the graph
    members = []
    for index, hidden in enumerate([(8,), (16, 8)]):
        keras.backend.clear_session(free_memory=False)
        keras.utils.set_random_seed(index)
        hypermodel = ZooHyperModel(["mlp"], input_shape=data.feature_shape, num_outputs=1,
                                   task="regression", compose=data.compose,
                                   params={"hidden_units": hidden}, tune_training=False)
        model = hypermodel.build(kt.HyperParameters())
        model.fit(data.X_train, data.y_train, epochs=2, verbose=0)
        members.append(model)
    ensemble = ensemble_model(members, task="regression")
    outputs = [predictions(m, data.X_test) for m in members]
    assert np.abs(outputs[0] - outputs[1]).max() > 1.0  # the members differ
    assert np.abs(outputs[0]).mean() > 50  # in the target's units, not scaled
    scale = np.abs(outputs).max()  # float32 sums of values this large round at ~1e-5
    np.testing.assert_allclose(predictions(ensemble, data.X_test), np.mean(outputs, axis=0),
                               rtol=0, atol=1e-6 * scale)
    scores = ensemble.evaluate(data.X_test, data.y_test, verbose=0, return_dict=True)
    assert set(scores) == {"loss", "mae", "rmse"}


def test_the_ensemble_saves_and_loads_in_safe_mode(table, tmp_path):
    from zoo.saving import load_keras_model

    data, _, ensemble = table
    ensemble.save(tmp_path / "ensemble.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. an optimizer saved without its slots
        loaded = load_keras_model(tmp_path / "ensemble.keras")
    np.testing.assert_allclose(predictions(loaded, data.X_test), predictions(ensemble, data.X_test),
                               atol=1e-6, rtol=0)
    assert loaded.evaluate(data.X_test, data.y_test, verbose=0, return_dict=True)["accuracy"] == pytest.approx(
        ensemble.evaluate(data.X_test, data.y_test, verbose=0, return_dict=True)["accuracy"])
    from zoo.data import class_names_of

    assert class_names_of(loaded) == data.class_names


def test_the_ensemble_exports_with_parity_and_its_artifacts_take_the_raw_row(table, tmp_path):
    import onnxruntime

    from export import export_model
    from keras_zoo.pipeline import preprocessing_description
    from zoo.preprocessing import artifact_inputs

    data, _, ensemble = table
    description = preprocessing_description(data)
    manifest = export_model(ensemble, tmp_path / "export", formats=("savedmodel", "tflite", "onnx"),
                            samples=data.X_test, labels=data.y_test, latency_repeats=0,
                            preprocessing=description)
    assert manifest.ok, manifest
    assert manifest.preprocessing["inputs"] == "raw"
    for name in ("savedmodel", "tflite", "onnx"):
        parity = manifest[name].parity
        assert parity["passed"] and parity["outputs"][0]["max_abs_error"] <= 1e-5, (name, parity)
    # the raw test rows, strings as strings, fed by hand to ONNX Runtime: the ensemble's outputs
    feed = artifact_inputs(description["tabular"], data.frames["test"].drop(columns=["label"]))
    assert feed["city"].dtype == object and isinstance(feed["city"][0, 0], str)
    session = onnxruntime.InferenceSession(str(tmp_path / "export" / manifest["onnx"].path))
    names = [i.name for i in session.get_inputs()]
    assert sorted(names) == sorted(feed)
    onnx_feed = {k: (v.astype(str) if v.dtype == object else v) for k, v in feed.items()}
    (got,) = session.run(None, onnx_feed)
    np.testing.assert_allclose(got, predictions(ensemble, data.X_test), atol=1e-5, rtol=0)


def test_the_raw_model_of_an_ensemble_takes_the_raw_columns(table, tmp_path):
    from zoo.saving import load_keras_model
    from zoo.serving import predict_raw
    from zoo.tabular import frame_to_inputs

    data, _, ensemble = table
    raw = data.raw_model(ensemble)
    raw.save(tmp_path / "best_model.keras")
    loaded = load_keras_model(tmp_path / "best_model.keras")
    assert str(loaded.input["city"].dtype) == "string"
    feed = frame_to_inputs(data.frames["test"].drop(columns=["label"]), data.schema)
    np.testing.assert_allclose(predict_raw(loaded, feed), predictions(ensemble, data.X_test),
                               atol=1e-6, rtol=0)


def test_members_on_raw_columns_make_an_ensemble_on_raw_columns(table):
    from tuning.ensemble import ensemble_model
    from zoo.serving import predict_raw
    from zoo.tabular import frame_to_inputs

    data, members, _ = table
    raw_members = [data.raw_model(member) for member in members[:2]]  # both named "raw_model"
    ensemble = ensemble_model(raw_members, task=data.task)
    assert isinstance(ensemble.input, dict) and str(ensemble.input["city"].dtype) == "string"
    feed = frame_to_inputs(data.frames["test"].drop(columns=["label"]), data.schema)
    expected = np.mean([predict_raw(member, feed) for member in raw_members], axis=0)
    np.testing.assert_allclose(predict_raw(ensemble, feed), expected, atol=1e-6, rtol=0)


def test_one_member_is_returned_as_it_is(table):
    from tuning.ensemble import ensemble_model

    data, members, _ = table
    assert ensemble_model(members[:1], task=data.task) is members[0]


def test_members_it_cannot_average_are_refused(table):
    import keras

    from tuning.ensemble import ensemble_model
    from zoo.errors import InvalidParameterError
    from zoo.layers.preprocessing import ClassNames

    data, members, _ = table
    inputs = keras.Input(data.input_shape)
    two_heads = keras.Model(inputs, {"a": keras.layers.Dense(3)(inputs), "b": keras.layers.Dense(1)(inputs)})
    with pytest.raises(InvalidParameterError, match="one tensor to average"):
        ensemble_model([members[0], two_heads], task=data.task)
    other = keras.Input((data.input_shape[0] - 1,))
    narrower = keras.Model(other, keras.layers.Dense(3, activation="softmax")(other))
    with pytest.raises(InvalidParameterError, match="same inputs") as error:
        ensemble_model([members[0], narrower], task=data.task)
    assert "\n" not in str(error.value)
    same = keras.Input(data.input_shape)
    renamed = keras.Model(same, ClassNames(["a", "b", "c"], name="class_names")(
        keras.layers.Dense(3, activation="softmax")(same)))
    with pytest.raises(InvalidParameterError, match="same class names"):
        ensemble_model([members[0], renamed], task=data.task)
    with pytest.raises(InvalidParameterError, match="`task`"):
        ensemble_model(members, task="autoencoder")


def test_an_ensemble_larger_than_the_trials_is_refused():
    from tuning.ensemble import check_ensemble_size
    from zoo.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError) as error:
        check_ensemble_size(5, 3)
    assert str(error.value) == ("`search.ensemble_size` must not exceed the trials the search runs "
                                "(max_trials=3). Received: search.ensemble_size=5")
    check_ensemble_size(3, 3)
    check_ensemble_size(None, 3)
    check_ensemble_size(4, None)  # a time budget alone bounds the trials
