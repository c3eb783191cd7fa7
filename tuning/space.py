"""The search space of catalog families, without Keras Tuner: checks and declarations that run
on any `HyperParameters`-like object (Keras Tuner's, or `zoo._space.SpaceRecorder`), so a
search refuses bad settings before TensorFlow is imported."""

import inspect

import zoo
from zoo import training
from zoo._space import SpaceRecorder
from zoo.errors import InvalidParameterError, unknown_name

FAMILY_HP = "family"


# the families searched when the user names none, by the rank of a sample: a table's row, a
# series window (steps, features), an image (height, width, channels)
FAMILIES_BY_RANK = {1: ("mlp",), 2: ("gru",), 3: ("cnn",)}


def families_for(data):
    """The families that suit the data when the config's `model` section names none."""
    shape = tuple(getattr(data, "feature_shape", None) or data.input_shape)
    families = FAMILIES_BY_RANK.get(len(shape))
    if families is None:
        raise InvalidParameterError(
            f"`model.families` must be given for inputs of shape {shape}: no family is chosen for "
            f"them by default. Received: model.families=None")
    return list(families)


def check_families(families, *, input_shape, num_outputs, task, params):
    """Validate a family list and its fixed params for the data; return the list."""
    families = [families] if isinstance(families, str) else list(families)
    for family in families:
        if task not in zoo.get_spec(family).tasks:  # unknown names get the did-you-mean error
            raise InvalidParameterError(
                f"`model.families` entry '{family}' does not support task '{task}'. "
                f"Received: families={families}"
            )
    if len(set(families)) != len(families):
        raise InvalidParameterError(f"`model.families` has duplicates. Received: families={families}")
    params = dict(params or {})
    for family in families:
        own = {k: v for k, v in params.items()
               if k in zoo.get_spec(family).constraints or k in training.CONSTRAINTS}
        zoo._registry.check_build_args(family, input_shape=tuple(input_shape),
                                       num_outputs=num_outputs, task=task, **own)
    known = set(training.CONSTRAINTS).union(*(zoo.get_spec(f).constraints for f in families))
    for key in params:
        if key not in known:
            raise unknown_name(f"parameter of `model.params` for {', '.join(families)}", key, known)
    return families


def declare(hp, families, params, tune_training, input_shape=None):
    """Register a trial's hyperparameters; return `(family, create_model kwargs)`.

    With several families the family is a hyperparameter and each family's space sits in a
    conditional scope on it; fixed `params` override the space. A family's space that takes an
    `input_shape` keyword (the transformer's patch size, on images) is given the catalog model's.
    """
    family = families[0]
    if len(families) > 1:
        family = hp.Choice(FAMILY_HP, families, default=families[0])
    spec = zoo.get_spec(family)
    shaped = {"input_shape": tuple(input_shape)} if input_shape is not None and "input_shape" in (
        inspect.signature(spec.space).parameters) else {}
    if len(families) > 1:
        with hp.conditional_scope(FAMILY_HP, [family]):
            values = spec.space(hp, family, **shaped)
    else:
        values = spec.space(hp, family, **shaped)
    if tune_training:
        values.update(training.training_space(hp, fixed=params))
    values.update({k: v for k, v in params.items()
                   if k in spec.constraints or k in training.CONSTRAINTS})
    return family, values


def check_grid(families, params, tune_training):
    """Grid search enumerates values: every float hyperparameter needs a step."""
    for family in families:
        recorder = SpaceRecorder()
        declare(recorder, [family], dict(params or {}), tune_training)
        for entry in recorder.entries:
            if entry["type"] == "float" and "step" not in entry:
                raise continuous_error(entry["name"])


def continuous_error(name):
    return InvalidParameterError(
        f"`search.algorithm` 'grid' needs a step for every float hyperparameter; '{name}' is "
        f"continuous (fix it in model.params, or use another algorithm). "
        f"Received: search.algorithm='grid'")
