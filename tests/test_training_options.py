"""Every named training option is exercised: activations, initializers, regularizers, optimizers,
schedules, clipping, label smoothing, early stopping and reduce-on-plateau."""

import keras
import numpy as np
import pytest

import zoo
from zoo_testing import tiny_data
from zoo import training


def fit_mlp(epochs=2, **params):
    X, y = tiny_data((6,), "multiclass", num_outputs=3)
    model = zoo.create_model("mlp", input_shape=(6,), num_outputs=3, hidden_units=(8,), **params)
    model.run_eagerly = True  # 8 steps: tracing a graph would cost more than running them
    history = model.fit(X, y, epochs=epochs, batch_size=16, verbose=0)
    return model, history.history["loss"]


@pytest.mark.parametrize("activation", training.ACTIVATIONS)
def test_activation(activation):
    model, losses = fit_mlp(activation=activation)
    assert np.all(np.isfinite(losses))
    layer = model.get_layer("hidden_1_act")
    if activation == "prelu":
        assert isinstance(layer, keras.layers.PReLU) and layer.count_params() == 8
    elif activation == "leaky_relu":
        assert isinstance(layer, keras.layers.LeakyReLU)
    else:
        assert layer.get_config()["activation"] == {"swish": "silu"}.get(activation, activation)


def test_selu_pairs_with_lecun_normal_and_alpha_dropout():
    model, _ = fit_mlp(activation="selu", dropout_rate=0.1)
    dense = model.get_layer("hidden_1_dense")
    assert dense.kernel_initializer.__class__.__name__ == "LecunNormal"
    assert isinstance(model.get_layer("hidden_1_drop"), keras.layers.AlphaDropout)
    relu, _ = fit_mlp(activation="relu", dropout_rate=0.1)
    assert relu.get_layer("hidden_1_dense").kernel_initializer.__class__.__name__ == "HeNormal"
    assert type(relu.get_layer("hidden_1_drop")) is keras.layers.Dropout


@pytest.mark.parametrize("initializer,expected", [
    ("he", "HeNormal"), ("he_uniform", "HeUniform"), ("glorot", "GlorotUniform"),
    ("xavier", "GlorotUniform"), ("glorot_normal", "GlorotNormal"), ("lecun", "LecunNormal"),
    ("lecun_uniform", "LecunUniform"),
])
def test_initializer(initializer, expected):
    model = zoo.create_model("mlp", input_shape=(6,), num_outputs=3, initializer=initializer)
    assert model.get_layer("hidden_1_dense").kernel_initializer.__class__.__name__ == expected


@pytest.mark.parametrize("regularizer,expected", [("l1", "L1"), ("l2", "L2"), ("l1_l2", "L1L2"),
                                                  ("elastic_net", "L1L2")])
def test_regularizer_adds_a_penalty_to_the_loss(regularizer, expected):
    model, losses = fit_mlp(regularizer=regularizer, regularization=0.5)
    assert model.get_layer("hidden_1_dense").kernel_regularizer.__class__.__name__ == expected
    assert model.losses  # the penalty is part of the training loss
    _, plain = fit_mlp()
    assert losses[0] > plain[0]


def test_max_norm_bounds_each_units_incoming_weights():
    model, _ = fit_mlp(max_norm=0.1, learning_rate=0.5, optimizer="sgd", epochs=3)
    kernel = model.get_layer("hidden_1_dense").kernel.numpy()
    assert np.all(np.linalg.norm(kernel, axis=0) <= 0.1 + 1e-5)


def test_batch_norm_and_dropout_layers():
    model, _ = fit_mlp(batch_norm=True, dropout_rate=0.3)
    assert isinstance(model.get_layer("hidden_1_bn"), keras.layers.BatchNormalization)
    assert model.get_layer("hidden_1_drop").rate == pytest.approx(0.3)


@pytest.mark.parametrize("optimizer,expected", [
    ("sgd", "SGD"), ("momentum", "SGD"), ("nesterov", "SGD"), ("adagrad", "Adagrad"),
    ("rmsprop", "RMSprop"), ("adam", "Adam"), ("adamw", "AdamW"),
])
def test_optimizer(optimizer, expected):
    model, losses = fit_mlp(optimizer=optimizer, learning_rate=0.05, epochs=4)
    assert model.optimizer.__class__.__name__ == expected
    assert losses[-1] < losses[0]
    if optimizer == "momentum":
        assert model.optimizer.momentum == pytest.approx(0.9) and not model.optimizer.nesterov
    if optimizer == "nesterov":
        assert model.optimizer.nesterov


@pytest.mark.parametrize("schedule", ["step", "exponential", "cosine", "cosine_restarts", "one_cycle"])
def test_schedule_changes_the_learning_rate_over_steps(schedule):
    options = training.check_options({"schedule": schedule, "learning_rate": 0.01, "decay_steps": 10})
    lr = training.make_schedule(options)
    values = [float(lr(step)) for step in (0, 3, 10, 20)]
    assert len(set(round(v, 10) for v in values)) > 1, values
    model, losses = fit_mlp(schedule=schedule, learning_rate=0.01, decay_steps=10)
    assert np.all(np.isfinite(losses))


