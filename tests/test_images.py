"""Images from folders streamed from disk: `zoo run` on generated PNG and JPEG files in class
folders (a corrupted file and a stray text file among them), `zoo predict` on held-out files in
each format, a pretrained `backbone` from a local weights file, bad inputs refused, and peak
memory that does not grow with the number of images."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from zoo_testing import zoo_here

CLASSES = ("circle", "square", "stripes")


def make_images(root, per_class=20, size=16, seed=0, formats=("png", "jpg")):
    """`per_class` images of each class, alternately PNG and JPEG: noise with the class's colour
    channel raised (learnable in an epoch or two); one corrupted PNG and one text file besides."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label, name in enumerate(CLASSES):
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for index in range(per_class):
            pixels = rng.integers(0, 60, (size, size, 3)).astype("uint8")
            pixels[..., label] += 150
            fmt = formats[index % len(formats)]
            Image.fromarray(pixels).save(os.path.join(root, name, f"{index:04d}.{fmt}"))
    with open(os.path.join(root, "circle", "broken.png"), "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\nnot an image after all")
    with open(os.path.join(root, "square", "notes.txt"), "w") as handle:
        handle.write("not an image")
    return root


def write_config(folder, source, **extra):
    import yaml

    config = {"data": {"source": str(source)}, "search": {"algorithm": "random", "max_trials": 1,
                                                          "max_epochs": 2},
              "tracking": {"enabled": False}, "export": {"enabled": True}}
    for key, value in extra.items():
        config.setdefault(key, {}).update(value)
    path = os.path.join(folder, "run.yaml")
    with open(path, "w") as handle:
        yaml.safe_dump(config, handle)
    return path


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    pictures = make_images(str(folder / "pictures"))
    held_out = make_images(str(folder / "held_out"), per_class=4, seed=1)
    formats = ["keras", "savedmodel", "tflite", "onnx"]
    # the default cnn without augmentation at a fixed rate: three epochs of 42 images learn the colours
    fixed = {"flip": "none", "rotation": 0.0, "zoom": 0.0, "contrast": 0.0, "translation": 0.0, "learning_rate": 0.01}
    # tracking on: the splits reach MLflow as tables of files and labels
    config = write_config(folder, pictures, model={"families": ["cnn"], "params": fixed},
                          search={"tune_training": False, "max_epochs": 3}, export={"formats": formats},
                          tracking={"enabled": True, "uri": f"sqlite:///{folder}/mlflow.db"})
    done = zoo_here("run", config, "--out", folder / "out", cwd=folder)
    return folder, done, held_out


def test_zoo_run_on_a_folder_of_images_says_what_it_read_and_skipped(image_run):
    folder, done, _ = image_run
    assert done.returncode == 0, done.stderr[-3000:]
    assert "note: images: 60 in 3 classes (circle 20, square 20, stripes 20), RGB" in done.stdout
    assert "note: skipped 2 files: 1 without an image extension, 1 unreadable, e.g. 'circle/broken.png'" in done.stdout
    assert "note: data.image_size inferred: 16x16" in done.stdout
    manifest = json.loads((folder / "out" / "export" / "manifest.json").read_text())
    assert manifest["model"]["inputs"] == [{"name": "pixels", "shape": [None, 16, 16, 3], "dtype": "uint8"}]
    report = json.loads((folder / "out" / "report" / "report.json").read_text())
    assert report["metrics"]["accuracy_score"] >= 0.8


@pytest.mark.parametrize("fmt", ["keras", "savedmodel", "tflite", "onnx"])
def test_zoo_predict_on_held_out_files_gives_the_keras_models_labels_and_probabilities(image_run, fmt):
    import keras
    import pandas as pd

    from zoo.images import decode_files

    folder, done, held_out = image_run
    assert done.returncode == 0, done.stderr[-3000:]
    status = {a["name"]: a["status"] for a in json.loads((folder / "out" / "export" / "manifest.json").read_text())["artifacts"]}
    assert status.get(fmt) == "ok"
    written = zoo_here("predict", folder / "out", held_out, "--format", fmt, "--out", folder / f"{fmt}.csv", cwd=folder)
    assert written.returncode == 0, written.stderr
    assert "1 unreadable file(s) skipped" in written.stdout
    table = pd.read_csv(folder / f"{fmt}.csv")
    assert list(table.columns) == ["path", "prediction", *[f"probability_{c}" for c in CLASSES]]
    assert len(table) == 12 and not table["path"].str.endswith("broken.png").any()
    model = keras.saving.load_model(folder / "out" / "best_model.keras", safe_mode=True)
    pixels, readable = decode_files(table["path"], image_size=(16, 16), channels=3)
    assert readable.all()
    expected = model.predict(pixels, verbose=0)
    np.testing.assert_allclose(table[[f"probability_{c}" for c in CLASSES]].to_numpy(), expected, atol=1e-5)
    assert list(table["prediction"]) == [CLASSES[i] for i in expected.argmax(axis=1)]
    assert (table["prediction"] == table["path"].map(lambda p: os.path.basename(os.path.dirname(p)))).mean() >= 0.8


