"""`ZooHyperModel`: a catalog model (or a choice of families) as a Keras Tuner `HyperModel`."""

import math

import keras
import keras_tuner as kt
import numpy as np

import zoo
from tuning import space
from tuning.options import TRANSFER_FAMILY  # the pseudo-family of a model built from `transfer`
from tuning.space import FAMILY_HP
from zoo import training
from zoo._space import SpaceRecorder
from zoo.errors import InvalidParameterError, unknown_name
from zoo.tasks import CLASSIFICATION_TASKS

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

    On a table (`compose` of a Dataset with a `TabularPreprocessor`) a trial also searches its
    features (`zoo.preprocessing.feature_space`: scaling, periodic embeddings of numbers,
    embeddings of categories), the table recipe's training (`zoo.models.mlp.table_training_space`:
    weight decay, the learning rate's anneal, label smoothing, class weights), and the mlp's
    default point is `zoo.models.mlp.TABLE_DEFAULTS` (RealMLP's defaults). `objective` (e.g.
    "val_f1_macro") compiles in the metric it names when the task does not report it anyway.
    `fixed` holds hyperparameters at a value ({name: value}; True: every one at its default, the
    default point alone), e.g. to measure what a searched technique buys.

    Example:
        >>> hypermodel = ZooHyperModel(["mlp", "cnn"], input_shape=(8, 8, 1), num_outputs=10,
        ...                            task="multiclass", class_weight="balanced")
    """

    def __init__(self, families, *, input_shape, num_outputs, task, params=None,
                 batch_sizes=(32,), tune_training=True, class_weight=None, class_names=None,
                 transfer=None, compose=None, objective=None, fixed=None):
        super().__init__(name="zoo")
        self.compose = compose
        self.fixed = fixed
        self.extra_metrics = training.objective_metrics(objective, task)
        self.table = None if transfer is not None else _table_of(compose)
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
        # fixed builder params must fit the data before anything is written: a backbone's weights
        # file, a patch size or a depth the images' size cannot take (tried on one model)
        for family in self.families:
            own = {k: v for k, v in self.params.items() if k in zoo.get_spec(family).constraints}
            if own:
                zoo.create_model(family, input_shape=self.input_shape, num_outputs=num_outputs,
                                 task=task, compile=False, **own)

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
        declared = space.declare(self._declaring(hp), self.families, self.params, self.tune_training,
                                 input_shape=self.input_shape)
        if self.table is not None:
            self.table_choices(hp)
        return declared

    def _declaring(self, hp):
        """`hp` declaring with a table's default point and the `fixed` values."""
        from zoo.models.mlp import TABLE_DEFAULTS

        defaults = TABLE_DEFAULTS if self.table is not None else {}
        return _Declared(hp, defaults, self.fixed) if defaults or self.fixed else hp

    def table_choices(self, hp):
        """A table's `(FeatureOptions, training choices)` for `hp` (registering them): the training
        choices are searched with the training space (their defaults stand with tune_training off)."""
        from zoo.models.mlp import table_training_space
        from zoo.preprocessing import feature_space

        hp = self._declaring(hp)
        features = feature_space(hp)
        choices = table_training_space(hp if self.tune_training else SpaceRecorder(), task=self.task,
                                       fixed=set(self.params) | ({"class_weight"} if self.class_weight else set()))
        return features, choices

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
        input_shape, compose = self.input_shape, self.compose
        if self.table is not None:
            features, choices = self.table_choices(hp)
            params.update({k: v for k, v in choices.items() if k in training.CONSTRAINTS})
            input_shape, compose = self._table_composer(features)
        from zoo.images import mixed_precision

        own_compile = compose is None and not self.extra_metrics
        with mixed_precision(compose):  # mixed_float16 for image models when a GPU is present
            model = zoo.create_model(family, input_shape=input_shape, num_outputs=self.num_outputs,
                                     task=self.task, compile=own_compile, **params)
            if own_compile:
                return model
            return training.compile_model(compose(model) if compose else model, task=self.task,
                                          extra_metrics=self.extra_metrics,
                                          **{k: v for k, v in params.items() if k in training.CONSTRAINTS})

    def _table_composer(self, features):
        """(the catalog model's input shape, compose) for a trial's FeatureOptions."""
        from zoo.data import compose_model

        data = self.table
        preprocessor = data.preprocessor.with_options(features)

        def compose(core):
            return compose_model(core, input_shape=data.input_shape, preprocessor=preprocessor,
                                 target_stats=data.target_stats, class_names=data.class_names)

        return preprocessor.feature_shape, compose

    def fit(self, hp, model, x=None, y=None, **kwargs):
        batch_size = self.batch_sizes[0]
        if len(self.batch_sizes) > 1:
            batch_size = hp.Choice("batch_size", self.batch_sizes, default=self.batch_sizes[0])
        kwargs.setdefault("batch_size", batch_size)
        if self.table is not None:
            _, choices = self.table_choices(hp)
            if choices.get("class_weight") == "balanced":
                from zoo.class_weights import compute_class_weights

                kwargs.setdefault("class_weight", compute_class_weights("balanced", y))
            if choices.get("anneal", "none") != "none":
                kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), AnnealLearningRate(choices["anneal"])]
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
        if hasattr(x, "batched"):  # images streamed from disk: the split batches and weighs itself
            x, y = x.batched(kwargs.pop("batch_size"), class_weight=kwargs.pop("class_weight", None)), None
        return model.fit(x, y, **kwargs)

    def family_of(self, hp_values):
        return hp_values.get(FAMILY_HP, self.families[0])


