"""Training options by name: activations, initializers, regularizers, optimizers, schedules,
losses and metrics per task, and fit-time callbacks. All validated with the catalog's constraints.

Module import does not import Keras; the functions that build Keras objects import it lazily.
"""

from zoo._params import Bool, Int, Options, Real, check_params
from zoo.errors import InvalidParameterError
from zoo.tasks import SUPERVISED_TASKS

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "selu", "swish", "softmax")
INITIALIZERS = {
    "auto": None,
    "he": "he_normal",
    "he_uniform": "he_uniform",
    "glorot": "glorot_uniform",
    "glorot_normal": "glorot_normal",
    "lecun": "lecun_normal",
    "lecun_uniform": "lecun_uniform",
}
INITIALIZER_ALIASES = {"xavier": "glorot", "xavier_normal": "glorot_normal", "lecun_normal": "lecun",
                       "he_normal": "he", "glorot_uniform": "glorot"}
REGULARIZERS = ("none", "l1", "l2", "l1_l2")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
SCHEDULES = ("constant", "step", "exponential", "cosine", "cosine_restarts", "one_cycle")
# Classification metrics compiled only for a search scored by them (`objective_metrics`).
OBJECTIVE_METRICS = ("f1_macro", "balanced_accuracy", "auc")

# Options every builder shares for its layers; builders declare them next to their own.
LAYER_CONSTRAINTS = {
    "activation": Options(ACTIVATIONS),
    "initializer": Options(INITIALIZERS, aliases=INITIALIZER_ALIASES),
    "regularizer": Options(REGULARIZERS, aliases={"elastic_net": "l1_l2"}),
    "regularization": Real(0.0, 1.0),
    "max_norm": Real(0.0, None, closed="neither", allow_none=True),
}

# Compile-time options accepted by `create_model` and `compile_model`.
CONSTRAINTS = {
    "optimizer": Options(OPTIMIZERS),
    "learning_rate": Real(0.0, 10.0, closed="right"),
    "momentum": Real(0.0, 1.0, closed="left"),
    "weight_decay": Real(0.0, 1.0, allow_none=True),
    "schedule": Options(SCHEDULES, aliases={"none": "constant", "cosine_warm_restarts": "cosine_restarts"}),
    "decay_steps": Int(1),
    "decay_rate": Real(0.0, 1.0, closed="neither"),
    "warmup_steps": Int(0),
    "clipnorm": Real(0.0, None, closed="neither", allow_none=True),
    "clipvalue": Real(0.0, None, closed="neither", allow_none=True),
    "label_smoothing": Real(0.0, 1.0, closed="left"),
}
DEFAULTS = {
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "momentum": 0.9,
    "weight_decay": None,
    "schedule": "constant",
    "decay_steps": 1000,
    "decay_rate": 0.5,
    "warmup_steps": 0,
    "clipnorm": None,
    "clipvalue": None,
    "label_smoothing": 0.0,
}

# Fit-time options: callbacks built by `make_callbacks`.
CALLBACK_CONSTRAINTS = {
    "early_stopping": Bool(),
    "patience": Int(0),
    "reduce_on_plateau": Bool(),
    "plateau_factor": Real(0.0, 1.0, closed="neither"),
    "plateau_patience": Int(0),
    "monitor": Options(("val_loss", "loss", "val_accuracy", "accuracy")),
}
CALLBACK_DEFAULTS = {
    "early_stopping": False,
    "patience": 5,
    "reduce_on_plateau": False,
    "plateau_factor": 0.5,
    "plateau_patience": 2,
    "monitor": "val_loss",
}


def check_options(options, *, owner="compile"):
    """Validate compile options; return them merged over the defaults."""
    merged = dict(DEFAULTS)
    merged.update(check_params(owner, CONSTRAINTS, options))
    return merged


# --- layer options -------------------------------------------------------------------------


def initializer_for(activation, initializer):
    """The Keras initializer name; 'auto' pairs SELU with LeCun, ReLU-like with He, else Glorot."""
    if initializer != "auto":
        return INITIALIZERS[initializer]
    if activation == "selu":
        return "lecun_normal"
    if activation in ("relu", "leaky_relu", "prelu", "elu", "swish"):
        return "he_normal"
    return "glorot_uniform"


