"""The harness every catalog entry passes: build per task, loss falls, save → load, default space."""

import keras
import keras_tuner as kt
import numpy as np
import pytest

import zoo
from tests.conftest import tiny_data

MODELS = zoo.list_models()
MODEL_TASKS = [(name, task) for name in MODELS for task in zoo.get_spec(name).tasks]


def build(name, task=None, **params):
    spec = zoo.get_spec(name)
    task = task or spec.default_task
    num_outputs = 3 if task == "multiclass" else 1
    model = zoo.create_model(name, input_shape=spec.example_input_shape, num_outputs=num_outputs,
                             task=task, **params)
    return model, spec, task, num_outputs


def test_catalog_covers_the_guides_discriminative_families():
    assert {"perceptron", "mlp", "cnn", "resnet", "simple_rnn", "lstm", "gru", "transformer"} <= set(MODELS)


@pytest.mark.parametrize("name,task", MODEL_TASKS)
def test_builds_for_each_task_with_the_right_output(name, task):
    model, spec, task, num_outputs = build(name, task)
    X, _ = tiny_data(spec.example_input_shape, task, samples=4)
    out = model(X, training=False)
    assert out.shape == (4, num_outputs)
    if task == "multiclass":
        np.testing.assert_allclose(np.sum(out, axis=1), 1.0, rtol=1e-5)
    if task == "binary":
        assert np.all((out >= 0) & (out <= 1))


@pytest.mark.parametrize("name", MODELS)
def test_a_few_steps_of_fit_lower_the_loss(name):
    model, spec, task, num_outputs = build(name, learning_rate=3e-3)
    X, y = tiny_data(spec.example_input_shape, task, num_outputs=num_outputs)
    # training-mode loss per epoch: batch-norm moving statistics lag behind in a few steps
    losses = model.fit(X, y, epochs=8, batch_size=16, verbose=0).history["loss"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("name", MODELS)
def test_keras_file_round_trip_in_safe_mode_gives_identical_outputs(name, tmp_path):
    model, spec, task, num_outputs = build(name, schedule="cosine", label_smoothing=0.0)
    X, y = tiny_data(spec.example_input_shape, task, num_outputs=num_outputs, samples=8)
    model.fit(X, y, epochs=1, verbose=0)  # non-initial weights and optimizer state
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(model.predict(X, verbose=0), loaded.predict(X, verbose=0))
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


@pytest.mark.parametrize("name", MODELS)
def test_default_hyperparameters_build_the_default_architecture(name):
    spec = zoo.get_spec(name)
    params = spec.space(kt.HyperParameters(), name)
    default_model, *_ = build(name, compile=False)
    keras.backend.clear_session()
    space_model, *_ = build(name, compile=False, **params)
    assert space_model.to_json() == default_model.to_json()
    assert space_model.count_params() == default_model.count_params()


@pytest.mark.parametrize("name", MODELS)
def test_search_space_explores_more_than_the_default(name):
    spec = zoo.get_spec(name)
    hp = kt.HyperParameters()
    spec.space(hp, name)
    assert hp.space, f"{name} has an empty search space"
    # every hyperparameter name is prefixed, so families can share one search
    assert all(p.name.startswith(name) for p in hp.space)


def test_layer_names_are_fixed_across_builds():
    first, *_ = build("resnet", compile=False)
    second, *_ = build("resnet", compile=False)
    assert [layer.name for layer in first.layers] == [layer.name for layer in second.layers]


def test_no_lambda_layers_anywhere():
    for name in MODELS:
        model, *_ = build(name, compile=False)
        assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers), name


def test_builder_functions_validate_like_create_model():
    from zoo.models.mlp import mlp

    model = mlp(input_shape=(5,), num_outputs=2, task="multiclass", hidden_units=[8])
    assert model.get_layer("hidden_1_dense").units == 8
    with pytest.raises(zoo.InvalidParameterError, match="dropout_rate"):
        mlp(input_shape=(5,), num_outputs=2, dropout_rate=1.5)
