"""Schema inference, the tabular preprocessing models and their TFLite, ONNX and `.keras` round trips."""

import ast
import json
import pathlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from zoo import preprocessing, tabular
from zoo.errors import InvalidParameterError

ROWS = 240
MISSING = ("price", "region", "grade", "member", "sold_on")


def make_frame(rows=ROWS, seed=0):
    """Numeric, string-categorical, integer-coded, yes/no, bool and ISO-date columns, an id column,
    about 5% of the feature values missing, and a regression target."""
    rng = np.random.default_rng(seed)
    days = pd.to_timedelta(rng.integers(0, 3000, rows), unit="D")
    frame = pd.DataFrame({
        "id": [f"row-{i:04d}" for i in range(rows)],
        "price": rng.normal(100, 15, rows).round(2),
        "region": rng.choice(["north", "south", "east", "west"], rows, p=[0.4, 0.3, 0.2, 0.1]).astype(object),
        "grade": rng.integers(1, 4, rows).astype(float),
        "member": rng.choice(["yes", "no"], rows).astype(object),
        "promo": rng.choice([True, False], rows),
        "sold_on": (pd.Timestamp("2015-01-01") + days).strftime("%Y-%m-%d").astype(object),
        "y": rng.normal(size=rows),
    })
    for column in MISSING:
        frame.loc[rng.random(rows) < 0.05, column] = None
    return frame


@pytest.fixture(scope="module")
def fitted():
    frame = make_frame()
    schema = tabular.infer_schema(frame, target="y")
    train, test = frame.iloc[:180], frame.iloc[180:].copy()
    test.iloc[0, test.columns.get_loc("region")] = "atlantis"  # unseen in train
    test.iloc[1, test.columns.get_loc("region")] = None
    return schema, preprocessing.TabularPreprocessor(schema, train), train, test


def _kinds(schema):
    return {column.name: column.kind for column in schema.columns}


# === Schema inference ===


def test_infer_schema_gives_each_column_its_kind_and_drops_the_id():
    schema = tabular.infer_schema(make_frame(), target="y")
    assert _kinds(schema) == {
        "id": "drop", "price": "numeric", "region": "categorical", "grade": "categorical",
        "member": "boolean", "promo": "boolean", "sold_on": "datetime",
    }
    columns = {column.name: column for column in schema.columns}
    assert columns["sold_on"].date_format == "%Y-%m-%d" and columns["region"].source == "string"
    assert columns["grade"].source == "number" and "id-like" in columns["id"].note
    assert [c.name for c in schema.features] == ["price", "region", "grade", "member", "promo", "sold_on"]
    table = schema.describe()
    assert "id-like" in table and table.splitlines()[0].split() == ["column", "kind", "note"]
    assert tabular.Schema.from_dict(json.loads(json.dumps(schema.to_dict()))) == schema


def test_datetime64_mixed_numbers_and_missing_targets():
    frame = make_frame(rows=60)
    frame["when"] = pd.date_range("2020-01-01", periods=60, freq="h")
    frame["count"] = [str(i) if i % 30 else "n/a" for i in range(60)]
    frame.loc[[3, 7, 9], "y"] = np.nan
    schema = tabular.infer_schema(frame, target="y")
    columns = {column.name: column for column in schema.columns}
    assert columns["when"].kind == "datetime" and columns["when"].date_format == "%Y-%m-%d %H:%M:%S"
    assert columns["count"].kind == "numeric" and "'n/a'" in columns["count"].note
    assert schema.dropped_target_rows == 3 and schema.notes == ["3 rows with a missing target dropped"]
    kept, dropped = tabular.drop_missing_target(frame, "y")
    assert dropped == 3 and len(kept) == 57
    inputs = tabular.frame_to_inputs(kept, schema)
    assert inputs["when"][1, 0] == "2020-01-01 01:00:00" and np.isnan(inputs["count"][0, 0])
    assert inputs["promo"].dtype == np.float32 and set(np.unique(inputs["promo"])) <= {0.0, 1.0}


def test_overrides_set_the_kinds():
    overrides = {"grade": "numeric", "region": "drop", "sold_on": "categorical", "id": "categorical"}
    schema = tabular.infer_schema(make_frame(), target="y", overrides=overrides)
    kinds = _kinds(schema)
    assert {name: kinds[name] for name in overrides} == overrides


