"""Classification metrics a search can be scored by, on integer labels and the model's probabilities
(a sigmoid unit for binary, a softmax for multiclass): macro F1, balanced accuracy, macro AUC."""

import keras
from keras import ops


def _probabilities(y_pred, num_classes):
    """(batch, num_classes) probabilities: a binary model's one sigmoid unit p becomes [1 - p, p]."""
    y_pred = ops.cast(y_pred, "float32")
    if num_classes == 2 and y_pred.shape[-1] == 1:
        return ops.concatenate([1.0 - y_pred, y_pred], axis=-1)
    return y_pred


def _one_hot(y_true, num_classes):
    return ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), num_classes)


class _OnClassIndices:
    """Mixin: a Keras metric on one-hot labels and probabilities, fed integer class labels and
    the model's outputs (one sigmoid unit, or a softmax)."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        super().update_state(_one_hot(y_true, self.num_classes), _probabilities(y_pred, self.num_classes),
                             sample_weight)

    def get_config(self):
        return {"num_classes": self.num_classes, "name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="zoo")
class MacroF1(_OnClassIndices, keras.metrics.F1Score):
    """F1 of each class (the predicted class is the most probable one), averaged over classes."""

    def __init__(self, num_classes, name="f1_macro", dtype=None):
        super().__init__(average="macro", threshold=None, name=name, dtype=dtype)
        self.num_classes = int(num_classes)


@keras.saving.register_keras_serializable(package="zoo")
class BalancedAccuracy(keras.metrics.Metric):
    """The recall of each class (present in the labels seen), averaged over classes: scikit-learn's
    `balanced_accuracy_score`."""

    def __init__(self, num_classes, name="balanced_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_classes = int(num_classes)
        self.seen = self.add_variable(shape=(self.num_classes,), initializer="zeros", name="seen")
        self.hits = self.add_variable(shape=(self.num_classes,), initializer="zeros", name="hits")

    def update_state(self, y_true, y_pred, sample_weight=None):
        truth = _one_hot(y_true, self.num_classes)
        predicted = ops.one_hot(ops.argmax(_probabilities(y_pred, self.num_classes), axis=-1), self.num_classes)
        weight = 1.0 if sample_weight is None else ops.reshape(ops.cast(sample_weight, "float32"), (-1, 1))
        self.seen.assign_add(ops.sum(truth * weight, axis=0))
        self.hits.assign_add(ops.sum(truth * predicted * weight, axis=0))

    def result(self):
        present = ops.cast(self.seen > 0, "float32")
        recall = ops.divide_no_nan(self.hits, self.seen)
        return ops.divide_no_nan(ops.sum(recall * present), ops.sum(present))

    def reset_state(self):
        for variable in (self.seen, self.hits):
            variable.assign(ops.zeros_like(variable))

    def get_config(self):
        return {"num_classes": self.num_classes, "name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="zoo")
class MacroAUC(_OnClassIndices, keras.metrics.AUC):
    """ROC AUC of each class against the rest, averaged over classes (one-vs-rest macro AUC)."""

    def __init__(self, num_classes, name="auc", dtype=None):
        super().__init__(multi_label=True, num_labels=int(num_classes), name=name, dtype=dtype)
        self.num_classes = int(num_classes)
