"""Tour of the catalog's generative and relational families on real data, printing the numbers
that tests/test_catalog_part2.py checks: autoencoder anomaly ROC AUC per held-out digit, VAE
loss and samples, GAN losses, Siamese verification ROC AUC, GNN accuracy on a planted partition.

    python examples/generative_and_graph_models.py
"""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

import zoo
from zoo.models.autoencoder import anomaly_score
from zoo.models.gnn import adjacency_from_edges, graph_inputs
from zoo.models.siamese import make_pairs, make_triplets


def main():
    import keras

    data = load_digits()
    images = (data.images / 16.0).astype("float32")[..., None]
    X_train, X_test, y_train, y_test = train_test_split(images, data.target, test_size=0.3,
                                                        stratify=data.target, random_state=0)

    aucs = {}
    for digit in range(10):
        keras.utils.set_random_seed(0)
        model = zoo.create_model("autoencoder", input_shape=(8, 8, 1))
        model.fit(X_train[y_train != digit], epochs=40, batch_size=32, verbose=0)
        aucs[digit] = roc_auc_score(y_test == digit, anomaly_score(model, X_test))
    print("autoencoder anomaly ROC AUC by held-out digit:",
          {d: round(a, 3) for d, a in aucs.items()}, f"mean {np.mean(list(aucs.values())):.3f}")

    keras.utils.set_random_seed(0)
    vae = zoo.create_model("vae", input_shape=(8, 8, 1))
    before = vae.evaluate(X_test, verbose=0, return_dict=True)["loss"]
    history = vae.fit(X_train, epochs=10, batch_size=32, verbose=0).history
    after = vae.evaluate(X_test, verbose=0, return_dict=True)["loss"]
    print(f"vae train loss {history['loss'][0]:.2f} -> {history['loss'][-1]:.2f}, "
          f"test loss {before:.2f} -> {after:.2f}, sample(16) shape {vae.sample(16).shape}")

    keras.utils.set_random_seed(0)
    gan = zoo.create_model("gan", input_shape=(8, 8, 1), learning_rate=2e-4)
    history = gan.fit(X_train, epochs=5, batch_size=32, verbose=0).history
    print("gan discriminator_loss", np.round(history["discriminator_loss"], 3).tolist(),
          "generator_loss", np.round(history["generator_loss"], 3).tolist())

    test_pairs, same = make_pairs(X_test, y_test, num_pairs=1000, seed=1)
    for loss in ("contrastive", "triplet"):
        keras.utils.set_random_seed(0)
        siamese = zoo.create_model("siamese", input_shape=(8, 8, 1), loss=loss)
        if loss == "contrastive":
            pairs, labels = make_pairs(X_train, y_train, num_pairs=4000, seed=0)
            siamese.fit(pairs, labels, epochs=8, batch_size=64, verbose=0)
        else:
            siamese.fit(make_triplets(X_train, y_train, num_triplets=4000, seed=0), epochs=8,
                        batch_size=64, verbose=0)
        auc = roc_auc_score(same, -siamese.predict(test_pairs, verbose=0))
        print(f"siamese ({loss}) verification ROC AUC on test-digit pairs: {auc:.4f}")

    rng = np.random.default_rng(0)
    community = np.repeat([0, 1], 50)
    probability = np.where(community[:, None] == community[None, :], 0.1, 0.01)
    edges = np.argwhere(np.triu(rng.uniform(size=probability.shape) < probability, k=1))
    inputs = graph_inputs(np.eye(100), adjacency_from_edges(edges, num_nodes=100))
    labelled = np.concatenate([rng.choice(np.flatnonzero(community == c), 5, replace=False) for c in (0, 1)])
    mask = np.isin(np.arange(100), labelled).astype("float32")
    keras.utils.set_random_seed(0)
    gnn = zoo.create_model("gnn", input_shape=(100, 100), num_outputs=2, learning_rate=0.01)
    gnn.fit(inputs, community[None], sample_weight=mask[None], epochs=60, verbose=0)
    predicted = gnn.predict(inputs, verbose=0)[0].argmax(axis=-1)
    print(f"gnn planted partition ({len(edges)} edges, 10 labelled nodes): held-out accuracy "
          f"{np.mean(predicted[mask == 0] == community[mask == 0]):.3f}")


if __name__ == "__main__":
    main()
