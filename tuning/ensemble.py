"""An ensemble of trained models as one Keras model: their outputs averaged over a shared input."""

from zoo.errors import InvalidParameterError
from zoo.saving import has_graph
from zoo.tasks import SUPERVISED_TASKS


def check_ensemble_size(ensemble_size, max_trials):
    """Refuse an ensemble of more members than the search runs trials; None skips the check
    (no ensemble, or trials bounded by a time budget alone)."""
    if ensemble_size is None or max_trials is None:
        return
    if ensemble_size > max_trials:
        raise InvalidParameterError(
            f"`search.ensemble_size` must not exceed the trials the search runs "
            f"(max_trials={max_trials}). Received: search.ensemble_size={ensemble_size}"
        )


def ensemble_model(members, *, task, name="ensemble", extra_metrics=()):
    """One Functional model on the members' common raw input that averages their outputs.

    Each member keeps its own preprocessing: the ensemble passes the raw input to every member
    (wrapped as `member_0`, `member_1`, ..., so members built in separate Keras sessions keep
    their layer names) and `keras.layers.Average` combines what they output: the sigmoid or
    softmax probabilities of classification (a soft vote) and the values of regression in the
    target's units. The model is compiled for `task` as a trial's model is (`compile_model`:
    loss and metrics, `extra_metrics` for a search scored by one of them), so `evaluate` reports
    what a trial reports; fitting it would train the members jointly, so refit members first.

    Args:
        members: trained Keras models taking the same inputs (a tensor or a dict of them, the
            same names, shapes and dtypes) and returning one tensor of the same shape; for
            classification, storing the same class names if any. One member is returned as it is.
        task: 'binary', 'multiclass' or 'regression'.
        name: the ensemble's model name.
        extra_metrics: `zoo.training.objective_metrics` of the search's objective.

    Example:
        >>> shipped = ensemble_model([trial_model_1, trial_model_2], task="multiclass")
        >>> shipped.save("best_model.keras")
    """
    members = list(members)
    if task not in SUPERVISED_TASKS:
        raise InvalidParameterError(
            f"`task` of an ensemble must be one of {', '.join(SUPERVISED_TASKS)} (its members' "
            f"outputs are averaged). Received: task={task!r}")
    if not members:
        raise InvalidParameterError("`members` of an ensemble must hold at least one model. Received: []")
    for index, member in enumerate(members):
        _check_single_output(member, index)
    if len(members) == 1:
        return members[0]
    _check_same_signature(members)
    import keras

    from zoo.training import compile_model

    inputs = _new_inputs(members[0])
    outputs = [_wrapped(member, index)(inputs) for index, member in enumerate(members)]
    averaged = keras.layers.Average(name="average")(outputs)
    model = compile_model(keras.Model(inputs, averaged, name=name), task=task,
                          extra_metrics=extra_metrics)
    # a trained model's optimizer holds its slots: one saved without them warns on every load
    model.optimizer.build(model.trainable_variables)
    return model


def _new_inputs(model):
    """Fresh `keras.Input`s in the structure `model` is called with (a dict keeps its keys)."""
    import keras

    def like(tensor, name):
        return keras.Input(tuple(tensor.shape[1:]), dtype=tensor.dtype, name=name)

    if isinstance(model.input, dict):
        return {key: like(tensor, key) for key, tensor in model.input.items()}
    inputs = [like(tensor, tensor.name) for tensor in model.inputs]
    return inputs if isinstance(model.input, (list, tuple)) else inputs[0]


def _wrapped(member, index):
    """The member under its own name, as a Functional model sharing its layers and weights."""
    import keras

    return keras.Model(member.input, member.output, name=f"member_{index}")


def _check_single_output(member, index):
    import keras

    if not isinstance(member, keras.Model) or not has_graph(member):
        raise InvalidParameterError(
            f"`members` of an ensemble must be Functional or Sequential Keras models. Received: "
            f"member {index} of type {type(member).__name__}")
    if isinstance(member.output, dict) or len(member.outputs) != 1:
        raise InvalidParameterError(
            f"`members` of an ensemble must each return one tensor to average. Received: member "
            f"{index} '{member.name}' with outputs {_names(member.outputs)}")


def _check_same_signature(members):
    from zoo.data import class_names_of

    first, first_names = _signature(members[0]), class_names_of(members[0])
    for index, member in enumerate(members[1:], start=1):
        signature = _signature(member)
        if signature != first:
            raise InvalidParameterError(
                f"`members` of an ensemble must take the same inputs and return the same shape. "
                f"Received: member 0 {_describe(first)}, member {index} {_describe(signature)}")
        names = class_names_of(member)
        if names != first_names:
            raise InvalidParameterError(
                f"`members` of an ensemble must store the same class names. Received: member 0 "
                f"{first_names}, member {index} {names}")


def _signature(model):
    """((input key or position, shape, dtype) for each input, output shape): a dict's keys must
    agree, positional inputs may be named differently."""
    structure = model.input
    named = sorted(structure.items()) if isinstance(structure, dict) else enumerate(model.inputs)
    inputs = tuple((key, tuple(tensor.shape[1:]), str(tensor.dtype)) for key, tensor in named)
    return inputs, tuple(model.outputs[0].shape[1:])


def _describe(signature):
    inputs, output = signature
    taken = ", ".join(f"{'input ' if isinstance(key, int) else ''}{key!r} {shape} {dtype}"
                      for key, shape, dtype in inputs)
    return f"takes {taken} and returns {output}"


def _names(tensors):
    return [getattr(tensor, "name", "?") for tensor in tensors]