def make_regularizer(kind, strength):
    """A Keras regularizer (L1, L2 or elastic net L1L2) or None."""
    import keras

    if kind == "none" or strength == 0.0:
        return None
    if kind == "l1":
        return keras.regularizers.L1(strength)
    if kind == "l2":
        return keras.regularizers.L2(strength)
    return keras.regularizers.L1L2(l1=strength, l2=strength)


def make_constraint(max_norm):
    import keras

    return None if max_norm is None else keras.constraints.MaxNorm(max_norm)


def dense_kwargs(*, activation, initializer, regularizer, regularization, max_norm):
    """Keyword arguments for Dense/Conv layers built from the shared layer options."""
    return {
        "kernel_initializer": initializer_for(activation, initializer),
        "kernel_regularizer": make_regularizer(regularizer, regularization),
        "kernel_constraint": make_constraint(max_norm),
    }


def activation_layer(name, *, layer_name):
    """A layer applying a named activation (PReLU has weights, so it is its own layer)."""
    import keras

    if name == "prelu":
        return keras.layers.PReLU(name=layer_name)
    if name == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=0.2, name=layer_name)
    return keras.layers.Activation(name, name=layer_name)


def dropout_layer(rate, *, activation, layer_name):
    """Dropout, or AlphaDropout for SELU networks (it keeps their self-normalization)."""
    import keras

    if activation == "selu":
        return keras.layers.AlphaDropout(rate, name=layer_name)
    return keras.layers.Dropout(rate, name=layer_name)


def output_head(x, *, task, num_outputs, name="head"):
    """The output layer for a task: sigmoid unit, softmax over classes, or linear units."""
    import keras

    # float32 under a mixed precision policy too (zoo.images.mixed_precision): a stable softmax
    if task == "binary":
        return keras.layers.Dense(1, activation="sigmoid", name=name, dtype="float32")(x)
    if task == "multiclass":
        return keras.layers.Dense(num_outputs, activation="softmax", name=name, dtype="float32")(x)
    return keras.layers.Dense(num_outputs, name=name, dtype="float32")(x)


# --- compile -------------------------------------------------------------------------------


def make_schedule(options):
    """The learning rate, constant or a Keras schedule, from validated options."""
    import keras

    from zoo.layers import OneCycleSchedule

    lr, steps = options["learning_rate"], options["decay_steps"]
    kind = options["schedule"]
    schedules = keras.optimizers.schedules
    if kind == "constant":
        return lr
    if kind == "step":
        return schedules.ExponentialDecay(lr, steps, options["decay_rate"], staircase=True)
    if kind == "exponential":
        return schedules.ExponentialDecay(lr, steps, options["decay_rate"])
    if kind == "cosine":
        warmup = options["warmup_steps"]
        if warmup:
            return schedules.CosineDecay(lr / 10.0, steps, warmup_target=lr, warmup_steps=warmup)
        return schedules.CosineDecay(lr, steps)
    if kind == "cosine_restarts":
        return schedules.CosineDecayRestarts(lr, steps)
    return OneCycleSchedule(max_learning_rate=lr, total_steps=steps)


def make_optimizer(options):
    """A Keras optimizer by name, with schedule, clipping and weight decay from options."""
    import keras

    options = check_options(options)
    kwargs = {"learning_rate": make_schedule(options)}
    if options["clipnorm"] is not None:
        kwargs["clipnorm"] = options["clipnorm"]
    if options["clipvalue"] is not None:
        kwargs["clipvalue"] = options["clipvalue"]
    name = options["optimizer"]
    if options["weight_decay"] is not None:
        kwargs["weight_decay"] = options["weight_decay"]
    if name == "sgd":
        return keras.optimizers.SGD(**kwargs)
    if name in ("momentum", "nesterov"):
        return keras.optimizers.SGD(momentum=options["momentum"], nesterov=name == "nesterov", **kwargs)
    if name == "adagrad":
        return keras.optimizers.Adagrad(**kwargs)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(**kwargs)
    if name == "adam":
        return keras.optimizers.Adam(**kwargs)
    return keras.optimizers.AdamW(**kwargs)


