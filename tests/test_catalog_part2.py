"""Real-data checks of the generative and relational families (digits, a planted-partition
graph), their helpers, and their bad-input errors."""

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

import zoo
from zoo.models.autoencoder import anomaly_score
from zoo.models.gnn import adjacency_from_edges, graph_inputs, normalize_adjacency
from zoo.models.siamese import make_pairs, make_triplets


@pytest.fixture(scope="module")
def digits():
    """8×8 digit images scaled to [0, 1], split 70/30 stratified."""
    data = load_digits()
    images = (data.images / 16.0).astype("float32")[..., None]
    return train_test_split(images, data.target, test_size=0.3, stratify=data.target, random_state=0)


def planted_partition(*, communities=2, size=50, p_in=0.1, p_out=0.01, seed=0):
    """Edges of a graph whose nodes link mostly inside their community, and the communities."""
    rng = np.random.default_rng(seed)
    community = np.repeat(np.arange(communities), size)
    probability = np.where(community[:, None] == community[None, :], p_in, p_out)
    return np.argwhere(np.triu(rng.uniform(size=probability.shape) < probability, k=1)), community


# --- real data -----------------------------------------------------------------------------


@pytest.mark.slow
def test_autoencoder_reconstruction_error_flags_a_held_out_digit(digits):
    X_train, X_test, y_train, y_test = digits
    held_out = 9
    model = zoo.create_model("autoencoder", input_shape=(8, 8, 1))
    model.fit(X_train[y_train != held_out], epochs=40, batch_size=32, verbose=0)
    auc = roc_auc_score(y_test == held_out, anomaly_score(model, X_test))
    assert auc >= 0.8, auc


@pytest.mark.slow
def test_vae_loss_falls_on_digits_and_samples_have_the_input_shape(digits):
    X_train, X_test, _, _ = digits
    model = zoo.create_model("vae", input_shape=(8, 8, 1))
    before = model.evaluate(X_test, verbose=0, return_dict=True)
    history = model.fit(X_train, epochs=10, batch_size=32, verbose=0).history
    after = model.evaluate(X_test, verbose=0, return_dict=True)
    assert history["loss"][-1] < history["loss"][0]
    assert after["loss"] < before["loss"]
    assert set(history) == {"loss", "reconstruction_loss", "kl_loss"}
    samples = model.sample(16)
    assert samples.shape == (16, 8, 8, 1)
    assert np.all((samples >= 0) & (samples <= 1))


def test_gan_losses_stay_finite_over_a_short_run_on_digits(digits):
    X_train, *_ = digits
    model = zoo.create_model("gan", input_shape=(8, 8, 1), learning_rate=2e-4)
    history = model.fit(X_train, epochs=5, batch_size=32, verbose=0).history
    assert set(history) == {"discriminator_loss", "generator_loss"}
    assert np.all(np.isfinite(history["discriminator_loss"]))
    assert np.all(np.isfinite(history["generator_loss"]))
    assert model.generator_optimizer is not model.optimizer
    assert model.generator_optimizer.iterations == model.optimizer.iterations > 0
    assert np.all(np.isfinite(model.sample(16)))


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["contrastive", "triplet"])
def test_siamese_embedding_verifies_digit_pairs(digits, loss):
    X_train, X_test, y_train, y_test = digits
    model = zoo.create_model("siamese", input_shape=(8, 8, 1), loss=loss)
    if loss == "contrastive":
        pairs, same = make_pairs(X_train, y_train, num_pairs=4000, seed=0)
        model.fit(pairs, same, epochs=8, batch_size=64, verbose=0)
    else:
        model.fit(make_triplets(X_train, y_train, num_triplets=4000, seed=0), epochs=8, batch_size=64, verbose=0)
    pairs, same = make_pairs(X_test, y_test, num_pairs=1000, seed=1)
    distances = model.predict(pairs, verbose=0)
    assert roc_auc_score(same, -distances) >= 0.9


@pytest.mark.slow
def test_gnn_classifies_held_out_nodes_of_a_planted_partition_graph():
    edges, community = planted_partition()
    num_nodes = len(community)
    inputs = graph_inputs(np.eye(num_nodes), adjacency_from_edges(edges, num_nodes=num_nodes))
    rng = np.random.default_rng(0)
    labelled = np.concatenate([rng.choice(np.flatnonzero(community == c), 5, replace=False) for c in (0, 1)])
    mask = np.isin(np.arange(num_nodes), labelled).astype("float32")
    model = zoo.create_model("gnn", input_shape=(num_nodes, num_nodes), num_outputs=2, learning_rate=0.01)
    model.fit(inputs, community[None], sample_weight=mask[None], epochs=60, verbose=0)
    predicted = model.predict(inputs, verbose=0)[0].argmax(axis=-1)
    held_out = mask == 0
    assert np.mean(predicted[held_out] == community[held_out]) >= 0.9


# --- parts and helpers ---------------------------------------------------------------------


