"""Class weights for imbalanced data: 'balanced' (scikit-learn) or explicit weights per class,
always computed from the training labels only."""

import numbers

import numpy as np

from zoo.errors import InvalidParameterError, InvalidTypeError


def check_class_weight(spec, *, field="class_weight"):
    """Validate the form of a `class_weight` spec ('balanced', a mapping of class to weight, or
    None) before any data is loaded; `compute_class_weights` checks the classes against the data."""
    if spec is None or spec == "balanced":
        return spec
    if isinstance(spec, str):
        raise InvalidParameterError(
            f"`{field}` must be 'balanced' or a mapping of class to weight. Received: {field}={spec!r}"
        )
    if not isinstance(spec, dict) or not spec:
        raise InvalidTypeError(
            f"`{field}` must be 'balanced' or a non-empty mapping of class to weight. "
            f"Received: {field}={spec!r}"
        )
    for key, weight in spec.items():
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not np.isfinite(weight) \
                or weight <= 0:
            raise InvalidParameterError(
                f"`{field}` weights must be finite numbers > 0. Received: {field}[{key!r}]={weight!r}"
            )
    return spec


def compute_class_weights(spec, y_train, *, class_names=None, field="class_weight"):
    """The `{class index: weight}` dict Keras `fit(class_weight=...)` takes.

    Args:
        spec: 'balanced' (n_samples / (n_classes * count), from `y_train` with scikit-learn's
            `compute_class_weight`), or a mapping from class to weight; a class is named as in
            `Dataset.class_names` (e.g. 'malignant') or, without names, by its integer label.
            Classes left out weigh 1.
        y_train: integer labels of the training split (never validation or test).
        class_names: the dataset's class names, index = label.

    Example:
        >>> compute_class_weights("balanced", np.array([0, 0, 0, 1]))
        {0: 0.6666666666666666, 1: 2.0}
    """
    from sklearn.utils.class_weight import compute_class_weight

    check_class_weight(spec, field=field)
    if spec is None:
        return None
    y_train = np.asarray(y_train)
    if not np.issubdtype(y_train.dtype, np.integer):
        raise InvalidParameterError(
            f"`{field}` applies to classification labels (integers). Received: labels of dtype {y_train.dtype}"
        )
    present = np.unique(y_train)
    num_classes = len(class_names) if class_names else int(present.max()) + 1
    weights = {index: 1.0 for index in range(num_classes)}
    if spec == "balanced":
        balanced = compute_class_weight("balanced", classes=present, y=y_train)
        weights.update({int(c): float(w) for c, w in zip(present, balanced)})
        return weights
    names = [str(n) for n in class_names] if class_names else [str(i) for i in range(num_classes)]
    for key, weight in spec.items():
        if str(key) not in names:
            raise InvalidParameterError(
                f"`{field}` names a class the data lacks (classes: {', '.join(names)}). "
                f"Received: {field}[{key!r}]={weight!r}"
            )
        weights[names.index(str(key))] = float(weight)
    return weights
