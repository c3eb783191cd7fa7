"""The transformer family on images (a vision transformer): one token per patch, the patch size
refused when it does not fit and searched only on images, a trained one exported to SavedModel,
TFLite and ONNX with parity in their runtimes, `zoo run` on a folder of images, and mixed precision
(float32 on CPU; under `mixed_float16` a float32 output, and float32 artifacts)."""

import json

import numpy as np
import pytest
from test_images import make_images, write_config
from zoo_testing import zoo_here

import zoo
from zoo.errors import InvalidParameterError, InvalidTypeError

TINY = {"model_dim": 16, "num_heads": 2, "ff_dim": 32, "num_blocks": 1, "dropout_rate": 0.0}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """24 generated 16x16 RGB images in three class folders, read as `zoo run` reads them."""
    from zoo.data import load_dataset

    folder = make_images(str(tmp_path_factory.mktemp("vit") / "pictures"), per_class=8)
    return load_dataset(folder, scale="model", image_size=(16, 16), seed=0)


def tokens_of(model):
    return tuple(model.get_layer("patch_tokens").output.shape[1:])


@pytest.mark.parametrize("input_shape,patch_size,patches", [
    ((16, 16, 3), 4, 16), ((16, 16, 1), 2, 64), ((16, 16, 3), 8, 4),
    ((15, 13, 3), 4, 16),  # sides the patch does not divide: padded to 4 x 4 whole patches
    ((16, 16, 3), None, 64),  # the default: at most 8 patches a side, here 2-pixel patches
    ((32, 24, 3), None, 48),  # 4-pixel patches: 8 x 6
])
def test_an_image_becomes_one_token_per_patch(input_shape, patch_size, patches):
    model = zoo.create_model("transformer", input_shape=input_shape, num_outputs=3, patch_size=patch_size, **TINY)
    assert tokens_of(model) == (patches, TINY["model_dim"])
    assert model.get_layer("positional").get_weights()[0].shape == (patches, TINY["model_dim"])
    x = np.random.default_rng(0).normal(size=(2, *input_shape)).astype("float32")
    out = np.asarray(model(x))
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("input_shape,patch_size,error,needle", [
    ((16, 16, 3), 32, InvalidParameterError, "must be at most 16, the shorter side of 16x16 images"),
    ((16, 8, 3), 12, InvalidParameterError, "must be at most 8, the shorter side of 16x8 images"),
    ((16, 16, 3), 0, InvalidParameterError, "must be an integer in [1, 4096] or None"),
    ((16, 16, 3), 2.5, InvalidTypeError, "must be an integer in [1, 4096] or None"),
    ((16, 16, 3), "4", InvalidTypeError, "must be an integer in [1, 4096] or None"),
    ((12, 3), 4, InvalidParameterError, "applies to images (height, width, channels)"),
])
def test_a_bad_patch_size_is_refused_in_one_line_naming_it(input_shape, patch_size, error, needle):
    with pytest.raises(error) as info:
        zoo.create_model("transformer", input_shape=input_shape, num_outputs=3, patch_size=patch_size)
    message = str(info.value)
    assert message.startswith("`patch_size` of `transformer` ") and needle in message
    assert f"Received: patch_size={patch_size!r}" in message and "\n" not in message


def test_the_patch_size_is_searched_on_images_only():
    import keras_tuner as kt

    from tuning.space import declare
    from zoo._space import SpaceRecorder

    def searched(input_shape):
        recorder = SpaceRecorder()
        _, values = declare(recorder, ["transformer"], {}, False, input_shape=input_shape)
        return {entry["name"]: entry for entry in recorder.entries}, values

    entries, values = searched((16, 16, 3))
    assert entries["transformer_patch_size"]["values"] == [2, 4, 8]
    assert values["patch_size"] == entries["transformer_patch_size"]["default"] == 2  # the builder's default
    entries, _ = searched((6, 6, 1))
    assert entries["transformer_patch_size"]["values"] == [1, 2, 4]  # 8 does not fit; 1 is the default
    entries, _ = searched((128, 96, 3))  # at most 16 patches a side: not 2 nor 4
    assert entries["transformer_patch_size"]["values"] == [8, 16]
    assert entries["transformer_patch_size"]["default"] == 16
    for shape in ((12, 3), None):  # a sequence, or no shape given: no patches
        entries, values = searched(shape)
        assert "transformer_patch_size" not in entries and "patch_size" not in values
    # two families: the patch size sits in the transformer's conditional scope
    hp = kt.HyperParameters()
    hp.Choice("family", ["cnn", "transformer"], default="cnn")
    hp.values["family"] = "transformer"
    _, values = declare(hp, ["cnn", "transformer"], {}, False, input_shape=(16, 16, 3))
    assert values["patch_size"] == 2
    patch_size = next(item for item in hp.space if item.name == "transformer_patch_size")
    assert [(c.name, c.values) for c in patch_size.conditions] == [("family", ["transformer"])]


def trained(data, epochs=2):
    """The tiny transformer behind the data's pixel preprocessing, trained `epochs` epochs."""
    from zoo import training

    core = zoo.create_model("transformer", input_shape=data.feature_shape, num_outputs=data.num_outputs,
                            compile=False, patch_size=4, **TINY)
    model = training.compile_model(data.compose(core), task=data.task, learning_rate=0.01)
    history = model.fit(data.X_train.batched(8), epochs=epochs, verbose=0)
    return model, history


