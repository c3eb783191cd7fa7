"""Transfer learning from a saved `.keras` model: cut it at a layer, attach a new head, train the head
on the frozen base (feature extraction), then unfreeze the base's top layers at a lower learning
rate (fine-tuning); `fine_tune_in_fit` gives a model (a pretrained `backbone`) a `fit` that takes
both steps by itself, so a search's trial trains it as it trains any model."""


from zoo._params import Bool, Int, IntSeq, Real, check_params
from zoo.errors import InvalidParameterError, suggest
from zoo.tasks import SUPERVISED_TASKS

BASE_NAME = "transfer_base"
CONSTRAINTS = {
    "head_units": IntSeq(low=1, high=65536, min_len=0, max_len=8),
    "dropout_rate": Real(0.0, 1.0, closed="left"),
    "freeze": Bool(),
    "fine_tune_layers": Int(0),
    "fine_tune_factor": Real(0.0, 1.0, closed="right"),
}


def load_source(path, *, field="transfer_from"):
    """Load a `.keras` model (safe mode: no Lambda code runs) that has Functional inputs to cut."""
    import keras

    from zoo.saving import load_keras_model

    model = load_keras_model(path, field=field, compile=False)
    # Keras 3 names no public base class for graph models; Sequential wraps a Functional one
    from keras.src.models.functional import Functional

    if not isinstance(model, (Functional, keras.Sequential)) or len(model.inputs) != 1:
        raise InvalidParameterError(
            f"`{field}` must be a Functional or Sequential model with one input (a subclassed model "
            f"has no layer graph to cut). Received: {field}={path!r} ({type(model).__name__})"
        )
    return model


def cut(source, layer=None, *, field="transfer_layer"):
    """The source model up to and including `layer` (default: its penultimate layer), as a
    Functional model named `transfer_base`."""
    import keras

    layers = [item for item in source.layers if not isinstance(item, keras.layers.InputLayer)]
    if layer is None:
        if len(layers) < 2:
            raise InvalidParameterError(
                f"`{field}` default (the penultimate layer) needs a source with 2+ layers. "
                f"Received: a source with {len(layers)} layer(s)"
            )
        chosen = layers[-2]
    else:
        names = [item.name for item in layers]
        if layer not in names:
            raise InvalidParameterError(
                f"`{field}` must name a layer of the source model ({'..., ' if len(names) > 12 else ''}"
                f"{', '.join(names[-12:])}). Received: {field}={layer!r}.{suggest(layer, names)}"
            )
        chosen = source.get_layer(layer)
    return keras.Model(source.inputs, chosen.output, name=BASE_NAME)


def transfer_model(source, *, num_outputs, task, layer=None, head_units=(), dropout_rate=0.0,
                   freeze=True):
    """A new model: the source cut at `layer`, then a new head for `task`.

    Args:
        source: a Keras model, or a path to a `.keras` file.
        num_outputs, task: the new task's head, as in `create_model`.
        layer: where to cut (inclusive); default the penultimate layer (the features the old
            output layer read).
        head_units: hidden Dense layers of the new head (ReLU).
        dropout_rate: dropout before the output layer.
        freeze: start with the base frozen (feature extraction). The base always runs in
            inference mode, so its batch-norm statistics stay those of the source data even when
            fine-tuned (as the Keras transfer-learning guide advises).

    Returns:
        An uncompiled Functional model whose base is the nested model `transfer_base`.

    Example:
        >>> model = transfer_model("digits_0_4.keras", num_outputs=5, task="multiclass")
        >>> history = fit_transfer(model, X, y, task="multiclass", epochs=20, fine_tune_layers=2)
    """
    import keras

    from zoo import training
    from zoo._registry import _check_num_outputs

    options = check_params("transfer_model", CONSTRAINTS,
                           {"head_units": head_units, "dropout_rate": dropout_rate, "freeze": freeze})
    if task not in SUPERVISED_TASKS:
        raise InvalidParameterError(
            f"`task` of `transfer_model` must be one of 'binary', 'multiclass', 'regression'. Received: task={task!r}"
        )
    num_outputs = _check_num_outputs("transfer_model", task, num_outputs)
    if not isinstance(source, keras.Model):
        source = load_source(source)
    else:  # the new model must not share (and fine-tune) the caller's layers
        weights = source.get_weights()
        source = keras.models.clone_model(source)
        source.set_weights(weights)
    base = cut(source, layer)
    base.trainable = not options["freeze"]
    inputs = keras.Input(shape=tuple(source.inputs[0].shape[1:]), name="inputs")
    x = base(inputs, training=False)
    if len(x.shape) == 4:
        x = keras.layers.GlobalAveragePooling2D(name="transfer_pool")(x)
    elif len(x.shape) > 2:
        x = keras.layers.Flatten(name="transfer_flatten")(x)
    for index, units in enumerate(options["head_units"]):
        x = keras.layers.Dense(units, activation="relu", name=f"transfer_head_{index + 1}")(x)
    if options["dropout_rate"]:
        x = keras.layers.Dropout(options["dropout_rate"], name="transfer_drop")(x)
    outputs = training.output_head(x, task=task, num_outputs=num_outputs)
    return keras.Model(inputs, outputs, name="transfer")


def base_of(model):
    """The layer named `transfer_base` of `model`, or of a model nested in it."""
    for layer in model.layers:
        if layer.name == BASE_NAME:
            return layer
    for layer in model.layers:
        if hasattr(layer, "layers"):
            try:
                return base_of(layer)
            except ValueError:
                continue
    raise ValueError(f"model {model.name!r} holds no layer {BASE_NAME!r}")


