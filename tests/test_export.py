"""Export: every catalog model to SavedModel/TFLite/ONNX with parity in the real runtimes,
quantized TFLite on digits, the Flex refusal, the manifest's sha256, and refused bad input."""

import json
import os

import numpy as np
import pytest

import export
import zoo
from export import formats as export_formats
from zoo.errors import InvalidParameterError, InvalidTypeError, UnknownNameError

MODELS = zoo.list_models()


def build(name, **params):
    spec = zoo.get_spec(name)
    num_outputs = 3 if spec.default_task == "multiclass" else None
    return zoo.create_model(name, input_shape=params.pop("input_shape", spec.example_input_shape),
                            num_outputs=num_outputs, **params)


def manifests(result):
    return result if isinstance(result, dict) else {"": result}


@pytest.mark.parametrize("name", MODELS)
def test_every_catalog_model_exports_and_matches_keras_in_each_runtime(name, tmp_path):
    result = export.export_model(build(name), tmp_path, ("savedmodel", "tflite", "onnx"), latency_repeats=0)
    for part, manifest in manifests(result).items():
        assert [a.name for a in manifest.artifacts] == ["savedmodel", "tflite", "onnx"]
        for artifact in manifest.artifacts:
            assert artifact.status == "ok", f"{name} {part} {artifact.name}: {artifact.error}"
            assert artifact.parity["passed"] and artifact.parity["samples"] == 32
            assert artifact.parity["outputs"][0]["max_abs_error"] < 1e-5
            assert os.path.exists(manifest.path_of(artifact.name))
        # TFLite and ONNX keep the batch dimension dynamic
        assert manifest["tflite"].inputs[0]["shape"][0] is None
        assert manifest["onnx"].inputs[0]["shape"][0] is None
        assert manifest["savedmodel"].inputs[0]["shape"][0] is None
        assert manifest.status == "complete" and export.check_manifest(manifest.out_dir) == []


def test_recurrent_layers_are_unrolled_for_tflite_and_the_model_is_left_alone(tmp_path):
    model = build("lstm", units=(8,))
    manifest = export.export_model(model, tmp_path, ("tflite",), latency_repeats=0)
    assert manifest.ok
    assert manifest["tflite"].notes == ["recurrent layers unrolled for TFLite builtins: lstm_1"]
    assert model.get_layer("lstm_1").unroll is False


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_a_searched_recurrent_model_behind_its_preprocessing_is_unrolled_for_tflite(cell, tmp_path):
    # what a search on windows returns: the catalog model nested between the normalization and the
    # target unscaling, its recurrent layer rolled (the builders' default)
    from zoo.data import compose_model
    from zoo.preprocessing import ArrayPreprocessor, target_stats

    windows = np.random.default_rng(0).normal(size=(24, 12, 1)).astype("float32")
    core = zoo.create_model(cell, input_shape=(12, 1), num_outputs=1, task="regression", units=(8,))
    model = compose_model(core, input_shape=(12, 1), preprocessor=ArrayPreprocessor(windows),
                          target_stats=target_stats(windows[:, -1, 0]))
    manifest = export.export_model(model, tmp_path, ("tflite",), samples=windows, latency_repeats=0)
    assert manifest.ok, manifest["tflite"].error
    assert manifest["tflite"].notes == [f"recurrent layers unrolled for TFLite builtins: {cell}_1"]
    assert manifest["tflite"].parity["outputs"][0]["max_abs_error"] < 1e-5
    assert core.get_layer(f"{cell}_1").unroll is False


def test_variable_length_lstm_is_refused_for_tflite_naming_the_ops_and_the_fix(tmp_path):
    model = build("lstm", input_shape=(None, 3), units=(8,))
    manifest = export.export_model(model, tmp_path, ("tflite", "onnx"), quantize=("dynamic",),
                                   latency_repeats=0)
    refused = manifest["tflite"]
    assert refused.status == "failed" and refused.path is None and refused.sha256 is None
    assert "TensorListReserve" in refused.error
    assert "Flex" in refused.error and "lstm_1" in refused.error
    assert "fixed sequence length" in refused.error and "allow_flex=True" in refused.error
    assert manifest["tflite_dynamic"].error == refused.error
    # the other format goes on; the failed ones leave no file, no temp directory
    assert manifest["onnx"].ok and not manifest.ok
    assert sorted(os.listdir(tmp_path)) == ["manifest.json", "model.onnx"]
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert [a["status"] for a in on_disk["artifacts"]] == ["failed", "ok", "failed"]


