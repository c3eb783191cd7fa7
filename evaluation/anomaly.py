"""Reports for the catalog's unsupervised tasks: reconstruction (autoencoder, VAE) and
verification (Siamese pairs). Both need only a model of the right shape and arrays."""

import numpy as np

from evaluation import _checks
from evaluation import plots as _plots
from evaluation.report import Report
from zoo.errors import InvalidParameterError

DISTANCES = ("euclidean", "cosine", "manhattan")


def _reconstruction(outputs, X):
    """The model output that reconstructs X: the output itself, or the first one shaped like X
    (a VAE may also return its latent statistics)."""
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    candidates = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    for candidate in candidates:
        candidate = np.asarray(candidate)
        if candidate.shape == X.shape:
            if not np.isfinite(candidate).all():
                raise InvalidParameterError(
                    f"`predictions` must be finite. Received: {int((~np.isfinite(candidate)).sum())} NaN/inf reconstructed values"
                )
            return candidate.astype("float64")
    shapes = ", ".join(str(np.shape(c)) for c in candidates)
    raise InvalidParameterError(
        f"`model` must reconstruct its input (an output shaped like X). Received: X of shape "
        f"{X.shape}, outputs of shape {shapes}"
    )


def _binary_labels(labels, count, name):
    labels = _checks.check_samples(labels, name)
    if labels.ndim != 1 or len(labels) != count:
        raise InvalidParameterError(
            f"`{name}` must be one 0/1 label per sample. Received: {name} of shape {labels.shape} for {count} samples"
        )
    if not set(np.unique(labels).tolist()) <= {0, 1}:
        raise InvalidParameterError(f"`{name}` must hold only 0 and 1. Received: values {np.unique(labels)[:5].tolist()}")
    return labels.astype("int64")


def reconstruction_report(model, X, *, labels=None, threshold=None, plots=True):
    """Reconstruction error of an autoencoder (or VAE) on X, and anomaly detection when labelled.

    Args:
        model: a Keras model (or callable) whose output, or one of whose outputs, has X's shape.
        X: inputs.
        labels: optional 0/1 per sample, 1 = anomaly; adds ROC AUC, average precision, and
            precision/recall/F1 and a confusion matrix at the threshold.
        threshold: the error above which a sample is flagged (default: the 95th percentile of
            the errors).

    Returns:
        A `Report`: per-sample error = mean squared error over the sample's features.
    """
    X = _checks.check_samples(X).astype("float64")
    reconstructed = _reconstruction(_checks.predict(model, X), X)
    return reconstruction_report_from_predictions(X, reconstructed, labels=labels, threshold=threshold, plots=plots)


def reconstruction_report_from_predictions(X, reconstructed, *, labels=None, threshold=None, plots=True):
    """`reconstruction_report` on fixed reconstructions."""
    from sklearn import metrics

    X = _checks.check_samples(X).astype("float64")
    reconstructed = _reconstruction(reconstructed, X)
    flat_x, flat_r = X.reshape(len(X), -1), reconstructed.reshape(len(X), -1)
    # scikit-learn averages over rows; transposed, each sample is one "output"
    errors = metrics.mean_squared_error(flat_x.T, flat_r.T, multioutput="raw_values")
    threshold = float(np.percentile(errors, 95)) if threshold is None else float(threshold)
    report = Report(kind="reconstruction", task="reconstruction", meta={"samples": len(X), "features": flat_x.shape[1]})
    m = report.metrics
    m["mean_squared_error"] = metrics.mean_squared_error(flat_x, flat_r)
    m["mean_absolute_error"] = metrics.mean_absolute_error(flat_x, flat_r)
    m["reconstruction_error_median"] = np.median(errors)
    m["reconstruction_error_p95"] = np.percentile(errors, 95)
    m["reconstruction_error_max"] = np.max(errors)
    m["threshold"] = threshold
    m["flagged_fraction"] = np.mean(errors > threshold)
    groups = {"all samples": errors}
    if labels is not None:
        labels = _binary_labels(labels, len(X), "labels")
        flagged = (errors > threshold).astype("int64")
        if len(np.unique(labels)) == 2:
            m["roc_auc_score"] = metrics.roc_auc_score(labels, errors)
            m["average_precision_score"] = metrics.average_precision_score(labels, errors)
        else:
            report.notes.append("roc_auc_score needs both normal (0) and anomalous (1) samples.")
        m["precision_score"] = metrics.precision_score(labels, flagged, zero_division=0)
        m["recall_score"] = metrics.recall_score(labels, flagged, zero_division=0)
        m["f1_score"] = metrics.f1_score(labels, flagged, zero_division=0)
        report.tables["confusion_matrix"] = _frame(metrics.confusion_matrix(labels, flagged, labels=[0, 1]),
                                                   ["normal", "anomaly"])
        groups = {"normal": errors[labels == 0], "anomaly": errors[labels == 1]}
        groups = {k: v for k, v in groups.items() if len(v)}
    report.metrics = {k: float(v) for k, v in m.items()}
    report.notes.append("Per-sample reconstruction error: mean squared error over the sample's features; "
                        "the threshold flags samples above it as anomalies.")
    if plots:
        report.plots["reconstruction_error_histogram"] = _plots.histogram(
            groups, title="Reconstruction error", xlabel="per-sample mean squared error", threshold=threshold)
        if "roc_auc_score" in m:
            report.plots["anomaly_roc_curve"] = _plots.roc_from_scores(
                labels, errors, name="reconstruction error", title="Anomaly ROC curve")
    return report