def _table_of(compose):
    """The Dataset behind `compose` (a bound `Dataset.compose`) when it holds a table, else None."""
    from zoo.preprocessing import TabularPreprocessor

    data = getattr(compose, "__self__", None)
    return data if isinstance(getattr(data, "preprocessor", None), TabularPreprocessor) else None


class _Declared:
    """A `HyperParameters` whose hyperparameters named in `defaults` are declared with those
    defaults instead (same ranges: a family's space with another default point), and those in
    `fixed` (True: all) declared `Fixed` at their value (or default)."""

    def __init__(self, hp, defaults, fixed=None):
        self._hp, self._defaults, self._fixed = hp, defaults, fixed

    def __getattr__(self, name):
        return getattr(self._hp, name)

    def _declare(self, kind, name, *args, **kwargs):
        if name in self._defaults:
            kwargs["default"] = self._defaults[name]
        if self._fixed is True or (self._fixed and name in self._fixed):
            value = kwargs["default"] if self._fixed is True else self._fixed[name]
            return self._hp.Fixed(name, value)
        return getattr(self._hp, kind)(name, *args, **kwargs)

    def Int(self, name, *args, **kwargs):
        return self._declare("Int", name, *args, **kwargs)

    def Float(self, name, *args, **kwargs):
        return self._declare("Float", name, *args, **kwargs)

    def Choice(self, name, *args, **kwargs):
        return self._declare("Choice", name, *args, **kwargs)

    def Boolean(self, name, *args, **kwargs):
        return self._declare("Boolean", name, *args, **kwargs)


class AnnealLearningRate(keras.callbacks.Callback):
    """The learning rate over the fit's steps: "cosine" from the optimizer's rate down to 0, or
    "flat_cosine" (RealMLP's flat_cos) at that rate for the first half, then cosine down to 0.
    The rate is the optimizer's again when the fit ends (what a saved model's config holds)."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self._base = self._epoch = None

    def on_train_begin(self, logs=None):
        self._base = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        steps, epochs = self.params.get("steps") or 1, self.params.get("epochs") or 1
        self.model.optimizer.learning_rate = self._base * anneal_factor(
            self.kind, (self._epoch * steps + batch) / (epochs * steps))

    def on_train_end(self, logs=None):
        self.model.optimizer.learning_rate = self._base


def anneal_factor(kind, progress):
    """The share of the base learning rate at `progress` (0 to 1) of a fit."""
    if kind == "flat_cosine":
        progress = max(0.0, 2.0 * progress - 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))) if kind != "none" else 1.0