def test_allowing_flex_writes_the_model_but_never_reports_it_verified(tmp_path):
    model = build("lstm", input_shape=(None, 3), units=(4,))
    manifest = export.export_model(model, tmp_path, ("tflite",), allow_flex=True, latency_repeats=0)
    artifact = manifest["tflite"]
    # the LiteRT interpreter here has no Flex delegate, so the file cannot be run and compared
    assert artifact.status == "unverified" and not manifest.ok
    assert "Flex delegate" in artifact.error and artifact.parity is None
    assert os.path.exists(manifest.path_of("tflite")) and export.check_manifest(tmp_path) == []


def test_token_transformer_exports_with_integer_inputs(tmp_path):
    model = build("transformer", input_shape=(10,), vocab_size=50, model_dim=8, num_heads=2,
                  ff_dim=8, num_blocks=1)
    manifest = export.export_model(model, tmp_path, ("tflite", "onnx"), latency_repeats=0)
    assert manifest.ok, [a.error for a in manifest.artifacts]
    assert manifest["tflite"].inputs[0]["dtype"] == "int32"


@pytest.fixture(scope="module")
def digits_cnn():
    import keras

    from zoo.data import load_dataset

    keras.utils.set_random_seed(0)
    data = load_dataset("digits", shape="image")
    # wide enough that weights, not the flatbuffer's fixed overhead, dominate the file size
    model = zoo.create_model("cnn", input_shape=data.input_shape, num_outputs=data.num_outputs,
                             filters=(64, 128), convs_per_block=2, dense_units=(256,))
    model.fit(data.X_train, data.y_train, epochs=6, batch_size=32, verbose=0)
    return model, data


@pytest.mark.slow
def test_quantized_digits_cnn_is_smaller_and_as_accurate(digits_cnn, tmp_path):
    model, data = digits_cnn
    manifest = export.export_model(model, tmp_path, ("tflite",), quantize=("float16", "dynamic", "int8"),
                                   representative_data=data.X_train, samples=data.X_test,
                                   labels=data.y_test, latency_repeats=3)
    assert manifest.ok, [a.error for a in manifest.artifacts]
    keras_accuracy = manifest.reference["accuracy"][0]
    assert keras_accuracy > 0.9
    float_size = manifest["tflite"].size_bytes
    assert manifest["tflite_float16"].size_bytes < 0.6 * float_size
    for name in ("tflite_dynamic", "tflite_int8"):
        artifact = manifest[name]
        output = artifact.parity["outputs"][0]
        assert float_size / artifact.size_bytes >= 3.5, (name, float_size, artifact.size_bytes)
        assert abs(output["accuracy"] - keras_accuracy) <= 0.01, (name, output)
        assert output["agreement"] >= 0.97
        assert set(artifact.latency_ms) == {"batch_1", "batch_32"}
    assert "int8 inside" in manifest["tflite_int8"].notes[-1]
    assert manifest.samples == {"source": "samples", "count": len(data.X_test), "labels": True}


def test_int8_inputs_and_outputs_are_quantized_in_the_file_and_dequantized_for_parity(tmp_path):
    model = build("mlp", input_shape=(6,), hidden_units=(16,))
    data = np.random.default_rng(0).normal(size=(64, 6)).astype("float32")
    manifest = export.export_model(model, tmp_path, ("tflite",), quantize=("int8",),
                                   representative_data=data, int8_io=True, latency_repeats=0)
    artifact = manifest["tflite_int8"]
    assert artifact.inputs[0]["dtype"] == "int8" and artifact.outputs[0]["dtype"] == "int8"
    assert artifact.parity["outputs"][0]["max_abs_error"] < 0.1
    assert artifact.status == "ok", artifact.error


def test_manifest_records_hashes_specs_versions_and_latency(tmp_path):
    model = build("mlp", input_shape=(6,), hidden_units=(8,))
    manifest = export.export_model(model, tmp_path, latency_repeats=2, opset=17)
    assert manifest.ok
    assert [a.name for a in manifest.artifacts] == ["keras", "savedmodel", "tflite", "onnx"]
    on_disk = export.load_manifest(tmp_path)
    assert on_disk.to_dict() == manifest.to_dict()
    assert on_disk.converters["tf2onnx"] and on_disk.converters["ai-edge-litert"]
    assert on_disk.model["inputs"] == [{"name": "inputs", "shape": [None, 6], "dtype": "float32"}]
    assert set(on_disk.reference["latency_ms"]) == {"batch_1", "batch_32"}
    assert "opset 17" in on_disk["onnx"].converter
    for artifact in on_disk.artifacts:
        assert len(artifact.sha256) == 64 and artifact.size_bytes > 0
        assert set(artifact.latency_ms) == {"batch_1", "batch_32"}
    # the previous export's artifacts are replaced in place, directories included
    again = export.export_model(model, tmp_path, ("savedmodel",), latency_repeats=0)
    assert again.ok and [a.name for a in export.load_manifest(tmp_path).artifacts] == ["savedmodel"]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]