def objective_metrics(objective, task):
    """The metrics of OBJECTIVE_METRICS a model must compile with to report `objective`
    (`val_f1_macro` -> ("f1_macro",)); a binary model reports its AUC anyway."""
    name = (objective or "").removeprefix("val_")
    if task not in ("binary", "multiclass") or name not in OBJECTIVE_METRICS:
        return ()
    return () if (task, name) == ("binary", "auc") else (name,)


def _objective_metric(name, num_classes):
    from zoo.layers.metrics import BalancedAccuracy, MacroAUC, MacroF1

    return {"f1_macro": MacroF1, "balanced_accuracy": BalancedAccuracy, "auc": MacroAUC}[name](num_classes)


def loss_and_metrics(task, *, label_smoothing=0.0, extra_metrics=(), num_classes=2):
    """The loss and metrics a supervised task compiles with (labels: integers for classes), plus
    `extra_metrics` of OBJECTIVE_METRICS (`num_classes` classes), computed only when a search is
    scored by them."""
    import keras

    from zoo.layers import SparseCategoricalCrossentropyWithSmoothing

    extra = [_objective_metric(name, num_classes) for name in extra_metrics]
    if task == "binary":
        return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing), [
            keras.metrics.BinaryAccuracy(name="accuracy"),
            keras.metrics.AUC(name="auc"),
        ] + extra
    if task == "multiclass":
        if label_smoothing:
            loss = SparseCategoricalCrossentropyWithSmoothing(label_smoothing=label_smoothing)
        else:
            loss = keras.losses.SparseCategoricalCrossentropy()
        return loss, [keras.metrics.SparseCategoricalAccuracy(name="accuracy")] + extra
    if task == "regression":
        return keras.losses.MeanSquaredError(), [
            keras.metrics.MeanAbsoluteError(name="mae"),
            keras.metrics.RootMeanSquaredError(name="rmse"),
        ]
    raise InvalidParameterError(f"`task` has no default loss. Received: task={task!r}")


def compile_model(model, *, task, extra_metrics=(), **options):
    """Compile `model` for `task` with the named optimizer, schedule and loss options;
    `extra_metrics` (`objective_metrics`) for a search scored by one of them."""
    options = check_options(options, owner="compile")
    if task == "regression" and options["label_smoothing"]:
        raise InvalidParameterError(
            f"`label_smoothing` applies only to classification tasks. Received: task={task!r}"
        )
    if task in SUPERVISED_TASKS:
        num_classes = 2 if task == "binary" else int(model.outputs[0].shape[-1])
        loss, metrics = loss_and_metrics(task, label_smoothing=options["label_smoothing"],
                                         extra_metrics=extra_metrics, num_classes=num_classes)
        model.compile(optimizer=make_optimizer(options), loss=loss, metrics=metrics)
    else:  # models with their own train_step (VAE, GAN, Siamese) own their losses
        model.compile(optimizer=make_optimizer(options))
    return model


# --- fit time ------------------------------------------------------------------------------


def make_callbacks(**options):
    """Early stopping and reduce-on-plateau callbacks from validated options."""
    import keras

    values = dict(CALLBACK_DEFAULTS)
    values.update(check_params("callbacks", CALLBACK_CONSTRAINTS, options))
    callbacks = []
    if values["early_stopping"]:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=values["monitor"], patience=values["patience"], restore_best_weights=True
            )
        )
    if values["reduce_on_plateau"]:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=values["monitor"],
                factor=values["plateau_factor"],
                patience=values["plateau_patience"],
            )
        )
    return callbacks


def training_space(hp, prefix="train", fixed=()):
    """Search space over the optimizer and learning rate (skipping names in `fixed`); defaults
    equal `DEFAULTS`."""
    params = {}
    if "optimizer" not in fixed:
        # adaptive optimizers only: SGD needs learning rates an order of magnitude above this range
        params["optimizer"] = hp.Choice(f"{prefix}_optimizer", ["adam", "adamw", "rmsprop"],
                                        default=DEFAULTS["optimizer"])
    if "learning_rate" not in fixed:
        params["learning_rate"] = hp.Float(f"{prefix}_learning_rate", 3e-4, 1e-2, sampling="log",
                                           default=DEFAULTS["learning_rate"])
    return params
