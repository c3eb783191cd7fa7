"""Every exported artifact of a table model takes the raw row: each opened directly in its own runtime
(LiteRT's signature runner, ONNX Runtime, TensorFlow) on raw values fed by hand, string categories
as strings, matches `best_model.keras`; and `zoo predict` refuses a tampered export, reads a run's
columns by name and a CSV's delimiter by sniffing."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from zoo_testing import zoo_here

ROWS = 160
EPOCH = pd.Timestamp("1970-01-01")


def table(rows=ROWS, seed=0):
    """A number, a string category (one value not ASCII), integer codes, yes/no words, a bool, a
    date, column names that are no identifiers, ~8% of the feature values missing; a label that
    depends on them."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "price": rng.normal(100, 15, rows).round(2),
        "Région": rng.choice(["north", "south", "Zürich"], rows).astype(object),
        "grade": rng.integers(1, 4, rows).astype(float),
        "member": rng.choice(["yes", "no"], rows).astype(object),
        "promo": rng.choice([True, False], rows),
        "sold on": (pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 3000, rows), unit="D"))
        .strftime("%Y-%m-%d").astype(object),
    })
    score = (frame["price"] - 100) / 15 + np.where(frame["Région"] == "north", 1.0, -0.5)
    frame["label"] = np.where(score > 0, "high", "low")
    for column in ("price", "Région", "grade", "member", "sold on"):
        frame.loc[rng.random(rows) < 0.08, column] = None
    return frame


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    """A run folder as `zoo run` leaves it (best_model.keras, export/) for a tiny trained model."""
    import keras

    from export import export_model
    from keras_zoo.pipeline import preprocessing_description
    from zoo.data import dataset_from_frame

    folder = tmp_path_factory.mktemp("table_run")
    data = dataset_from_frame(table(), target="label", test_size=0.25, val_size=0.0, seed=0)
    keras.utils.set_random_seed(0)
    core = keras.Sequential([keras.Input(data.feature_shape), keras.layers.Dense(8, activation="relu"),
                             keras.layers.Dense(1, activation="sigmoid")], name="mlp")
    model = data.compose(core)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(data.X_train, data.y_train, epochs=2, verbose=0)
    (folder / "run").mkdir()
    data.raw_model(model).save(folder / "run" / "best_model.keras")
    manifest = export_model(model, folder / "run" / "export", samples=data.X_test, labels=data.y_test,
                            representative_data=data.X_train[:64], latency_repeats=0,
                            preprocessing=preprocessing_description(data))
    held_out = table(40, seed=1).drop(columns=["label"])
    held_out.loc[0, "Région"] = "atlantis"  # unseen in training
    held_out.loc[1, "grade"] = 7.0  # an integer code unseen in training
    held_out = held_out.astype({"promo": object})
    held_out.loc[2, :] = None  # every column missing
    held_out.to_csv(folder / "new.csv", index=False)
    return folder, manifest, held_out


def raw_feed(specs, frame):
    """The artifact inputs of `frame` made by hand from the manifest's documentation: strings as
    str ("" when missing), booleans 1/0, dates as days since 1970-01-01, NaN when missing."""
    feed = {}
    for spec in specs:
        values = frame[spec["column"]]
        if spec["dtype"] == "string":
            array = np.array(["" if pd.isna(v) else str(v) for v in values], dtype=object)
        elif spec["kind"] == "boolean":
            words = {"yes": 1.0, "no": 0.0, True: 1.0, False: 0.0}
            array = np.array([words.get(v, np.nan) for v in values], dtype="float32")
        elif spec["kind"] == "datetime":
            days = (pd.to_datetime(values, format="%Y-%m-%d") - EPOCH) / pd.Timedelta(days=1)
            array = days.to_numpy(dtype="float32")
        else:
            array = pd.to_numeric(values).to_numpy(dtype="float32")
        feed[spec["name"]] = array.reshape(-1, 1)
    return feed


def keras_outputs(path, frame):
    """best_model.keras (reloaded in safe mode) on the raw columns, as `zoo predict` feeds it."""
    import keras
    import tensorflow as tf

    import zoo.layers  # noqa: F401
    from zoo.tabular import Schema, frame_to_inputs

    model = keras.saving.load_model(path, safe_mode=True, compile=False)
    manifest = json.loads((path.parent / "export" / "manifest.json").read_text())
    schema = Schema.from_dict(manifest["preprocessing"]["tabular"]["schema"])
    inputs = frame_to_inputs(frame, schema)
    return np.asarray(model({k: tf.constant(v.astype(str) if v.dtype == object else v)
                             for k, v in inputs.items()}))