def test_step_schedule_is_piecewise_constant_and_one_cycle_peaks_in_the_middle():
    step = training.make_schedule(training.check_options(
        {"schedule": "step", "learning_rate": 0.1, "decay_steps": 5, "decay_rate": 0.5}))
    assert [round(float(step(s)), 6) for s in (0, 4, 5, 9, 10)] == [0.1, 0.1, 0.05, 0.05, 0.025]
    cycle = training.make_schedule(training.check_options(
        {"schedule": "one_cycle", "learning_rate": 0.1, "decay_steps": 100}))
    values = [float(cycle(s)) for s in range(0, 101, 10)]
    assert max(values) == pytest.approx(0.1, rel=1e-3)
    assert values[0] < 0.01 and values[-1] < 1e-4
    assert int(np.argmax(values)) == 3  # 30% warm-up
    warm = training.make_schedule(training.check_options(
        {"schedule": "cosine", "learning_rate": 0.1, "decay_steps": 100, "warmup_steps": 10}))
    assert float(warm(0)) < float(warm(10))


@pytest.mark.parametrize("clip", [{"clipnorm": 1.0}, {"clipvalue": 0.5}])
def test_gradient_clipping(clip):
    model, losses = fit_mlp(**clip)
    key = next(iter(clip))
    assert getattr(model.optimizer, key) == pytest.approx(clip[key])
    assert np.all(np.isfinite(losses))

    def one_step(**params):  # plain SGD at rate 1: a weight moves by exactly its (clipped) gradient
        X, y = tiny_data((6,), "regression", num_outputs=1)
        keras.utils.set_random_seed(0)
        model = zoo.create_model("mlp", input_shape=(6,), num_outputs=1, task="regression",
                                 hidden_units=(8,), optimizer="sgd", learning_rate=1.0, **params)
        before = [w.numpy().copy() for w in model.trainable_weights]
        model.train_on_batch(X, 1e3 * y)  # targets far off: gradients far above the clip
        return [w.numpy() - b for w, b in zip(model.trainable_weights, before)]

    clipped, free = one_step(**clip), one_step()
    if key == "clipnorm":  # Keras clips each variable's gradient to the norm
        assert max(np.linalg.norm(step) for step in clipped) == pytest.approx(1.0, rel=1e-4)
        assert max(np.linalg.norm(step) for step in free) > 10
    else:
        assert max(np.abs(step).max() for step in clipped) == pytest.approx(0.5, rel=1e-4)
        assert max(np.abs(step).max() for step in free) > 5


def test_label_smoothing_binary_and_multiclass():
    model, losses = fit_mlp(label_smoothing=0.2)
    assert model.loss.label_smoothing == pytest.approx(0.2)
    X, y = tiny_data((6,), "binary")
    binary = zoo.create_model("mlp", input_shape=(6,), task="binary", label_smoothing=0.1)
    binary.fit(X, y, epochs=1, verbose=0)
    assert binary.loss.get_config()["label_smoothing"] == pytest.approx(0.1)
    # smoothing puts a floor under the loss: perfectly confident predictions are penalized
    y_true = np.array([0, 1])
    confident = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype="float32")
    assert float(model.loss(y_true, confident)) > 0.1


def test_early_stopping_stops_when_validation_loss_stalls():
    X, y = tiny_data((6,), "multiclass", num_outputs=3)
    rng = np.random.default_rng(1)
    y_noise = rng.integers(0, 3, size=len(y))
    model = zoo.create_model("mlp", input_shape=(6,), num_outputs=3, learning_rate=0.05)
    callbacks = training.make_callbacks(early_stopping=True, patience=2)
    history = model.fit(X, y_noise, validation_split=0.5, epochs=200, callbacks=callbacks, verbose=0)
    assert len(history.history["loss"]) < 200


def test_reduce_on_plateau_lowers_the_learning_rate():
    X, y = tiny_data((6,), "multiclass", num_outputs=3)
    # a tiny learning rate keeps the loss flat, which is what the callback watches for
    model = zoo.create_model("mlp", input_shape=(6,), num_outputs=3, learning_rate=1e-6, optimizer="sgd")
    callbacks = training.make_callbacks(reduce_on_plateau=True, plateau_patience=0,
                                        plateau_factor=0.5, monitor="loss")
    rng = np.random.default_rng(2)
    model.fit(X, rng.integers(0, 3, size=len(y)), epochs=4, callbacks=callbacks, verbose=0)
    assert float(model.optimizer.learning_rate) < 1e-6 * 0.5 + 1e-12


def test_callback_options_are_validated():
    with pytest.raises(zoo.InvalidParameterError, match="`monitor` of `callbacks`"):
        training.make_callbacks(early_stopping=True, monitor="val_los")