def test_a_corrupted_artifact_is_caught_by_its_sha256(tmp_path):
    manifest = export.export_model(build("perceptron"), tmp_path, ("tflite", "savedmodel"), latency_repeats=0)
    assert export.check_manifest(tmp_path) == []
    path = manifest.path_of("tflite")
    blob = bytearray(open(path, "rb").read())
    blob[len(blob) // 2] ^= 0xFF
    open(path, "wb").write(bytes(blob))
    variables = os.path.join(manifest.path_of("savedmodel"), "variables")
    data_file = next(os.path.join(variables, n) for n in os.listdir(variables) if "data" in n)
    with open(data_file, "r+b") as handle:
        handle.seek(4)
        byte = handle.read(1)
        handle.seek(4)
        handle.write(bytes([byte[0] ^ 0x01]))
    problems = export.check_manifest(tmp_path)
    assert len(problems) == 2
    assert problems[0].startswith("tflite: model.tflite sha256")
    assert problems[1].startswith("savedmodel: saved_model sha256")


def test_an_interrupted_export_lists_only_finished_artifacts(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(export_formats, "write_onnx", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export.export_model(build("perceptron"), tmp_path, ("tflite", "onnx"), latency_repeats=0)
    manifest = export.load_manifest(tmp_path)
    assert manifest.status == "in_progress"
    assert [a.name for a in manifest.artifacts] == ["tflite"]
    assert export.check_manifest(tmp_path) == []
    assert sorted(os.listdir(tmp_path)) == ["manifest.json", "model.tflite"]


def test_onnx_opset_range_matches_the_converter():
    from tf2onnx import constants

    assert export.MAX_OPSET == max(constants.OPSET_TO_IR_VERSION)
    assert export.MIN_OPSET <= constants.PREFERRED_OPSET <= export.MAX_OPSET


@pytest.mark.parametrize("kwargs,error,match", [
    ({"formats": ("tflite", "onnnx")}, UnknownNameError, "Unknown export format 'onnnx'. Did you mean 'onnx'"),
    ({"formats": ()}, InvalidParameterError, "`formats` must name at least one"),
    ({"formats": 3}, InvalidTypeError, "`formats` must be a comma-separated string"),
    ({"quantize": ("int4",)}, UnknownNameError, "Unknown quantization mode 'int4'"),
    ({"quantize": ("int8",)}, InvalidParameterError, "`quantize` 'int8' needs representative data"),
    ({"formats": ("onnx",), "quantize": ("dynamic",)}, InvalidParameterError, "applies to the tflite format"),
    ({"opset": 9}, InvalidParameterError, r"`opset` must be in \[14, 18\].*Received: opset=9"),
    ({"opset": 19}, InvalidParameterError, "Received: opset=19"),
    ({"opset": "15"}, InvalidTypeError, "`opset` must be an integer"),
    ({"representative_data": np.zeros((4, 5), "float32"), "quantize": ("int8",)}, InvalidParameterError,
     r"`representative_data` must have shape \(samples, 4\)"),
])
def test_bad_options_are_refused_before_anything_is_written(kwargs, error, match, tmp_path):
    out_dir = tmp_path / "out"
    with pytest.raises(error, match=match):
        export.export_model(build("perceptron"), out_dir, **kwargs)
    assert not out_dir.exists()


def test_an_output_directory_that_is_a_file_or_unwritable_is_refused(tmp_path):
    model = build("perceptron")
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    with pytest.raises(InvalidParameterError, match="`out_dir` must be a directory, but a file"):
        export.export_model(model, a_file)
    with pytest.raises(InvalidParameterError, match="`out_dir` cannot be created"):
        export.export_model(model, a_file / "sub")
    # /sys refuses new entries even to root, which permission bits would not show
    with pytest.raises(InvalidParameterError, match="`out_dir` must be a writable directory"):
        export.export_model(model, "/sys/zoo-export-test")
    assert sorted(os.listdir(tmp_path)) == ["taken"]


def test_a_model_without_a_graph_or_parts_is_refused(tmp_path):
    import keras

    class Bare(keras.Model):
        def call(self, inputs):
            return inputs

    with pytest.raises(InvalidTypeError, match="`model` must be a Functional or Sequential model"):
        export.export_model(Bare(), tmp_path / "out")
    with pytest.raises(InvalidTypeError, match="`model` must be a Keras model"):
        export.export_model("model.keras", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_trained_cnn_runs_the_same_in_each_runtime_opened_here_and_a_wrong_artifact_fails(digits_cnn,
                                                                                             tmp_path):
    """Each artifact opened with its runtime's own API in this test (not through export's runners),
    on the real test images, against the trained model (batch norm with real statistics)."""
    import onnxruntime
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from export.verify import compare, output_kinds

    model, data = digits_cnn
    norms = [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
    assert norms and all(not np.allclose(layer.moving_variance.numpy(), 1.0) for layer in norms)
    # (moving variances learned from the data, not the near-identity initial ones)
    manifest = export.export_model(model, tmp_path, ("savedmodel", "tflite", "onnx"), latency_repeats=0)
    assert manifest.ok, [a.error for a in manifest.artifacts]
    X = data.X_test.astype("float32")
    expected = model.predict(X, verbose=0)

    session = onnxruntime.InferenceSession(manifest.path_of("onnx"), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {session.get_inputs()[0].name: X})[0]

    interpreter = Interpreter(model_path=manifest.path_of("tflite"))
    runner = interpreter.get_signature_runner(next(iter(interpreter.get_signature_list())))
    (input_name,) = runner.get_input_details()
    tflite_out = next(iter(runner(**{input_name: X}).values()))

    loaded = tf.saved_model.load(manifest.path_of("savedmodel"))
    saved_out = loaded.signatures["serving_default"](tf.constant(X))
    saved_out = next(iter(saved_out.values())).numpy()

    for out in (onnx_out, tflite_out, saved_out):
        np.testing.assert_allclose(out, expected, atol=1e-4)
        assert (out.argmax(1) == expected.argmax(1)).all()
    assert (expected.argmax(1) == data.y_test).mean() > 0.9  # a trained model, not a near-identity one

    # an artifact of another model (the same CNN retrained from another seed) must fail parity
    import keras

    keras.utils.set_random_seed(1)
    other = zoo.create_model("cnn", input_shape=data.input_shape, num_outputs=data.num_outputs,
                             filters=(8, 16), dense_units=(32,))
    other.fit(data.X_train, data.y_train, epochs=2, batch_size=32, verbose=0)
    wrong = export.export_model(other, tmp_path / "other", ("onnx",), latency_repeats=0)
    wrong_session = onnxruntime.InferenceSession(wrong.path_of("onnx"), providers=["CPUExecutionProvider"])
    wrong_out = wrong_session.run(None, {wrong_session.get_inputs()[0].name: X})[0]
    verdict = compare([expected], [wrong_out], kinds=output_kinds(model))
    assert not verdict["passed"]
    assert compare([expected], [onnx_out], kinds=output_kinds(model))["passed"]


def test_a_tflite_conversion_runs_no_full_garbage_collection_and_writes_the_same_file(tmp_path):
    """TFLiteConverter.from_saved_model's convert() runs gc.collect(): a full collection of every
    object the process holds (0.2-0.6 s in a search). zoo's conversion collects the young
    generations only, writes the same model, and leaves TensorFlow's module as it was."""
    import gc

    import tensorflow as tf
    from tensorflow.lite.python import lite

    from zoo._tflite import convert

    model = build("mlp", input_shape=(4,))
    model.export(str(tmp_path / "saved"), format="tf_saved_model", verbose=False)

    def blob_and_generations(run):
        generations = []

        def seen(phase, info):
            if phase == "start":
                generations.append(info["generation"])

        converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "saved"))
        enabled = gc.isenabled()
        gc.callbacks.append(seen)
        gc.disable()  # the collector's own schedule off: what is seen is what convert() asks for
        try:
            blob = run(converter)
        finally:
            if enabled:
                gc.enable()
            gc.callbacks.remove(seen)
        return blob, generations

    plain, plain_generations = blob_and_generations(lambda converter: converter.convert())
    ours, our_generations = blob_and_generations(convert)
    assert plain_generations == [2]  # what the converter does on its own
    assert our_generations == [1] and ours == plain
    assert lite.gc is gc