def test_a_csv_of_image_paths_and_labels_is_read_as_images(tmp_path):
    import pandas as pd

    from zoo.data import load_dataset

    make_images(str(tmp_path / "pictures"), per_class=10, size=12)
    rows = [(os.path.join("pictures", c, f), c) for c in CLASSES for f in sorted(os.listdir(tmp_path / "pictures" / c))]
    pd.DataFrame(rows, columns=["file", "kind"]).to_csv(tmp_path / "images.csv", index=False)
    data = load_dataset(str(tmp_path / "images.csv"), target="kind", scale="model", image_size=(8, 10))
    assert data.class_names == list(CLASSES) and data.input_shape == (8, 10, 3)
    assert len(data.X_train) + len(data.X_val) + len(data.X_test) == 30  # not broken.png, nor notes.txt
    assert "images: the paths in column 'file', labels in 'kind'" in data.notes
    assert any("1 unreadable" in note for note in data.notes)
    assert data.X_test[:2].dtype == np.uint8 and data.X_test[:2].shape == (2, 8, 10, 3)


def test_the_split_is_seeded_stratified_and_by_file(tmp_path):
    from zoo.data import load_dataset

    make_images(str(tmp_path), per_class=10)
    first, again = (load_dataset(str(tmp_path), scale="model", seed=3) for _ in range(2))
    other = load_dataset(str(tmp_path), scale="model", seed=4)
    assert list(first.X_test.paths) == list(again.X_test.paths)
    assert list(first.X_test.paths) != list(other.X_test.paths)
    assert np.bincount(first.y_test).tolist() == [2, 2, 2]
    every = [*first.X_train.paths, *first.X_val.paths, *first.X_test.paths]
    assert len(every) == len(set(every)) == 30


def test_augmentation_is_searched_and_active_in_training_only():
    import keras_tuner as kt

    import zoo

    hp = kt.HyperParameters()
    assert zoo.get_spec("cnn").space(hp, "cnn")["flip"] == "none"  # the default point: none
    assert {"cnn_augment", "cnn_flip", "cnn_rotation", "cnn_zoom", "cnn_contrast", "cnn_translation"} <= {item.name for item in hp.space}
    model = zoo.create_model("cnn", input_shape=(16, 16, 3), num_outputs=3, flip="horizontal",
                             rotation=0.1, zoom=0.1, contrast=0.2, translation=0.1)
    x = np.random.default_rng(0).uniform(size=(4, 16, 16, 3)).astype("float32")
    # called as an export traces it, without `training`: no augmentation
    np.testing.assert_array_equal(np.asarray(model(x)), model.predict(x, verbose=0))
    augmented = model.get_layer("augmentation")(x, training=True)
    assert not np.allclose(np.asarray(augmented), x)


def test_a_backbone_starts_from_a_local_weights_file_and_fine_tunes(tmp_path):
    import keras

    from tuning.hypermodel import ZooHyperModel
    from zoo.data import load_dataset
    from zoo.transfer import base_of

    source = keras.applications.MobileNetV3Small(input_shape=(32, 32, 3), include_top=False, weights=None)
    path = str(tmp_path / "mobilenet.weights.h5")
    source.save_weights(path)
    data = load_dataset(make_images(str(tmp_path / "pictures"), per_class=12), scale="model")
    hypermodel = ZooHyperModel(["backbone"], input_shape=data.feature_shape, num_outputs=3,
                               task="multiclass", compose=data.compose, tune_training=False,
                               params={"weights": path, "fine_tune_layers": 5})
    model = hypermodel.build(kt_defaults(hypermodel))
    base = base_of(model)
    x = np.random.default_rng(0).uniform(0, 255, size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(base(x)), np.asarray(source(x, training=False)))
    before = [np.array(w) for w in base.weights]
    after_frozen_epoch = {}

    class Watch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            after_frozen_epoch.setdefault(epoch, [np.array(w) for w in base.weights])

    history = hypermodel.fit(kt_defaults(hypermodel), model, data.X_train, data.y_train,
                             validation_data=(data.X_val, data.y_val), epochs=2, callbacks=[Watch()], verbose=0)
    assert len(history.history["loss"]) == 2
    assert all(np.array_equal(a, b) for a, b in zip(before, after_frozen_epoch[0]))  # frozen
    changed = [w.path for w, a, b in zip(base.weights, before, after_frozen_epoch[1]) if not np.array_equal(a, b)]
    assert 0 < len(changed) < len(before) / 4, changed  # then its top layers fine-tuned


