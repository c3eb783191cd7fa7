"""The tabular deep-learning techniques a table search uses: quantile and robust scaling, periodic
embeddings of numbers, learned embeddings of categories, RealMLP's default point, class weights,
the learning rate's anneal, and the objectives macro F1, balanced accuracy and AUC; each new layer
saves in safe mode and exports to TFLite and ONNX with parity on raw rows."""

import math

import numpy as np
import pandas as pd
import pytest

ROWS = 240


def frame(rows=ROWS, seed=0):
    """Numbers (one skewed, with gaps), a 12-value and a 3-value category, a bool, a date, and a
    three-class label that depends on them."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({
        "size": rng.normal(10, 3, rows).round(3),
        "income": np.where(rng.random(rows) < 0.1, np.nan, rng.lognormal(3, 1, rows)).round(2),
        "city": rng.choice([f"c{i}" for i in range(12)], rows).astype(object),
        "plan": rng.choice(["basic", "plus", "pro"], rows).astype(object),
        "promo": rng.choice([True, False], rows),
        "day": (pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, rows), unit="D"))
        .strftime("%Y-%m-%d").astype(object),
    })
    score = (table["size"] - 10) / 3 + np.where(table["city"] < "c5", 1.0, -0.5)
    table["label"] = np.select([score < -0.5, score < 0.7], ["low", "mid"], "high")
    return table


@pytest.fixture(scope="module")
def data():
    from zoo.data import dataset_from_frame

    return dataset_from_frame(frame(), target="label", test_size=0.2, val_size=0.2, seed=0)


# === the layers ===


def test_periodic_embedding_computes_its_formula_and_moves_with_its_frequencies():
    import keras

    from zoo.layers.tabular import PeriodicEmbedding

    layer = PeriodicEmbedding(frequencies=3, sigma=0.5, dim=3)
    x = np.array([[0.5, -1.0], [2.0, 0.0]], dtype="float32")
    out = np.asarray(layer(x))
    frequency, phase, kernel, bias = (np.asarray(w) for w in layer.get_weights())
    waves = np.cos(2 * math.pi * x[:, :, None] * frequency + phase)
    expected = np.concatenate([np.einsum("bnk,nkd->bnd", waves, kernel) + bias, x[:, :, None]], -1)
    np.testing.assert_allclose(out, expected.reshape(2, 6), atol=1e-5)
    layer.set_weights([frequency * 2.0, phase, kernel, bias])
    moved = np.asarray(layer(x))
    assert np.abs(moved - out)[:, [0, 1, 3, 4]].max() > 1e-3  # the embedded part follows f
    np.testing.assert_array_equal(moved[:, [2, 5]], x)  # the number itself is kept
    assert isinstance(keras.layers.deserialize(keras.layers.serialize(layer)), PeriodicEmbedding)


def test_piecewise_linear_maps_the_training_quantiles_to_uniform_levels():
    from zoo.layers.tabular import PiecewiseLinear

    values = np.random.default_rng(0).lognormal(size=500)
    quantiles = np.quantile(values, np.linspace(0, 1, 11))
    layer = PiecewiseLinear([list(quantiles)], [list(np.linspace(0, 1, 11))])
    mapped = np.asarray(layer(quantiles.reshape(-1, 1).astype("float32")))[:, 0]
    np.testing.assert_allclose(mapped, np.linspace(0, 1, 11), atol=1e-5)
    between = np.asarray(layer(np.array([[(quantiles[2] + quantiles[3]) / 2]], "float32")))[0, 0]
    assert between == pytest.approx(0.25, abs=1e-5)  # linear between knots
    beyond = np.asarray(layer(np.array([[-1e6], [1e6]], "float32")))[:, 0]
    np.testing.assert_allclose(beyond, [0.0, 1.0], atol=1e-6)  # constant outside them
    uniform = np.asarray(layer(values.reshape(-1, 1).astype("float32")))[:, 0]
    assert np.histogram(uniform, bins=10, range=(0, 1))[0].min() >= 40  # ~50 rows per tenth


def test_smooth_clip_keeps_small_values_and_bounds_large_ones():
    from zoo.layers.tabular import SmoothClip

    out = np.asarray(SmoothClip(3.0)(np.array([[0.0, 0.1, 30.0, -1e4]], "float32")))[0]
    assert out[0] == 0.0 and out[1] == pytest.approx(0.1, rel=1e-3)
    assert 2.9 < out[2] < 3.0 and -3.0 <= out[3] < -2.99


# === the features a trial chooses ===


def test_scalings_use_the_training_statistics(data):
    from zoo.preprocessing import FeatureOptions

    pre = data.preprocessor
    train = data.frames["train"]
    size = train["size"].to_numpy()
    for scaling in ("robust", "quantile"):
        features = np.asarray(pre.with_options(FeatureOptions(scaling=scaling)).build_feature_model()(data.X_train))
        scaled = features[:, 0]  # the first numeric column
        assert np.corrcoef(np.argsort(np.argsort(size)), np.argsort(np.argsort(scaled)))[0, 1] > 0.999
        if scaling == "robust":
            median_row = np.argmin(np.abs(size - np.median(size)))
            assert abs(scaled[median_row]) < 0.05 and np.abs(features[:, :2]).max() < 3.0
        else:  # the normal scores of the training quantiles
            assert abs(scaled.mean()) < 0.1 and 0.85 < scaled.std() < 1.15


def test_category_embeddings_replace_wide_one_hots_and_auto_keeps_small_ones(data):
    import keras

    from zoo.preprocessing import FeatureOptions

    pre = data.preprocessor
    widths = {}
    for categories in ("one_hot", "embedding", "auto"):
        configured = pre.with_options(FeatureOptions(categories=categories, category_dim=4))
        model = configured.build_feature_model()
        out = np.asarray(model(data.X_train))
        assert out.shape[1:] == configured.feature_shape
        widths[categories] = out.shape[1]
        embeddings = [layer for layer in model.layers if isinstance(layer, keras.layers.Embedding)]
        assert len(embeddings) == {"one_hot": 0, "embedding": 2, "auto": 1}[categories]
    assert widths == {"one_hot": widths["one_hot"], "embedding": widths["one_hot"] - 13 - 4 + 8,
                      "auto": widths["one_hot"] - 13 + 4}  # city: 12 values + unseen; plan: 3 + 1


def test_periodic_features_train_inside_the_model(data):
    import keras

    from zoo.preprocessing import FeatureOptions

    configured = data.preprocessor.with_options(FeatureOptions(numeric_embedding="periodic", frequencies=8))
    assert configured.feature_shape == (data.feature_shape[0] + 7 * 3,)  # 7 numbers and date parts, 4 wide
    core = keras.Sequential([keras.Input(configured.feature_shape), keras.layers.Dense(3, activation="softmax")])
    from zoo.data import compose_model

    model = compose_model(core, input_shape=data.input_shape, preprocessor=configured)
    model.compile("adam", "sparse_categorical_crossentropy")
    periodic = model.get_layer("feature_model").get_layer("periodic")
    before = np.asarray(periodic.frequency).copy()
    model.fit(data.X_train, data.y_train, epochs=1, batch_size=64, verbose=0)
    assert np.abs(np.asarray(periodic.frequency) - before).max() > 0


# === the search: default point, training choices, objectives ===


def table_hypermodel(data, **kwargs):
    from tuning.hypermodel import ZooHyperModel

    return ZooHyperModel(["mlp"], input_shape=data.feature_shape, num_outputs=data.num_outputs,
                         task=data.task, compose=data.compose, class_names=data.class_names, **kwargs)


def test_a_tables_default_point_is_the_realmlp_recipe(data):
    import keras_tuner as kt

    from tuning.hypermodel import ZooHyperModel
    from zoo.preprocessing import feature_space

    hypermodel = table_hypermodel(data)
    hp = kt.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    model = hypermodel.build(hp)
    core = model.get_layer("mlp")
    assert [layer.units for layer in core.layers if layer.name.endswith("_dense")] == [256, 256, 256]
    assert core.get_layer("hidden_1_act").get_config()["activation"] in ("swish", "silu")
    assert core.get_layer("hidden_1_drop").rate == pytest.approx(0.1)
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    assert type(model.optimizer).__name__ == "AdamW" and model.optimizer.weight_decay == pytest.approx(0.1)
    assert model.loss.get_config()["label_smoothing"] == pytest.approx(0.1)
    features = model.get_layer("feature_model")
    assert {"periodic", "robust_numeric", "clip_numeric", "embed_0", "one_hot_1"} <= {l.name for l in features.layers}
    assert hp.values["train_anneal"] == "flat_cosine" and hp.values["train_class_weight"] == "none"
    assert feature_space(kt.HyperParameters()).scaling == "robust"
    # the catalog's own space keeps its defaults off tables
    plain = ZooHyperModel(["mlp"], input_shape=(4,), num_outputs=3, task="multiclass")
    plain_hp = kt.HyperParameters()
    plain.declare_hyperparameters(plain_hp)
    assert plain_hp.values["mlp_units_count"] == 2 and "features_scaling" not in plain_hp.values


def test_fixed_values_hold_hyperparameters_and_true_holds_the_default_point(data):
    import keras_tuner as kt

    held = table_hypermodel(data, fixed={"features_scaling": "quantile", "mlp_units_count": 1})
    hp = kt.HyperParameters()
    held.declare_hyperparameters(hp)
    space = {p.name: p for p in hp.space}
    assert isinstance(space["features_scaling"], kt.engine.hyperparameters.Fixed)
    assert hp.values["features_scaling"] == "quantile" and hp.values["mlp_units_count"] == 1
    assert isinstance(space["features_categories"], kt.engine.hyperparameters.Choice)  # still searched
    point = kt.HyperParameters()
    table_hypermodel(data, fixed=True).declare_hyperparameters(point)
    assert all(isinstance(p, kt.engine.hyperparameters.Fixed) for p in point.space)
    assert point.values["mlp_units_0"] == 256 and point.values["features_numeric_embedding"] == "periodic"


def test_balanced_class_weights_and_the_anneal_reach_the_fit(data):
    import keras_tuner as kt

    from tuning.hypermodel import AnnealLearningRate, anneal_factor

    hypermodel = table_hypermodel(data)
    hp = kt.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    hp.values["train_class_weight"] = "balanced"
    model = hypermodel.build(hp)
    seen = {}

    def fake_fit(x, y, **kwargs):
        seen.update(kwargs)

    model.fit = fake_fit
    hypermodel.fit(hp, model, data.X_train, data.y_train, epochs=2)
    counts = np.bincount(data.y_train)
    assert seen["class_weight"] == pytest.approx({i: len(data.y_train) / (3 * c) for i, c in enumerate(counts)})
    assert any(isinstance(c, AnnealLearningRate) and c.kind == "flat_cosine" for c in seen["callbacks"])
    assert anneal_factor("flat_cosine", 0.4) == 1.0 and anneal_factor("flat_cosine", 0.75) == pytest.approx(0.5)
    assert anneal_factor("cosine", 1.0) == pytest.approx(0.0) and anneal_factor("none", 0.9) == 1.0


def test_the_anneal_lowers_the_rate_through_a_fit_and_restores_it():
    import keras

    from tuning.hypermodel import AnnealLearningRate

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.01), "mse")
    rates = []

    class Spy(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

    x = np.zeros((40, 2), "float32")
    model.fit(x, x[:, :1], epochs=2, batch_size=10, callbacks=[AnnealLearningRate("cosine"), Spy()], verbose=0)
    assert rates[0] == pytest.approx(0.01) and rates[-1] < 0.001 and rates == sorted(rates, reverse=True)
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(0.01)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_objective_metrics_equal_scikit_learns(task):
    import keras
    from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

    from zoo.layers.metrics import BalancedAccuracy, MacroAUC, MacroF1

    rng = np.random.default_rng(1)
    classes = 2 if task == "binary" else 4
    y = rng.integers(0, classes, 300)
    logits = rng.normal(size=(300, classes)) + 1.5 * np.eye(classes)[y]
    probabilities = np.asarray(keras.ops.softmax(logits))
    y_pred = probabilities[:, 1:] if task == "binary" else probabilities
    predicted = probabilities.argmax(1)
    for metric, expected in ((MacroF1(classes), f1_score(y, predicted, average="macro")),
                             (BalancedAccuracy(classes), balanced_accuracy_score(y, predicted))):
        metric.update_state(y[:150], y_pred[:150])
        metric.update_state(y[150:], y_pred[150:])
        assert float(metric.result()) == pytest.approx(expected, abs=1e-5)
    if task == "multiclass":
        auc = MacroAUC(classes)
        auc.update_state(y, y_pred)
        assert float(auc.result()) == pytest.approx(roc_auc_score(y, probabilities, multi_class="ovr"), abs=5e-3)


def test_a_search_is_scored_by_the_objective_it_names(data, tmp_path):
    from tuning import search
    from tuning.options import check_objective, objective_direction
    from zoo.errors import InvalidParameterError

    result = search(data, hypermodel=table_hypermodel(data, objective="val_balanced_accuracy"),
                    families=["mlp"], algorithm="random", max_trials=1, max_epochs=2,
                    objective="val_balanced_accuracy", directory=str(tmp_path / "s"), tracking=False,
                    progress=False)
    assert 0.0 < result.best_score <= 1.0 and "val_balanced_accuracy" in result.history.history
    for objective in ("val_f1_macro", "val_auc", "val_balanced_accuracy"):
        check_objective(objective, "multiclass")
        assert objective_direction(objective) == "max"
    with pytest.raises(InvalidParameterError) as error:
        check_objective("val_f1_macro", "regression")
    assert "\n" not in str(error.value) and str(error.value).startswith("`search.objective`")


# === saved and exported ===


@pytest.mark.parametrize("options", [
    {"scaling": "quantile", "numeric_embedding": "periodic", "categories": "embedding"},
    {"scaling": "robust", "categories": "auto"},
], ids=["quantile-periodic-embedding", "robust-auto"])
def test_each_new_layer_saves_and_exports_with_parity_on_raw_rows(data, options, tmp_path):
    import keras

    from export import export_model
    from keras_zoo.pipeline import preprocessing_description
    from zoo.data import compose_model
    from zoo.preprocessing import FeatureOptions

    configured = data.preprocessor.with_options(FeatureOptions(**options))
    keras.utils.set_random_seed(0)
    core = keras.Sequential([keras.Input(configured.feature_shape), keras.layers.Dense(8, activation="relu"),
                             keras.layers.Dense(3, activation="softmax")], name="mlp")
    model = compose_model(core, input_shape=data.input_shape, preprocessor=configured,
                          class_names=data.class_names)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(data.X_train, data.y_train, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded(data.X_test)), np.asarray(model(data.X_test)), atol=1e-6)
    manifest = export_model(model, tmp_path / "export", formats=("tflite", "onnx"), samples=data.X_test,
                            latency_repeats=0, atol=1e-5, rtol=1e-5,
                            preprocessing=preprocessing_description(data))
    assert manifest.ok, manifest
    for name in ("tflite", "onnx"):
        parity = manifest[name].parity
        assert parity["passed"] and parity["outputs"][0]["max_abs_error"] <= 1e-5
