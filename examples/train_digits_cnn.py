"""Train the catalog's default CNN on scikit-learn's bundled digits and report test accuracy."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import zoo  # noqa: E402
from zoo import training  # noqa: E402
from zoo.data import load_dataset  # noqa: E402


def main():
    data = load_dataset("digits", shape="image", seed=0)
    model = zoo.create_model("cnn", input_shape=data.input_shape, num_outputs=data.num_outputs)
    callbacks = training.make_callbacks(early_stopping=True, patience=5)
    model.fit(data.X_train, data.y_train, validation_data=(data.X_val, data.y_val), epochs=40,
              batch_size=32, callbacks=callbacks, verbose=2)
    metrics = model.evaluate(data.X_test, data.y_test, verbose=0, return_dict=True)
    print(f"test accuracy: {metrics['accuracy']:.4f} on {len(data.X_test)} held-out digits")


if __name__ == "__main__":
    main()