def unfreeze_top(model, layers):
    """Make the top `layers` weighted layers of the base trainable (all of them when `layers`
    exceeds their count), except batch normalization, which stays frozen; the rest stay frozen.
    Returns the names of the layers made trainable. Recompile afterwards."""
    import keras

    base = base_of(model)
    base.trainable = True
    weighted = [item for item in base.layers if item.weights]
    chosen = weighted[len(weighted) - min(layers, len(weighted)):] if layers else []
    for item in base.layers:
        item.trainable = item in chosen and not isinstance(item, keras.layers.BatchNormalization)
    return [item.name for item in chosen if item.trainable]


def fit_transfer(model, x, y, *, task, epochs, fine_tune_layers=0, fine_tune_epochs=None,
                 fine_tune_factor=0.1, compile_options=None, **fit_kwargs):
    """Feature extraction for `epochs`, then (if `fine_tune_layers`) fine-tuning of the base's
    top layers for `fine_tune_epochs` (default `epochs`) at `fine_tune_factor` × the learning
    rate. Compiles the model for each phase with `compile_options` (optimizer, learning_rate...).

    Returns:
        A `keras.callbacks.History` holding both phases' epochs.
    """

    from zoo import training

    options = check_params("fit_transfer", CONSTRAINTS, {"fine_tune_layers": fine_tune_layers,
                                                         "fine_tune_factor": fine_tune_factor})
    compile_options = training.check_options(dict(compile_options or {}), owner="fit_transfer")
    training.compile_model(model, task=task, **compile_options)
    history = model.fit(x, y, epochs=epochs, **fit_kwargs)
    fine_tune_epochs = epochs if fine_tune_epochs is None else fine_tune_epochs
    if not options["fine_tune_layers"] or not fine_tune_epochs:
        return history
    unfreeze_top(model, options["fine_tune_layers"])
    lower = dict(compile_options, learning_rate=compile_options["learning_rate"] * options["fine_tune_factor"])
    training.compile_model(model, task=task, **lower)
    tuned = model.fit(x, y, epochs=len(history.epoch) + fine_tune_epochs,
                      initial_epoch=len(history.epoch), **fit_kwargs)
    return _merged(model, history, tuned)


def _merged(model, history, tuned):
    """One `History` of two fits' epochs, the first's in front."""
    import keras

    if history is None:
        return tuned
    merged = keras.callbacks.History()
    merged.set_model(model)
    merged.epoch = history.epoch + tuned.epoch
    merged.history = {key: history.history.get(key, []) + tuned.history.get(key, [])
                      for key in dict.fromkeys(list(history.history) + list(tuned.history))}
    return merged


def fine_tune_in_fit(model, *, fine_tune_layers, fine_tune_factor=0.1):
    """Give `model` (holding a frozen `transfer_base`) a `fit` that trains on the frozen base for
    the first half of its epochs (the first `epochs - epochs // 2`), then unfreezes the base's top
    `fine_tune_layers` weighted layers (`unfreeze_top`) and goes on at `fine_tune_factor` x the
    compiled learning rate, as `fit_transfer` does; each `fit` starts frozen again at the compiled
    rate. It stops after the frozen phase when a callback stopped training. Only this Python object
    changes: the model saves and exports as the plain Functional model it is (`carry_fine_tuning`
    passes the setting on to a model composed around it). Returns `model`."""
    options = check_params("fine_tune_in_fit", CONSTRAINTS, {"fine_tune_layers": fine_tune_layers,
                                                             "fine_tune_factor": fine_tune_factor})
    plain_fit = model.fit
    settings = {"fine_tune_layers": options["fine_tune_layers"],
                "fine_tune_factor": options["fine_tune_factor"]}
    state = {"compiled": None}

    def fit(x=None, y=None, *, epochs=1, initial_epoch=0, **kwargs):
        base = base_of(model)
        if state["compiled"] is not None:  # a later fit starts frozen, at the compiled rate again
            base.trainable = False
            model.compile_from_config(state["compiled"])
        switch = epochs - epochs // 2
        history = None
        if initial_epoch < switch:
            history = plain_fit(x, y, epochs=switch, initial_epoch=initial_epoch, **kwargs)
            if model.stop_training or switch >= epochs:
                return history
        state["compiled"] = model.get_compile_config()
        unfreeze_top(model, settings["fine_tune_layers"])
        model.compile_from_config(_slower(state["compiled"], settings["fine_tune_factor"]))
        tuned = plain_fit(x, y, epochs=epochs, initial_epoch=max(initial_epoch, switch), **kwargs)
        return _merged(model, history, tuned)

    model.fit = fit
    model.fine_tuning = settings
    return model


def carry_fine_tuning(core, model):
    """`model` (composed around `core`) fine-tuned in its `fit` as `core` is, if it is."""
    settings = getattr(core, "fine_tuning", None)
    return fine_tune_in_fit(model, **settings) if settings else model


def _slower(compile_config, factor):
    """A compile config whose optimizer's learning rate (a number, or a schedule's rates) is
    `factor` x the original."""
    import copy

    config = copy.deepcopy(compile_config)
    optimizer = config["optimizer"]["config"]
    rate = optimizer["learning_rate"]
    if isinstance(rate, dict):  # a serialized schedule: its rates scaled
        rate["config"] = {key: value * factor if key.endswith("learning_rate") and isinstance(value, float)
                          else value for key, value in rate["config"].items()}
    else:
        optimizer["learning_rate"] = float(rate) * factor
    return config