def test_a_trained_image_transformer_exports_with_parity_in_each_runtime(images, tmp_path):
    import export

    model, history = trained(images)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()
    assert model.inputs[0].dtype == "uint8" and tuple(model.inputs[0].shape) == (None, 16, 16, 3)
    pixels = images.X_test[:]
    manifest = export.export_model(model, tmp_path, ("keras", "savedmodel", "tflite", "onnx"), samples=pixels,
                                   latency_repeats=0)
    errors = {a.name: a.parity["outputs"][0]["max_abs_error"] for a in manifest.artifacts if a.parity}
    print("max abs error against Keras:", errors)
    assert manifest.ok, [(a.name, a.error) for a in manifest.artifacts]
    assert sorted(errors) == ["keras", "onnx", "savedmodel", "tflite"]
    assert all(error < 1e-5 for error in errors.values()), errors
    assert manifest["tflite"].inputs[0]["dtype"] == "uint8"


def test_patches_padded_to_whole_ones_export_with_parity(tmp_path):
    """15x13 images in 4-pixel patches: 'same' padding in each runtime as in Keras."""
    import export

    model = zoo.create_model("transformer", input_shape=(15, 13, 3), num_outputs=3, patch_size=4, **TINY)
    x = np.random.default_rng(0).normal(size=(8, 15, 13, 3)).astype("float32")
    manifest = export.export_model(model, tmp_path, ("tflite", "onnx"), samples=x, latency_repeats=0)
    assert manifest.ok, [(a.name, a.error) for a in manifest.artifacts]
    assert all(a.parity["outputs"][0]["max_abs_error"] < 1e-5 for a in manifest.artifacts)


def test_zoo_run_trains_and_exports_the_transformer_on_a_folder_of_images(tmp_path):
    folder = make_images(str(tmp_path / "pictures"), per_class=10)
    config = write_config(tmp_path, folder, model={"name": "transformer", "params": {**TINY, "patch_size": 8}},
                          search={"tune_training": False, "max_epochs": 1},
                          export={"formats": ["tflite"]})
    done = zoo_here("run", config, "--out", tmp_path / "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((tmp_path / "out" / "export" / "manifest.json").read_text())
    assert manifest["model"]["inputs"] == [{"name": "pixels", "shape": [None, 16, 16, 3], "dtype": "uint8"}]
    assert [(a["name"], a["status"]) for a in manifest["artifacts"]] == [("tflite", "ok")]
    import keras

    best = keras.saving.load_model(tmp_path / "out" / "best_model.keras", safe_mode=True)
    assert tokens_of(best.get_layer("transformer")) == (4, TINY["model_dim"])  # 16x16 in 8-pixel patches


@pytest.mark.parametrize("patch_size", [0, 32])  # 32: larger than the 16x16 images
def test_a_bad_patch_size_in_a_run_config_is_refused_in_one_line(tmp_path, patch_size):
    folder = make_images(str(tmp_path / "pictures"), per_class=10)
    config = write_config(tmp_path, folder, model={"name": "transformer", "params": {"patch_size": patch_size}})
    done = zoo_here("run", config, "--out", tmp_path / "out", cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: `patch_size` of `transformer` must be "), done.stderr
    assert lines[0].endswith(f"Received: patch_size={patch_size}")
    assert not (tmp_path / "out").exists()  # nothing written


# === mixed precision ==============================================================================


def test_on_cpu_image_models_build_and_train_in_float32(images):
    import keras

    from zoo.images import gpu_present, mixed_precision

    assert not gpu_present()  # this test speaks of CPU machines
    with mixed_precision(images.compose) as policy:
        core = zoo.create_model("transformer", input_shape=images.feature_shape, num_outputs=3, **TINY)
        model = images.compose(core)
    assert policy == "float32" and keras.config.dtype_policy().name == "float32"
    assert {layer.dtype_policy.name for layer in [*model.layers, *core.layers]} == {"float32"}


def test_under_mixed_float16_the_output_stays_float32_and_the_artifacts_are_float32(images, tmp_path, monkeypatch):
    """What a GPU machine does (`mixed_precision` told a GPU is present): float16 compute in the
    core, a float32 head and output, loss scaling; then its float32 twin exports with parity."""
    import keras

    import export
    from zoo import images as image_module
    from zoo import training
    from zoo.data import compose_model  # not an image dataset's compose: never mixed
    monkeypatch.setattr(image_module, "gpu_present", lambda: True)
    with image_module.mixed_precision(compose_model) as policy:
        assert policy == "float32"
    try:
        with image_module.mixed_precision(images.compose) as policy:
            core = zoo.create_model("transformer", input_shape=images.feature_shape, num_outputs=3,
                                    compile=False, patch_size=4, **TINY)
            model = training.compile_model(images.compose(core), task="multiclass", learning_rate=0.01)
        assert policy == "mixed_float16" and keras.config.dtype_policy().name == "float32"  # restored
    finally:
        keras.config.set_dtype_policy("float32")
    assert core.get_layer("patch_embedding").compute_dtype == "float16"
    assert core.get_layer("patch_embedding").variable_dtype == "float32"
    assert core.get_layer("head").compute_dtype == "float32"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    model.fit(images.X_train.batched(8), epochs=1, verbose=0)
    pixels = images.X_test[:]
    predicted = model.predict(pixels, verbose=0)
    assert model.outputs[0].dtype == "float32" and predicted.dtype == np.float32
    np.testing.assert_allclose(predicted.sum(axis=1), 1.0, rtol=1e-3)

    twin = image_module.float32_model(model)
    assert twin is not model and image_module.float32_model(twin) is twin
    assert twin.inputs[0].dtype == "uint8"
    assert {layer.compute_dtype for layer in twin.get_layer("transformer").layers} == {"float32"}
    np.testing.assert_allclose(twin.predict(pixels, verbose=0), predicted, atol=2e-3)
    manifest = export.export_model(twin, tmp_path, ("tflite", "onnx"), samples=pixels, latency_repeats=0)
    assert manifest.ok, [(a.name, a.error) for a in manifest.artifacts]
