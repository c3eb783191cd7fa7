"""The harness every catalog entry passes: build per task, loss falls, save → load, default space.

Each model trains on data of its kind: labelled samples (supervised tasks), unlabelled samples
in [0, 1] (reconstruction, generation), labelled pairs (verification), small graphs (graph input).
"""

import keras
import keras_tuner as kt
import numpy as np
import pytest
from zoo_testing import tiny_data

import zoo
from zoo.models.gnn import normalize_adjacency
from zoo.models.siamese import make_pairs

MODELS = zoo.list_models()
MODEL_TASKS = [(name, task) for name in MODELS for task in zoo.get_spec(name).tasks]
SUPERVISED = ("binary", "multiclass", "regression")
# 3e-3 lets the discriminator overpower the generator within a few steps (DCGAN uses 2e-4)
FIT_LEARNING_RATE = {"gan": 1e-3}


def build(name, task=None, **params):
    spec = zoo.get_spec(name)
    task = task or spec.default_task
    num_outputs = 3 if task == "multiclass" else 1
    model = zoo.create_model(name, input_shape=spec.example_input_shape, num_outputs=num_outputs,
                             task=task, **params)
    return model, spec, task, num_outputs


def tiny_unlabelled(input_shape, *, samples=64, seed=0):
    """Samples in [0, 1] on a 2-dimensional manifold, so there is structure to learn; each
    feature has its own mean, away from an untrained sigmoid decoder's 0.5."""
    rng = np.random.default_rng(seed)
    codes = rng.normal(size=(samples, 2))
    size = int(np.prod(input_shape))
    logits = codes @ rng.normal(size=(2, size)) + rng.normal(scale=2.0, size=size)
    return (1.0 / (1.0 + np.exp(-logits))).reshape(samples, *input_shape).astype("float32")


def tiny_graphs(input_shape, task, *, num_outputs, graphs=32, seed=0):
    """`graphs` random graphs with node labels a linear function of the propagated features."""
    rng = np.random.default_rng(seed)
    num_nodes = input_shape[0]
    features = rng.normal(size=(graphs, *input_shape)).astype("float32")
    upper = np.triu(rng.uniform(size=(graphs, num_nodes, num_nodes)) < 0.3, k=1)
    adjacency = (upper | upper.transpose(0, 2, 1)).astype("float32")
    propagated = normalize_adjacency(adjacency) @ features
    weights = np.random.default_rng(seed + 1).normal(size=(input_shape[1], num_outputs))
    scores = propagated.reshape(-1, input_shape[1]) @ weights
    if task == "multiclass":
        labels = np.argmax(scores, axis=1)
    elif task == "binary":
        labels = (scores[:, 0] > 0).astype("int64")
    else:
        labels = scores.astype("float32")
    return [features, adjacency], labels.reshape(graphs, num_nodes, *labels.shape[1:])