def test_bad_overrides_are_reported_all_at_once():
    overrides = {"regon": "categorical", "price": "datetime", "grade": "colour"}
    with pytest.raises(InvalidParameterError) as caught:
        tabular.infer_schema(make_frame(), target="y", overrides=overrides)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("`data.columns`: 3 problems: ")
    assert "`data.columns.regon` names no column of the data (did you mean 'region'?)" in message
    assert "`data.columns.price` 'datetime' cannot apply: 0 of " in message
    assert "`data.columns.grade` must be one of numeric, categorical, boolean, datetime, drop" in message
    assert message.endswith(f"Received: data.columns={overrides!r}")


def test_one_bad_override_names_the_columns():
    with pytest.raises(InvalidParameterError, match=r"^`data.columns.zzz` names no column of the data "
                       r"\(columns: id, price, .*\). Received: data.columns.zzz='categorical'$"):
        tabular.infer_schema(make_frame(), target="y", overrides={"zzz": "categorical"})


def test_unusable_target_and_empty_columns_are_refused_together():
    frame = make_frame(rows=40).assign(y=3.0, blank=np.nan)
    with pytest.raises(InvalidParameterError) as caught:
        tabular.infer_schema(frame, target="y")
    message = str(caught.value)
    assert message.startswith("`data`: 2 problems: `data.target` column 'y' is constant (3.0 in every row)")
    assert "set `data.columns.blank: drop`" in message and "\n" not in message
    with pytest.raises(InvalidParameterError, match=r"^`data.target` names no column of the data"):
        tabular.infer_schema(frame, target="price_", overrides={"blank": "drop"})
    with pytest.raises(InvalidParameterError, match="missing in every row"):
        tabular.infer_schema(frame.assign(y=None), target="y", overrides={"blank": "drop"})