def verification_report(model, X_a, X_b, same, *, distance="euclidean", pair_output="similarity", plots=True):
    """How well a Siamese model tells matching pairs from non-matching ones.

    Args:
        model: either an embedding model (one input: each side is embedded and the pair scored by
            `distance` between embeddings), or a pair model with two inputs `[a, b]` returning one
            score per pair.
        X_a, X_b: the two sides of each pair.
        same: 1 where the pair matches, else 0.
        distance: 'euclidean', 'cosine' or 'manhattan' for embedding models.
        pair_output: for two-input models, whether their score is a 'similarity' (higher = same)
            or a 'distance' (lower = same).

    Returns:
        A `Report` with ROC AUC, average precision, the equal error rate, the threshold that
        maximizes TPR − FPR with the accuracy there; ROC curve and score histograms.
    """
    from sklearn.metrics.pairwise import paired_distances

    if distance not in DISTANCES:
        raise InvalidParameterError(f"`distance` must be one of {', '.join(DISTANCES)}. Received: distance={distance!r}")
    if pair_output not in ("similarity", "distance"):
        raise InvalidParameterError(f"`pair_output` must be 'similarity' or 'distance'. Received: pair_output={pair_output!r}")
    X_a, X_b = _checks.check_samples(X_a, "X_a"), _checks.check_samples(X_b, "X_b")
    if X_a.shape != X_b.shape:
        raise InvalidParameterError(
            f"`X_a` and `X_b` must have the same shape. Received: X_a of shape {X_a.shape}, X_b of shape {X_b.shape}"
        )
    inputs = getattr(model, "inputs", None)
    if inputs is not None and len(inputs) == 2:
        outputs = _checks.check_outputs(model.predict([X_a, X_b], verbose=0), len(X_a))
        if outputs.shape[1] != 1:
            raise InvalidParameterError(
                f"`model` with two inputs must return one score per pair. Received: outputs of shape {outputs.shape}"
            )
        similarity = outputs[:, 0] if pair_output == "similarity" else -outputs[:, 0]
    else:
        emb_a = _checks.check_outputs(_flat(_checks.predict(model, X_a)), len(X_a))
        emb_b = _checks.check_outputs(_flat(_checks.predict(model, X_b)), len(X_b))
        similarity = -paired_distances(emb_a, emb_b, metric=distance)
    return verification_report_from_scores(same, similarity, plots=plots)


def _flat(embeddings):
    embeddings = np.asarray(embeddings)
    return embeddings.reshape(len(embeddings), -1)


def verification_report_from_scores(same, similarity, *, plots=True):
    """`verification_report` on fixed similarity scores (higher = more likely the same)."""
    from sklearn import metrics

    similarity = _checks.check_outputs(similarity, len(np.atleast_1d(same)), name="similarity")[:, 0]
    same = _binary_labels(same, len(similarity), "same")
    if len(np.unique(same)) < 2:
        raise InvalidParameterError("`same` must contain matching (1) and non-matching (0) pairs. "
                                    f"Received: only label {int(same[0])}")
    fpr, tpr, thresholds = metrics.roc_curve(same, similarity)
    best = int(np.argmax(tpr - fpr))
    eer_index = int(np.argmin(np.abs(fpr - (1.0 - tpr))))
    threshold = float(thresholds[best])
    predicted = (similarity >= threshold).astype("int64")
    report = Report(kind="verification", task="verification",
                    meta={"pairs": len(same), "matching_pairs": int(same.sum())})
    report.metrics = {
        "roc_auc_score": float(metrics.roc_auc_score(same, similarity)),
        "average_precision_score": float(metrics.average_precision_score(same, similarity)),
        "equal_error_rate": float((fpr[eer_index] + 1.0 - tpr[eer_index]) / 2.0),
        "threshold": threshold,
        "accuracy_score": float(metrics.accuracy_score(same, predicted)),
        "true_positive_rate": float(tpr[best]),
        "false_positive_rate": float(fpr[best]),
    }
    report.tables["confusion_matrix"] = _frame(metrics.confusion_matrix(same, predicted, labels=[0, 1]),
                                               ["different", "same"])
    report.notes.append("Scores are similarities (negated distances for embedding models); the threshold "
                        "maximizes TPR − FPR on these pairs, so accuracy there is optimistic.")
    if plots:
        report.plots["verification_roc_curve"] = _plots.roc_from_scores(same, similarity, name="pairs",
                                                                       title="Verification ROC curve")
        report.plots["pair_score_histogram"] = _plots.histogram(
            {"different": similarity[same == 0], "same": similarity[same == 1]},
            title="Pair similarity", xlabel="similarity (higher = same)", threshold=threshold)
    return report


def _frame(matrix, names):
    import pandas as pd

    frame = pd.DataFrame(matrix, index=names, columns=names)
    frame.index.name = "true \\ predicted"
    return frame