def test_each_artifact_takes_raw_rows_in_its_own_runtime_and_matches_best_model(table_run):
    import onnx
    import onnxruntime
    import tensorflow as tf
    from ai_edge_litert import schema_py_generated
    from ai_edge_litert.interpreter import Interpreter

    folder, manifest, held_out = table_run
    export = folder / "run" / "export"
    assert [(a.name, a.status) for a in manifest.artifacts] == [
        ("keras", "ok"), ("savedmodel", "ok"), ("tflite", "ok"), ("onnx", "ok")], manifest.failed
    specs = manifest.preprocessing["tabular"]["inputs"]
    feed = raw_feed(specs, held_out)
    assert feed["R_gion"][0, 0] == "atlantis" and feed["R_gion"][2, 0] == ""
    expected = keras_outputs(folder / "run" / "best_model.keras", held_out)
    assert np.isfinite(expected).all() and len(np.unique((expected > 0.5).ravel())) == 2

    interpreter = Interpreter(model_path=str(export / "model.tflite"))
    tflite_out = next(iter(interpreter.get_signature_runner()(**feed).values()))
    builtins = {name for name in vars(schema_py_generated.BuiltinOperator) if name.isupper()}
    operators = {op["op_name"] for op in interpreter._get_ops_details()}
    assert {"HASHTABLE", "HASHTABLE_FIND"} <= operators <= builtins, operators - builtins

    proto = onnx.load(str(export / "model.onnx"))
    assert {node.domain or "ai.onnx" for node in proto.graph.node} == {"ai.onnx", "ai.onnx.ml"}
    assert "CategoryMapper" in {node.op_type for node in proto.graph.node}
    session = onnxruntime.InferenceSession(str(export / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {node.name: feed[node.name] for node in session.get_inputs()})[0]

    serving = tf.saved_model.load(str(export / "saved_model")).signatures["serving_default"]
    saved_out = next(iter(serving(**{k: tf.constant(v.astype(str) if v.dtype == object else v)
                                     for k, v in feed.items()}).values())).numpy()

    for name, out in (("tflite", tflite_out), ("onnx", onnx_out), ("savedmodel", saved_out)):
        np.testing.assert_allclose(out.reshape(expected.shape), expected, rtol=0, atol=1e-5, err_msg=name)
        assert ((out.reshape(expected.shape) > 0.5) == (expected > 0.5)).all(), name


def test_the_manifest_documents_each_raw_input(table_run):
    _, manifest, _ = table_run
    assert manifest.preprocessing["inputs"] == "raw"
    specs = {spec["column"]: spec for spec in manifest.preprocessing["tabular"]["inputs"]}
    assert {c: (s["name"], s["dtype"]) for c, s in specs.items()} == {
        "price": ("price", "float32"), "Région": ("R_gion", "string"), "grade": ("grade", "float32"),
        "member": ("member", "float32"), "promo": ("promo", "float32"), "sold on": ("sold_on", "float32")}
    assert all(spec["shape"] == [None, 1] for spec in specs.values())
    assert "days since 1970-01-01" in specs["sold on"]["encoding"]
    assert '"" when missing' in specs["Région"]["encoding"] and "NaN when missing" in specs["price"]["encoding"]
    assert sorted(i["name"] for i in manifest.model["inputs"]) == sorted(s["name"] for s in specs.values())
    assert {i["dtype"] for i in manifest["onnx"].inputs} == {"string", "float32"}
    assert manifest.samples["count"] == 40 + 2  # the test rows, then an unseen and an all-missing row


def test_the_codes_option_exports_the_codes_matrix_model(table_run, tmp_path):
    from export import export_model
    from export.raw import takes_codes

    folder, manifest, _ = table_run
    description = manifest.preprocessing
    import keras

    import zoo.layers  # noqa: F401

    model = keras.saving.load_model(folder / "run" / "export" / "model.keras", safe_mode=True)
    codes_model = model.get_layer("mlp")  # the codes model nested behind the artifact encoder
    assert takes_codes(codes_model, description["tabular"])
    codes = export_model(codes_model, tmp_path, formats="tflite", preprocessing=description,
                         inputs="codes", latency_repeats=0)
    assert codes.ok and codes.preprocessing["inputs"] == "codes"
    assert [i["dtype"] for i in codes["tflite"].inputs] == ["float32"]
    assert codes["tflite"].inputs[0]["shape"] == [None, 6]


def predict(folder, *args):
    return zoo_here("predict", *args, cwd=folder)


def test_zoo_predict_feeds_raw_columns_to_tflite_and_onnx_and_reads_a_semicolon_csv(table_run):
    folder, _, held_out = table_run
    held_out.to_csv(folder / "semicolon.csv", index=False, sep=";")
    tables = {}
    for fmt, data in (("keras", "new.csv"), ("tflite", "semicolon.csv"), ("onnx", "new.csv")):
        ran = predict(folder, "run", data, "--out", f"{fmt}.csv", "--format", fmt)
        assert ran.returncode == 0, ran.stderr[-2000:]
        assert "2 row(s) had a category unseen" in ran.stdout, ran.stdout  # "atlantis", code 7
        tables[fmt] = pd.read_csv(folder / f"{fmt}.csv")
    for fmt in ("tflite", "onnx"):
        assert (tables[fmt]["prediction"] == tables["keras"]["prediction"]).all()
        np.testing.assert_allclose(tables[fmt]["probability_high"], tables["keras"]["probability_high"], atol=1e-5)


def refused(ran, out, starts):
    assert ran.returncode == 2, (ran.stdout, ran.stderr)
    assert ran.stderr.startswith(f"error: {starts}"), ran.stderr
    assert len(ran.stderr.strip().splitlines()) == 1, ran.stderr
    assert not out.exists()


def test_a_corrupted_or_tampered_export_is_one_error_line_and_writes_nothing(table_run, tmp_path):
    folder, _, _ = table_run
    run = tmp_path / "run"
    shutil.copytree(folder / "run", run)
    onnx_file = run / "export" / "model.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes() + b"\0")
    refused(predict(folder, run, "new.csv", "--out", tmp_path / "a.csv", "--format", "onnx"),
            tmp_path / "a.csv", "`--format` 'onnx' artifact 'model.onnx' does not hash to the sha256")
    manifest_file = run / "export" / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["artifacts"][2]["sha256"] = "0" * 64  # the tflite file is intact; its record is not
    manifest_file.write_text(json.dumps(manifest))
    refused(predict(folder, run, "new.csv", "--out", tmp_path / "b.csv", "--format", "tflite"),
            tmp_path / "b.csv", "`--format` 'tflite' artifact 'model.tflite' does not hash")
    manifest_file.write_text(manifest_file.read_text()[:200])  # cut short
    for fmt in ("keras", "tflite"):
        refused(predict(folder, run, "new.csv", "--out", tmp_path / "c.csv", "--format", fmt),
                tmp_path / "c.csv", "`model` holds an export manifest that is not readable JSON")
    manifest_file.write_text(json.dumps({"artifacts": "none"}))
    refused(predict(folder, run, "new.csv", "--out", tmp_path / "d.csv"), tmp_path / "d.csv",
            "`model` holds an export manifest without its `model.inputs` and `artifacts` lists")


def test_a_csv_whose_delimiter_is_not_sniffed_names_the_delimiter_it_was_read_with(table_run, tmp_path):
    folder, _, held_out = table_run
    held_out.to_csv(tmp_path / "hash.csv", index=False, sep="#")
    refused(predict(folder, "run", tmp_path / "hash.csv", "--out", tmp_path / "p.csv"), tmp_path / "p.csv",
            "`data` lacks column(s) the model needs")
    ran = predict(folder, "run", tmp_path / "hash.csv", "--out", tmp_path / "p.csv")
    assert "read with the delimiter ','" in ran.stderr, ran.stderr


def test_a_run_on_arrays_reads_a_csv_by_the_feature_names_it_recorded(tmp_path):
    import keras

    from export import export_model
    from keras_zoo.pipeline import preprocessing_description
    from zoo.data import dataset_from_arrays

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3)).astype("float32") * [1.0, 10.0, 100.0]
    y = (X @ [1.0, 0.1, -0.01] > 0).astype("int64")
    data = dataset_from_arrays(X, y, feature_names=["a", "b", "c"], test_size=0.2, val_size=0.0)
    core = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")], name="mlp")
    model = data.compose(core)
    (tmp_path / "run").mkdir()
    model.save(tmp_path / "run" / "best_model.keras")
    export_model(model, tmp_path / "run" / "export", formats="tflite", samples=data.X_test,
                 latency_repeats=0, preprocessing=preprocessing_description(data))
    frame = pd.DataFrame(X[:8], columns=["a", "b", "c"])
    frame.to_csv(tmp_path / "ordered.csv", index=False)
    frame[["c", "a", "b"]].assign(note="x").to_csv(tmp_path / "reordered.csv", index=False)
    tables = {}
    for fmt in ("keras", "tflite"):
        for name in ("ordered", "reordered"):
            ran = predict(tmp_path, "run", f"{name}.csv", "--out", f"{fmt}_{name}.csv", "--format", fmt)
            assert ran.returncode == 0, ran.stderr
            tables[fmt, name] = pd.read_csv(tmp_path / f"{fmt}_{name}.csv")
    expected = np.asarray(model(X[:8])).ravel()
    for table_ in tables.values():
        np.testing.assert_allclose(table_["probability_1"], expected, atol=1e-5)
    frame[["a", "b"]].to_csv(tmp_path / "lacking.csv", index=False)
    refused(predict(tmp_path, "run", "lacking.csv", "--out", "never.csv"), tmp_path / "never.csv",
            "`data` lacks column(s) the model needs: 'c'")