def test_schema_module_imports_no_tensorflow():
    tree = ast.parse(pathlib.Path(tabular.__file__).read_text())
    names = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
             for alias in getattr(node, "names", [])}
    modules = {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not (names | modules) & {"tensorflow", "keras", "tuning", "evaluation", "export", "keras_zoo"}


# === Codes: encoder_model, encode_frame and the manifest agree ===


def test_encoder_model_equals_encode_frame_equals_the_manifest(fitted):
    schema, pre, _, test = fitted
    codes = pre.encode_frame(test)
    encoded = np.asarray(pre.encoder_model(tabular.frame_to_inputs(test, schema)))
    manifest = json.loads(json.dumps(pre.to_dict()))
    assert codes.dtype == np.float32 and codes.shape == (len(test), len(schema.features))
    assert np.isnan(codes).any()
    np.testing.assert_array_equal(encoded, codes)
    np.testing.assert_array_equal(preprocessing.apply_vocabularies(manifest, test), codes)
    assert [c["name"] for c in manifest["codes"]] == [c.name for c in schema.features]


def test_unseen_and_missing_categories_map_to_code_zero(fitted):
    schema, pre, train, test = fitted
    region = [c.name for c in schema.features].index("region")
    codes = pre.encode_frame(test)
    assert codes[0, region] == 0 and codes[1, region] == 0
    assert pre.vocabularies["region"] == ["north", "south", "east", "west"]  # most frequent first
    assert pre.count_unseen(test) == 1 and pre.count_unseen(train) == 0
    assert codes[2, region] == pre.vocabularies["region"].index(test["region"].iloc[2]) + 1


def test_feature_model_imputes_normalizes_and_one_hot_encodes(fitted):
    schema, pre, train, test = fitted
    features = np.asarray(pre.feature_model(pre.encode_frame(test)))
    names = pre.feature_names
    assert features.shape == (len(test), len(names)) and not np.isnan(features).any()
    price = train["price"].astype(float)
    expected = (test["price"].fillna(price.mean()) - price.mean()) / price.std(ddof=0)
    np.testing.assert_allclose(features[:, names.index("price")], expected, atol=1e-5)
    np.testing.assert_array_equal(features[:, names.index("price.missing")], test["price"].isna())
    one_hot = features[:, names.index("region=<other>"):names.index("region=west") + 1]
    codes = pre.encode_frame(test)[:, [c.name for c in schema.features].index("region")]
    np.testing.assert_array_equal(one_hot, np.eye(5)[codes.astype(int)])
    weekday = features[:, names.index("sold_on.weekday")]
    assert len(np.unique(weekday.round(4))) == 7  # normalized days of the week


def test_one_categorical_column_encodes_to_float_codes_and_an_empty_vocabulary_is_refused():
    frame = pd.DataFrame({"colour": ["red", "blue", None, "red"] * 5, "y": np.arange(20.0)})
    schema = tabular.infer_schema(frame, target="y")
    pre = preprocessing.TabularPreprocessor(schema, frame)
    codes = pre.encoder_model(tabular.frame_to_inputs(frame, schema))
    assert codes.dtype == "float32"
    np.testing.assert_array_equal(np.asarray(codes)[:4, 0], [1, 2, 0, 1])
    with pytest.raises(InvalidParameterError, match=r"^`data.columns.colour` has no value in the training split"):
        preprocessing.TabularPreprocessor(schema, frame.assign(colour=None))


def test_a_high_cardinality_category_keeps_its_most_frequent_values():
    # 60 values 12 times, 50 twice, 180 once: 290 distinct in 1000 rows (not id-like)
    values = ([f"top{i:02d}" for i in range(60)] * 12 + [f"mid{i:02d}" for i in range(50)] * 2
              + [f"rare{i:03d}" for i in range(180)])
    frame = pd.DataFrame({"city": values, "y": np.arange(len(values), dtype=float)})
    schema = tabular.infer_schema(frame, target="y")
    assert schema.columns[0].kind == "categorical"
    assert f"the {tabular.MAX_CATEGORIES} most frequent kept" in schema.columns[0].note
    pre = preprocessing.TabularPreprocessor(schema, frame)
    kept = [f"top{i:02d}" for i in range(60)] + [f"mid{i:02d}" for i in range(40)]  # ties in value order
    assert tabular.MAX_CATEGORIES == 100 and pre.vocabularies["city"] == kept
    assert pre.to_dict()["max_categories"] == 100 and len(pre.feature_names) == 101
    rows = pd.DataFrame({"city": ["top00", "mid39", "mid40", "rare000"]})
    np.testing.assert_array_equal(pre.encode_frame(rows)[:, 0], [1, 100, 0, 0])
    np.testing.assert_array_equal(np.asarray(pre.encoder_model(tabular.frame_to_inputs(rows, schema)))[:, 0],
                                  [1, 100, 0, 0])


def _tflite_predict(model, rows):
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = Interpreter(model_content=converter.convert())
    entry = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(entry["index"], rows.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(entry["index"], rows)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def _onnx_predict(model, rows):
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    signature = (tf.TensorSpec((None, rows.shape[1]), tf.float32, name="codes"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature)
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: rows})[0]


def test_feature_model_converts_to_tflite_builtins_and_onnx(fitted):
    import keras

    _, pre, _, test = fitted
    codes = keras.Input((len(pre.schema.features),))
    model = keras.Model(codes, keras.layers.Dense(3)(pre.feature_model(codes)))
    rows = pre.encode_frame(test)
    rows[3, :] = np.nan  # every column missing, categorical codes included
    assert np.isnan(rows).any() and (rows[:2] == 0).any()
    expected = np.asarray(model(rows))
    np.testing.assert_allclose(_tflite_predict(model, rows), expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(_onnx_predict(model, rows), expected, rtol=0, atol=1e-5)


LOAD_AND_PREDICT = """
import json, sys
import numpy as np
import keras
import zoo.layers
path, inputs_path = sys.argv[1:]
raw = json.load(open(inputs_path))
inputs = {name: np.array(values, dtype=object if kind == "string" else "float32").reshape(-1, 1)
          for name, (kind, values) in raw.items()}
model = keras.saving.load_model(path, safe_mode=True)
np.save(path + ".npy", np.asarray(model(inputs)))
"""


def test_raw_model_saves_and_loads_in_a_fresh_process(fitted, tmp_path):
    import keras

    schema, pre, _, test = fitted
    encoder = pre.build_encoder_model()
    outputs = keras.layers.Dense(2, name="head")(pre.build_feature_model()(encoder.output))
    model = keras.Model(encoder.input, outputs)
    inputs = tabular.frame_to_inputs(test, schema)
    expected = np.asarray(model(inputs))
    path = tmp_path / "raw.keras"
    model.save(path)
    sources = {c.name: c.source for c in schema.features}
    (tmp_path / "inputs.json").write_text(
        json.dumps({name: (sources[name], values.ravel().tolist()) for name, values in inputs.items()})
    )
    subprocess.run([sys.executable, "-c", LOAD_AND_PREDICT, str(path), str(tmp_path / "inputs.json")], check=True)
    np.testing.assert_allclose(np.load(f"{path}.npy"), expected, rtol=0, atol=1e-6)


# === Layers ===


def test_parse_date_matches_pandas_for_each_format():
    from zoo.layers.preprocessing import ParseDate

    rng = np.random.default_rng(1)
    stamps = pd.Timestamp("1900-01-01") + pd.to_timedelta(rng.integers(0, 200 * 365 * 86400, 300), unit="s")
    epoch = pd.Timestamp("1970-01-01")
    for date_format in tabular.DATE_FORMATS:
        strings = np.array(list(stamps.strftime(date_format)) + ["", "garbage"], dtype=object)
        parsed = pd.to_datetime(pd.Series(strings[:-2]), format=date_format)
        expected = ((parsed - epoch) / pd.Timedelta(days=1)).to_numpy().astype("float32")
        got = np.asarray(ParseDate(date_format)(strings.reshape(-1, 1))).ravel()
        np.testing.assert_allclose(got[:-2], expected, rtol=0, atol=1e-2, err_msg=date_format)  # float32 at ~5e4 days
        assert np.isnan(got[-2:]).all()
        np.testing.assert_array_equal(got, tabular.parse_dates(strings, date_format).astype("float32"))
    impossible = np.array([["2019-02-29"], ["2020-13-01"], ["2020-02-29"]], dtype=object)
    got = np.asarray(ParseDate("%Y-%m-%d")(impossible)).ravel()
    assert np.isnan(got[:2]).all() and got[2] == (pd.Timestamp("2020-02-29") - epoch).days


def test_days_to_calendar_matches_pandas_from_1900_to_2100():
    from zoo.layers.preprocessing import DaysToCalendar

    dates = pd.date_range("1900-01-01", "2100-12-31", freq="D")
    days = (dates - pd.Timestamp("1970-01-01")).days.to_numpy().astype("float32")
    got = np.asarray(DaysToCalendar()(np.stack([days, days[::-1]], axis=1)))
    for column, order in ((0, slice(None)), (1, slice(None, None, -1))):
        expected = np.stack([days[order], dates.year[order], dates.month[order], dates.day[order],
                             dates.dayofweek[order]], axis=1)
        np.testing.assert_array_equal(got[:, 5 * column:5 * column + 5], expected)


def test_impute_fills_and_flags_missing_values():
    from zoo.layers.preprocessing import Impute

    x = np.array([[np.nan, 2.0], [3.0, np.nan]], dtype="float32")
    np.testing.assert_array_equal(np.asarray(Impute([1.0, 9.0])(x)), [[1, 2, 1, 0], [3, 9, 0, 1]])
    np.testing.assert_array_equal(np.asarray(Impute([1.0, 9.0], indicator=[False, True])(x)), [[1, 2, 0], [3, 9, 1]])
    layer = Impute.from_config(Impute([1.0, 9.0], indicator=False).get_config())
    np.testing.assert_array_equal(np.asarray(layer(x)), [[1, 2], [3, 9]])


def test_class_names_layer_keeps_the_labels_in_its_config():
    from zoo.layers.preprocessing import ClassNames

    layer = ClassNames.from_config(ClassNames(["cat", "dog"]).get_config())
    x = np.ones((2, 2), dtype="float32")
    assert layer.names == ["cat", "dog"] and np.array_equal(np.asarray(layer(x)), x)


# === Arrays and targets ===


def test_array_preprocessor_normalizes_features_and_images():
    rng = np.random.default_rng(2)
    X = rng.normal(5, 3, size=(50, 4)).astype("float32")
    normalized = np.asarray(preprocessing.ArrayPreprocessor(X).feature_model(X))
    np.testing.assert_allclose(normalized.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(normalized.std(axis=0), 1, atol=1e-4)
    images = rng.uniform(0, 255, size=(10, 6, 6, 3)).astype("float32")
    pre = preprocessing.ArrayPreprocessor(images)
    assert pre.kind == "image" and len(set(pre.mean)) == 1
    scaled = np.asarray(pre.feature_model(images))
    assert scaled.shape == images.shape and abs(scaled.mean()) < 1e-4
    X[0, 1] = np.nan
    filled = np.asarray(preprocessing.ArrayPreprocessor(X).feature_model(X))
    assert not np.isnan(filled).any() and abs(filled[0, 1]) < 1e-6  # the train mean -> 0
    with pytest.raises(InvalidParameterError, match=r"^`kind` must be one of auto, image, feature"):
        preprocessing.ArrayPreprocessor(X, kind="pixels")


def test_target_scaler_unscales_what_scale_target_scales():
    y = np.random.default_rng(3).normal(1000, 250, size=40)
    scaler = preprocessing.target_scaler(y)
    scaled = preprocessing.scale_target(y, scaler)
    assert scaled.shape == y.shape and abs(scaled.mean()) < 1e-5 and abs(scaled.std() - 1) < 1e-5
    np.testing.assert_allclose(np.asarray(scaler(scaled.reshape(-1, 1))).ravel(), y, rtol=1e-6)