def kt_defaults(hypermodel):
    import keras_tuner as kt

    hp = kt.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    return hp


# === bad input: one `error:` line, exit 2, nothing written =======================================


def _refused(folder, done, *needles):
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not (folder / "out").exists()


def test_a_folder_with_no_images_is_refused(tmp_path):
    (tmp_path / "empty" / "cats").mkdir(parents=True)
    (tmp_path / "empty" / "cats" / "notes.txt").write_text("x")
    done = zoo_here("run", write_config(tmp_path, tmp_path / "empty"), "--out", tmp_path / "out", cwd=tmp_path)
    _refused(tmp_path, done, "`data.source` holds no image files", "empty")


def test_a_single_class_is_refused(tmp_path):
    make_images(str(tmp_path / "pictures"), per_class=3)
    for name in CLASSES[1:]:
        for file in os.listdir(tmp_path / "pictures" / name):
            os.remove(tmp_path / "pictures" / name / file)
        os.rmdir(tmp_path / "pictures" / name)
    done = zoo_here("run", write_config(tmp_path, tmp_path / "pictures"), "--out", tmp_path / "out", cwd=tmp_path)
    _refused(tmp_path, done, "at least 2 classes", "'circle'")


@pytest.mark.parametrize("image_size", [[0, 16], [16], "16x16", [16.5, 16]])
def test_an_image_size_that_is_not_two_positive_integers_is_refused(tmp_path, image_size):
    config = write_config(tmp_path, tmp_path, data={"image_size": image_size})
    done = zoo_here("run", config, "--out", tmp_path / "out", cwd=tmp_path)
    _refused(tmp_path, done, "`data.image_size`", "two positive integers")


def test_a_weights_file_that_does_not_fit_the_architecture_is_refused(tmp_path):
    import keras

    import zoo
    from zoo.errors import InvalidParameterError

    other = keras.applications.EfficientNetB0(input_shape=(32, 32, 3), include_top=False, weights=None)
    path = str(tmp_path / "efficientnet.weights.h5")
    other.save_weights(path)
    with pytest.raises(InvalidParameterError, match=r"`weights` of `backbone` does not fit architecture "
                                                    r"'mobilenet_v3_small'.*Received: weights='.*efficientnet"):
        zoo.create_model("backbone", input_shape=(32, 32, 3), num_outputs=3, weights=path)
    with pytest.raises(InvalidParameterError, match=r"`weights` of `backbone` must be None or the path of a local "
                                                    r"\.weights\.h5 file \(nothing is downloaded\)\. Received: weights='imagenet'"):
        zoo.create_model("backbone", input_shape=(32, 32, 3), num_outputs=3, weights="imagenet")


def test_zoo_predict_on_a_path_that_is_not_an_image_is_refused(image_run):
    folder, done, held_out = image_run
    assert done.returncode == 0
    (folder / "notes.txt").write_text("hello")
    for data, needle in ((folder / "notes.txt", "must be an image file"),
                         (os.path.join(held_out, "circle", "broken.png"), "is not a readable image")):
        refused = zoo_here("predict", folder / "out", data, "--out", folder / "refused.csv", cwd=folder)
        assert refused.returncode == 2 and refused.stderr.startswith("error: ") and needle in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        assert not (folder / "refused.csv").exists()


# === memory ======================================================================================

PEAK_RSS = textwrap.dedent("""
    import resource, sys
    import numpy as np
    import zoo
    from zoo.data import load_dataset
    data = load_dataset(sys.argv[1], scale="model")
    core = zoo.create_model("cnn", input_shape=data.feature_shape, num_outputs=3, compile=False,
                            filters=(8,), dense_units=())
    model = data.compose(core)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(data.X_train, data.y_train, validation_data=(data.X_val, data.y_val), epochs=1, verbose=0)
    model.predict(data.X_test, verbose=0)
    data.X_train[:64]
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
""")


