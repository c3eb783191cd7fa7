"""`ZooHyperModel`: a catalog model (or a choice of families) as a Keras Tuner `HyperModel`."""

import keras_tuner as kt
import numpy as np

import zoo
from tuning import space
from tuning.space import FAMILY_HP
from zoo import training
from zoo.errors import InvalidParameterError, unknown_name
from zoo.tasks import CLASSIFICATION_TASKS

TRANSFER_FAMILY = "transfer"  # the pseudo-family of a model built from `transfer`
TRANSFER_PARAMS = ("head_units", "dropout_rate")


class ZooHyperModel(kt.HyperModel):
    """Builds catalog models from their search spaces plus fixed params.

    With several `families`, the family is itself a hyperparameter and each family's space sits
    in a conditional scope on it. Training hyperparameters (optimizer, learning rate) are tuned
    unless fixed in `params` or `tune_training=False`; the batch size is a fit-time
    hyperparameter owned by `fit`.

    `class_weight` ('balanced' or {class: weight}) is computed in `fit` from the labels it is
    given, the training split (or a CV fold's training part) only. `transfer`
    (`{"source": path, "layer": None, "freeze": True, "fine_tune_layers": 0}`) replaces the
    families: each trial cuts the saved model and searches its new head (`transfer_head_units`,
    `transfer_dropout_rate`) and training; with `fine_tune_layers`, the second half of the
    epochs fine-tunes the base's top layers at a tenth of the learning rate.

    `compose` (e.g. `zoo.data.Dataset.compose`) wraps each built catalog model, on
    `input_shape`, in the preprocessing the data needs (layers holding statistics fitted once on
    the training split) and the target unscaling; the wrapped model is compiled as the catalog
    model would be, so every trial trains, and the search returns, a model on raw inputs.

    Example:
        >>> hypermodel = ZooHyperModel(["mlp", "cnn"], input_shape=(8, 8, 1), num_outputs=10,
        ...                            task="multiclass", class_weight="balanced")
    """

    def __init__(self, families, *, input_shape, num_outputs, task, params=None,
                 batch_sizes=(32,), tune_training=True, class_weight=None, class_names=None,
                 transfer=None, compose=None):
        super().__init__(name="zoo")
        self.compose = compose
        if isinstance(families, str):
            families = [families]
        families = list(families)
        self.class_weight = self._check_class_weight(class_weight, task, class_names)
        self.class_names = list(class_names) if class_names else None
        self.input_shape = tuple(input_shape)
        self.num_outputs = num_outputs
        self.task = task
        self.params = dict(params or {})
        self.batch_sizes = list(batch_sizes)
        self.tune_training = tune_training
        self.transfer = None
        if transfer is not None or families == [TRANSFER_FAMILY]:
            self._init_transfer(transfer)
            return
        self.families = space.check_families(families, input_shape=input_shape,
                                             num_outputs=num_outputs, task=task, params=params)

    @staticmethod
    def _check_class_weight(class_weight, task, class_names):
        from zoo.class_weights import check_class_weight, compute_class_weights

        if class_weight is None:
            return None
        check_class_weight(class_weight, field="model.class_weight")
        if task not in CLASSIFICATION_TASKS:
            raise InvalidParameterError(
                f"`model.class_weight` applies to classification tasks. Received: task={task!r}"
            )
        if isinstance(class_weight, dict):  # every named class must exist before any trial runs
            labels = np.arange(len(class_names)) if class_names else np.array(
                [k for k in class_weight if isinstance(k, int) and not isinstance(k, bool)] or [0])
            compute_class_weights(class_weight, labels, class_names=class_names,
                                  field="model.class_weight")
        return class_weight

    def _init_transfer(self, transfer):
        from zoo import transfer as transfer_module

        if transfer is None:
            raise InvalidParameterError(
                f"`model` family '{TRANSFER_FAMILY}' is built from `model.transfer_from`. "
                f"Received: families=['{TRANSFER_FAMILY}'] without transfer settings"
            )
        transfer = {"layer": None, "freeze": True, "fine_tune_layers": 0, **transfer}
        source = transfer_module.load_source(transfer["source"])
        transfer_module.cut(source, transfer["layer"])
        source_shape = tuple(source.inputs[0].shape[1:])
        if source_shape != self.input_shape:
            raise InvalidParameterError(
                f"`model.transfer_from` takes inputs of shape {source_shape}, the data has "
                f"{self.input_shape} (see data.shape). Received: transfer_from={transfer['source']!r}"
            )
        self.families = [TRANSFER_FAMILY]
        self.transfer = transfer
        known = set(training.CONSTRAINTS) | set(TRANSFER_PARAMS)
        for key in self.params:
            if key not in known:
                raise unknown_name("parameter of `model.params` for transfer", key, known)
        transfer_module.transfer_model(source, num_outputs=self.num_outputs, task=self.task,
                                       layer=transfer["layer"],
                                       **{k: v for k, v in self.params.items() if k in TRANSFER_PARAMS})
        training.check_options({k: v for k, v in self.params.items() if k in training.CONSTRAINTS},
                               owner="model.params")

    def _declare_transfer(self, hp):
        params = {}
        if "head_units" not in self.params:
            units = hp.Choice("transfer_head_units", [0, 32, 64, 128], default=0)
            params["head_units"] = (units,) if units else ()
        if "dropout_rate" not in self.params:
            params["dropout_rate"] = hp.Float("transfer_dropout_rate", 0.0, 0.5, step=0.1, default=0.0)
        if self.tune_training:
            params.update(training.training_space(hp, fixed=self.params))
        params.update(self.params)
        return TRANSFER_FAMILY, params

    def declare(self, hp):
        """Register the hyperparameters and return `(family, create_model kwargs)`."""
        if self.transfer:
            return self._declare_transfer(hp)
        return space.declare(hp, self.families, self.params, self.tune_training)

    def declare_hyperparameters(self, hp):
        self.declare(hp)
        if len(self.batch_sizes) > 1:
            hp.Choice("batch_size", self.batch_sizes, default=self.batch_sizes[0])

    def build(self, hp):
        family, params = self.declare(hp)
        if self.transfer:
            from zoo.transfer import transfer_model

            model = transfer_model(self.transfer["source"], num_outputs=self.num_outputs,
                                   task=self.task, layer=self.transfer["layer"],
                                   freeze=self.transfer["freeze"],
                                   **{k: v for k, v in params.items() if k in TRANSFER_PARAMS})
            return training.compile_model(model, task=self.task, **{
                k: v for k, v in params.items() if k in training.CONSTRAINTS})
        model = zoo.create_model(family, input_shape=self.input_shape, num_outputs=self.num_outputs,
                                 task=self.task, compile=self.compose is None, **params)
        if self.compose is None:
            return model
        return training.compile_model(self.compose(model), task=self.task, **{
            k: v for k, v in params.items() if k in training.CONSTRAINTS})

    def fit(self, hp, model, x=None, y=None, **kwargs):
        batch_size = self.batch_sizes[0]
        if len(self.batch_sizes) > 1:
            batch_size = hp.Choice("batch_size", self.batch_sizes, default=self.batch_sizes[0])
        kwargs.setdefault("batch_size", batch_size)
        if self.class_weight is not None:
            from zoo.class_weights import compute_class_weights

            kwargs.setdefault("class_weight", compute_class_weights(
                self.class_weight, y, class_names=self.class_names, field="model.class_weight"))
        if self.transfer and self.transfer["fine_tune_layers"]:
            from zoo.transfer import fit_transfer

            _, params = self.declare(hp)
            epochs = kwargs.pop("epochs", 1)
            # feature extraction first; fine-tuning gets the second half of the epochs
            return fit_transfer(model, x, y, task=self.task, epochs=epochs - epochs // 2,
                                fine_tune_layers=self.transfer["fine_tune_layers"],
                                fine_tune_epochs=epochs // 2,
                                compile_options={k: v for k, v in params.items()
                                                 if k in training.CONSTRAINTS}, **kwargs)
        return model.fit(x, y, **kwargs)

    def family_of(self, hp_values):
        return hp_values.get(FAMILY_HP, self.families[0])