def test_autoencoder_encoder_and_decoder_work_alone():
    model = zoo.create_model("autoencoder", input_shape=(8, 8, 1), variant="conv", latent_dim=5)
    x = np.random.default_rng(0).uniform(size=(3, 8, 8, 1)).astype("float32")
    code = model.encoder(x)
    assert code.shape == (3, 5)
    np.testing.assert_allclose(model.decoder(code), model(x), rtol=1e-6)
    assert anomaly_score(model, x).shape == (3,)


def test_vae_parts_and_deterministic_inference():
    model = zoo.create_model("vae", input_shape=(6,), latent_dim=3, output_activation="linear")
    x = np.random.default_rng(0).normal(size=(4, 6)).astype("float32")
    z_mean, z_log_var = model.encoder(x)
    assert z_mean.shape == z_log_var.shape == (4, 3)
    np.testing.assert_allclose(model(x), model.decoder(z_mean), rtol=1e-6)
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))


def test_gan_label_smoothing_is_one_sided_and_generator_is_a_functional_model():
    model = zoo.create_model("gan", input_shape=(8, 8, 1), label_smoothing=0.2, latent_dim=4)
    assert model.label_smoothing == 0.2
    assert isinstance(model.generator, keras.Model) and model.generator.inputs[0].shape == (None, 4)
    assert model.generator(np.zeros((2, 4), "float32")).shape == (2, 8, 8, 1)


def test_siamese_embeddings_are_unit_length_with_any_fitting_backbone():
    model = zoo.create_model("siamese", input_shape=(8, 8, 1), backbone="cnn", distance="cosine",
                             embedding_dim=6)
    x = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(np.linalg.norm(model.embed(x), axis=-1), 1.0, rtol=1e-5)
    assert model((x, x)).shape == (4,)
    np.testing.assert_allclose(model((x, x)), 0.0, atol=1e-5)


def test_pairs_and_triplets_are_balanced_and_correct():
    x = np.arange(20, dtype="float32")[:, None]
    y = np.repeat([0, 1, 2, 3], 5)
    (left, right), same = make_pairs(x, y, num_pairs=40)
    assert same.mean() == 0.5
    np.testing.assert_array_equal(y[left[:, 0].astype(int)] == y[right[:, 0].astype(int)], same == 1)
    anchor, positive, negative = (part[:, 0].astype(int) for part in make_triplets(x, y, num_triplets=30))
    assert np.all(y[anchor] == y[positive]) and np.all(anchor != positive) and np.all(y[anchor] != y[negative])


def test_adjacency_helpers_match_the_models_normalization():
    adjacency = adjacency_from_edges([[0, 1], [1, 2]], num_nodes=4)
    np.testing.assert_array_equal(adjacency, adjacency.T)
    assert adjacency.sum() == 4 and adjacency[3].sum() == 0
    from zoo.layers import NormalizedAdjacency

    np.testing.assert_allclose(NormalizedAdjacency()(adjacency[None])[0], normalize_adjacency(adjacency), rtol=1e-6)
    features, batched = graph_inputs(np.ones((4, 2)), adjacency)
    assert features.shape == (1, 4, 2) and batched.shape == (1, 4, 4)


# --- bad input: one line, naming the field -------------------------------------------------


def _one_line_naming(error, field):
    message = str(error.value)
    assert f"`{field}`" in message, message
    assert "\n" not in message, message


@pytest.mark.parametrize("adjacency,shape", [(np.ones((4, 3)), "square"), (np.ones((3, 3)), "one row per node")])
def test_adjacency_not_square_or_not_matching_the_nodes_is_refused(adjacency, shape):
    with pytest.raises(zoo.InvalidParameterError, match=shape) as error:
        graph_inputs(np.ones((4, 2)), adjacency)
    _one_line_naming(error, "adjacency")


def test_edges_outside_the_graph_are_refused():
    with pytest.raises(zoo.InvalidParameterError) as error:
        adjacency_from_edges([[0, 4]], num_nodes=4)
    _one_line_naming(error, "edges")


@pytest.mark.parametrize("name", ["autoencoder", "vae", "gan"])
def test_latent_size_below_one_is_refused(name):
    with pytest.raises(zoo.InvalidParameterError) as error:
        zoo.create_model(name, input_shape=(8, 8, 1), latent_dim=0)
    _one_line_naming(error, "latent_dim")


def test_pairs_from_one_class_are_refused():
    with pytest.raises(zoo.InvalidParameterError, match="at least 2 classes") as error:
        make_pairs(np.zeros((6, 2)), np.zeros(6))
    _one_line_naming(error, "y")


@pytest.mark.parametrize("name", ["autoencoder", "vae", "gan"])
def test_images_the_conv_decoder_cannot_reconstruct_are_refused(name):
    with pytest.raises(zoo.InvalidParameterError, match="divisible by 4") as error:
        zoo.create_model(name, input_shape=(10, 10, 1), variant="conv", filters=(8, 16))
    _one_line_naming(error, "input_shape")


def test_siamese_backbone_that_does_not_fit_the_input_is_refused():
    with pytest.raises(zoo.InvalidParameterError) as error:
        zoo.create_model("siamese", input_shape=(16,), backbone="cnn")
    _one_line_naming(error, "backbone")