def test_peak_memory_does_not_grow_with_ten_times_more_images(tmp_path):
    """Load, train an epoch, predict the test split and slice export samples over 150 and 1,500
    96x96 images: held in memory, the larger set's pixels alone would be 166 MB as float32."""
    peaks = {}
    for per_class in (50, 500):
        folder = make_images(str(tmp_path / str(per_class)), per_class=per_class, size=96, formats=("png",))
        done = subprocess.run([sys.executable, "-c", PEAK_RSS, folder], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        peaks[per_class] = int(done.stdout.split()[-1])
    assert peaks[500] < 1.2 * peaks[50], peaks


def test_a_tf_data_dataset_of_images_takes_the_folders_road(tmp_path):
    """Keras's own `image_dataset_from_directory` (batched, its corrupted file failing a whole
    batch) is written once to PNG files and read as a folder is."""
    import keras

    from zoo.images import load_images

    make_images(str(tmp_path / "pictures"), per_class=12)
    stream = keras.utils.image_dataset_from_directory(str(tmp_path / "pictures"), image_size=(16, 16),
                                                      batch_size=4, shuffle=False, verbose=False)
    data = load_images(stream, test_size=0.2, val_size=0.1, seed=0)
    assert data.class_names == list(CLASSES) and data.input_shape == (16, 16, 3)
    assert "skipped 1 batch(es) of the tf.data.Dataset that failed to read" in " ".join(data.notes)
    # circle/broken.png is the 13th of 37 files: its batch (files 13-16) is lost with it
    assert len(data.X_train) + len(data.X_val) + len(data.X_test) == 33
    assert np.bincount(np.concatenate([data.y_train, data.y_val, data.y_test])).tolist() == [12, 9, 12]


def test_a_split_streams_in_the_batches_and_class_weights_it_is_given(tmp_path):
    from zoo.data import load_dataset

    data = load_dataset(make_images(str(tmp_path), per_class=10), scale="model", seed=0)
    batches = list(data.X_val.batched(2, class_weight={0: 2.0, 2: 0.5}).pipeline().as_numpy_iterator())
    assert [len(b[0]) for b in batches] == [2, 1]
    pixels, labels, weights = (np.concatenate(part) for part in zip(*batches))
    np.testing.assert_array_equal(pixels, data.X_val[:])
    np.testing.assert_array_equal(labels, data.y_val)
    np.testing.assert_array_equal(weights, np.asarray([2.0, 1.0, 0.5])[labels])
    stream = data.X_train.pipeline()  # made once per fit; each epoch iterates it again
    first, second = (np.concatenate([y for _, y in stream.as_numpy_iterator()]) for _ in range(2))
    assert sorted(first) == sorted(data.y_train) and list(first) != list(second)  # reshuffled each epoch


def test_automodel_fits_a_folder_and_a_tf_data_dataset_as_zoo_run_does(tmp_path):
    import keras

    from keras_zoo import AutoModel

    pictures = make_images(str(tmp_path / "pictures"), per_class=12)
    model = AutoModel(max_trials=1, max_epochs=2, algorithm="random", tracking=False, image_size=(16, 16))
    model.fit(pictures)
    assert list(model.classes_) == list(CLASSES) and model.data_.input_shape == (16, 16, 3)
    assert any("1 unreadable" in note for note in model.data_.notes)
    predicted = model.predict(os.path.join(pictures, "square"))
    assert len(predicted) == 12 and (predicted == "square").mean() >= 0.8
    assert model.predict_proba(os.path.join(pictures, "circle", "0000.png")).shape == (1, 3)
    os.remove(os.path.join(pictures, "circle", "broken.png"))
    stream = keras.utils.image_dataset_from_directory(pictures, image_size=(16, 16), batch_size=8, seed=0,
                                                      verbose=False)
    streamed = AutoModel(max_trials=1, max_epochs=2, algorithm="random", tracking=False).fit(stream)
    assert list(streamed.classes_) == list(CLASSES) and len(streamed.data_.X_train) + len(streamed.data_.X_val) == 36


def test_efficientnet_starts_from_its_weights_file_and_exports_to_onnx(tmp_path):
    """EfficientNetB0's input Normalization becomes a Standardize of the same statistics (Keras's
    layer reaches tf2onnx as extra model inputs); the weights file still loads into it."""
    import keras

    import export
    import zoo
    from zoo.transfer import base_of

    source = keras.applications.EfficientNetB0(input_shape=(32, 32, 3), include_top=False, weights=None)
    path = str(tmp_path / "efficientnet.weights.h5")
    source.save_weights(path)
    model = zoo.create_model("backbone", input_shape=(32, 32, 3), num_outputs=3, architecture="efficientnet_b0",
                             weights=path)
    x = np.random.default_rng(0).uniform(0, 255, size=(4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(base_of(model)(x)), np.asarray(source(x, training=False)), atol=1e-6)
    manifest = export.export_model(model, tmp_path / "export", ("tflite", "onnx"), samples=x, latency_repeats=0)
    assert manifest.ok, [(a.name, a.error) for a in manifest.artifacts]