def harness_data(spec, task, num_outputs, *, samples=64):
    """`(x, y)` to fit and predict with, in the form the model trains on (y may be None)."""
    shape = spec.example_input_shape
    if spec.input_kind == "graph":
        return tiny_graphs(shape, task, num_outputs=num_outputs, graphs=max(samples // 2, 2))
    if task == "reconstruction":
        x = tiny_unlabelled(shape, samples=samples)
        return x, x
    if task == "generation":
        return tiny_unlabelled(shape, samples=samples), None
    if task == "verification":
        X, labels = tiny_data(shape, "multiclass", num_outputs=3, samples=samples)
        return make_pairs(X, labels, seed=0)
    return tiny_data(shape, task, num_outputs=num_outputs, samples=samples)


def test_catalog_covers_the_guides_discriminative_families():
    assert {"perceptron", "mlp", "cnn", "resnet", "simple_rnn", "lstm", "gru", "transformer"} <= set(MODELS)


def test_catalog_covers_the_guides_generative_and_relational_families():
    assert {"autoencoder", "vae", "gan", "siamese", "gnn"} <= set(MODELS)


@pytest.mark.parametrize("name,task", MODEL_TASKS)
def test_builds_for_each_task_with_the_right_output(name, task):
    model, spec, task, num_outputs = build(name, task)
    x, _ = harness_data(spec, task, num_outputs, samples=4)
    out = np.asarray(model(x, training=False))
    assert np.all(np.isfinite(out))
    if task in SUPERVISED:
        expected = (4, num_outputs) if spec.input_kind != "graph" else (*x[0].shape[:2], num_outputs)
        assert out.shape == expected
        if task == "multiclass":
            np.testing.assert_allclose(np.sum(out, axis=-1), 1.0, rtol=1e-5)
        if task == "binary":
            assert np.all((out >= 0) & (out <= 1))
    elif task == "reconstruction":
        assert out.shape == x.shape
    elif task == "generation":
        assert out.shape[0] == 4
        assert model.sample(3).shape == (3, *spec.example_input_shape)
    elif task == "verification":
        assert out.shape == (4,)
        assert np.all(out >= 0)


@pytest.mark.parametrize("name", MODELS)
def test_a_few_steps_of_fit_lower_the_loss(name):
    model, spec, task, num_outputs = build(name, learning_rate=FIT_LEARNING_RATE.get(name, 3e-3))
    x, y = harness_data(spec, task, num_outputs)
    sample_gap_before = _sample_gap(model, x) if task == "generation" else None
    # training-mode loss per epoch: batch-norm moving statistics lag behind in a few steps
    history = model.fit(x, y, epochs=8, batch_size=16, verbose=0).history
    assert all(np.all(np.isfinite(values)) for values in history.values()), history
    if "loss" in history:
        assert history["loss"][-1] < history["loss"][0]
    else:  # adversarial: neither loss need fall, but the samples must move toward the data
        assert _sample_gap(model, x) < sample_gap_before


def _sample_gap(model, x):
    """Squared distance between the mean generated sample and the mean data sample."""
    return float(np.mean((model.sample(256, seed=1).mean(axis=0) - x.mean(axis=0)) ** 2))


@pytest.mark.parametrize("name", MODELS)
def test_keras_file_round_trip_in_safe_mode_gives_identical_outputs(name, tmp_path):
    model, spec, task, num_outputs = build(name, schedule="cosine", label_smoothing=0.0)
    x, y = harness_data(spec, task, num_outputs, samples=8)
    # one eager step (8 samples: tracing a graph would cost more than running it) gives
    # non-initial weights and optimizer state
    model.run_eagerly = True
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    loaded.run_eagerly = True
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    if task == "generation":
        np.testing.assert_array_equal(model.sample(4, seed=3), loaded.sample(4, seed=3))
    if model.optimizer.variables:
        assert [v.shape for v in loaded.optimizer.variables] == [v.shape for v in model.optimizer.variables]
        np.testing.assert_array_equal(loaded.optimizer.iterations, model.optimizer.iterations)


@pytest.mark.parametrize("name", MODELS)
def test_default_hyperparameters_build_the_default_architecture(name):
    spec = zoo.get_spec(name)
    params = spec.space(kt.HyperParameters(), name)
    default_model, *_ = build(name, compile=False)
    keras.backend.clear_session(free_memory=False)  # layer names counted from 0 again (no gc: 0.6 s)
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


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def test_no_lambda_layers_anywhere():
    for name in MODELS:
        model, *_ = build(name, compile=False)
        # nested too: the generative models and the Siamese network hold Functional sub-models
        assert not any(isinstance(layer, keras.layers.Lambda) for layer in _all_layers(model)), name


def test_builder_functions_validate_like_create_model():
    from zoo.models.mlp import mlp

    model = mlp(input_shape=(5,), num_outputs=2, task="multiclass", hidden_units=[8])
    assert model.get_layer("hidden_1_dense").units == 8
    with pytest.raises(zoo.InvalidParameterError, match="dropout_rate"):
        mlp(input_shape=(5,), num_outputs=2, dropout_rate=1.5)
