"""Real-data checks: the perceptron's limits (XOR) and the default CNN on digits."""

import numpy as np
import pytest

import zoo
from zoo.data import load_dataset


def test_perceptron_learns_a_linearly_separable_problem_but_not_xor():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype="float32")
    and_labels = np.array([0, 0, 0, 1])
    xor_labels = np.array([0, 1, 1, 0])
    accuracy = {}
    # 150 steps of 32 rows, as 6 epochs of 25 batches: Keras's per-epoch overhead, not the
    # training, was most of this test's time at 150 one-batch epochs
    for name, labels in (("and", and_labels), ("xor", xor_labels)):
        model = zoo.create_model("perceptron", input_shape=(2,), learning_rate=0.1)
        model.fit(np.repeat(X, 200, axis=0), np.repeat(labels, 200), epochs=6, verbose=0)
        accuracy[name] = float(np.mean((model.predict(X, verbose=0)[:, 0] > 0.5) == labels))
    assert accuracy["and"] == 1.0
    assert accuracy["xor"] <= 0.75  # no line separates XOR
    # one hidden layer is enough for XOR: the limit is the perceptron's, not the training
    mlp = zoo.create_model("mlp", input_shape=(2,), task="binary", hidden_units=(8,),
                           activation="tanh", learning_rate=0.05)
    mlp.fit(np.repeat(X, 200, axis=0), np.repeat(xor_labels, 200), epochs=6, verbose=0)
    assert np.all((mlp.predict(X, verbose=0)[:, 0] > 0.5) == xor_labels)


@pytest.mark.slow
def test_default_cnn_on_digits_reaches_097_test_accuracy():
    data = load_dataset("digits", shape="image", seed=0)
    model = zoo.create_model("cnn", input_shape=data.input_shape, num_outputs=data.num_outputs)
    model.fit(data.X_train, data.y_train, validation_data=(data.X_val, data.y_val), epochs=30,
              batch_size=32, verbose=0)
    accuracy = model.evaluate(data.X_test, data.y_test, verbose=0, return_dict=True)["accuracy"]
    print(f"cnn digits test accuracy: {accuracy:.4f}")
    assert accuracy >= 0.97
