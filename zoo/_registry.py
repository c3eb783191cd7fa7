"""The catalog registry: `register`, `list_models`, `get_spec`, `create_model`.

Importing this module does not import TensorFlow; `create_model` imports Keras when called.
"""

import dataclasses
import fnmatch
import functools
import inspect
import types

from zoo._params import check_params
from zoo.errors import InvalidParameterError, InvalidTypeError, unknown_name


# Tasks a head can be built for, with whether they need `num_outputs` from the caller.

_REGISTRY = {}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the catalog knows about one registered model."""

    name: str
    builder: object
    tasks: tuple
    input_kind: str
    input_ranks: tuple
    example_input_shape: tuple
    space: object
    constraints: types.MappingProxyType
    defaults: types.MappingProxyType
    summary: str

    @property
    def default_task(self):
        return self.tasks[0]


def register(name, *, tasks, input_kind, example_input_shape, space, constraints, input_ranks=None):
    """Register a builder under `name`; a duplicate name is an error.

    The builder takes keyword-only `input_shape`, `num_outputs`, `task` and the parameters
    declared in `constraints`, each with a default in its signature.
    """

    def decorator(builder):
        if name in _REGISTRY:
            raise ValueError(f"Model '{name}' is already registered by {_REGISTRY[name].builder}.")
        signature = inspect.signature(builder)
        defaults = {
            p.name: p.default
            for p in signature.parameters.values()
            if p.name not in ("input_shape", "num_outputs", "task")
        }
        missing = set(defaults) ^ set(constraints)
        if missing:
            raise ValueError(f"Builder `{name}` parameters and constraints differ: {sorted(missing)}")
        if any(d is inspect.Parameter.empty for d in defaults.values()):
            raise ValueError(f"Every parameter of builder `{name}` needs a default.")
        doc = inspect.getdoc(builder) or ""
        _REGISTRY[name] = ModelSpec(
            name=name,
            builder=builder,
            tasks=tuple(tasks),
            input_kind=input_kind,
            input_ranks=tuple(input_ranks or (len(example_input_shape),)),
            example_input_shape=tuple(example_input_shape),
            space=space,
            constraints=types.MappingProxyType(dict(constraints)),
            defaults=types.MappingProxyType(defaults),
            summary=doc.splitlines()[0] if doc else "",
        )

        @functools.wraps(builder)
        def validated(*, input_shape, num_outputs=None, task=None, **params):
            return create_model(name, input_shape=input_shape, num_outputs=num_outputs, task=task,
                                compile=False, **params)

        return validated

    return decorator


def list_models(pattern="*", *, task=None):
    """Sorted names of registered models matching an fnmatch `pattern`, optionally by task."""
    names = sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))
    if task is not None:
        names = [n for n in names if task in _REGISTRY[n].tasks]
    return names


def get_spec(name):
    """The `ModelSpec` of a registered model; an unknown name gets a did-you-mean error."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise unknown_name("model", name, _REGISTRY, hint="See `zoo list`.")
    return _REGISTRY[name]


def check_build_args(name, *, input_shape, num_outputs=None, task=None, **params):
    """Validate everything `create_model` receives; return (spec, task, num_outputs, params).

    Parameters that are not the builder's own are training options (optimizer, schedule...).
    """
    from zoo import training

    spec = get_spec(name)
    if task is None:
        task = spec.default_task
    if task not in spec.tasks:
        raise InvalidParameterError(
            f"`task` of `{name}` must be one of {', '.join(repr(t) for t in spec.tasks)}. "
            f"Received: task={task!r}"
        )
    if isinstance(input_shape, int):
        input_shape = (input_shape,)
    if not isinstance(input_shape, (tuple, list)) or not all(
        (isinstance(d, int) and not isinstance(d, bool) and d >= 1) or d is None for d in input_shape
    ):
        raise InvalidTypeError(
            f"`input_shape` of `{name}` must be a tuple of positive integers (no batch dimension). "
            f"Received: input_shape={input_shape!r}"
        )
    input_shape = tuple(input_shape)
    if len(input_shape) not in spec.input_ranks:
        ranks = " or ".join(str(r) for r in spec.input_ranks)
        raise InvalidParameterError(
            f"`input_shape` of `{name}` must have rank {ranks} ({spec.input_kind} input, no batch "
            f"dimension), e.g. {spec.example_input_shape}. Received: input_shape={input_shape}"
        )
    num_outputs = _check_num_outputs(name, task, num_outputs)
    for key in params:
        if key not in spec.constraints and key not in training.CONSTRAINTS:
            known = list(spec.constraints) + list(training.CONSTRAINTS)
            raise unknown_name(f"parameter of `{name}`", key, known, hint="See `zoo show " + name + "`.")
    builder_params = dict(spec.defaults)
    builder_params.update({k: v for k, v in params.items() if k in spec.constraints})
    builder_params = check_params(name, spec.constraints, builder_params)
    training_params = training.check_options(
        {k: v for k, v in params.items() if k not in spec.constraints}, owner=name
    )
    return spec, task, num_outputs, builder_params, training_params


def _check_num_outputs(name, task, num_outputs):
    if task == "binary":
        if num_outputs not in (None, 1, 2):
            raise InvalidParameterError(
                f"`num_outputs` of `{name}` must be 1 or 2 (or None) for task 'binary'. "
                f"Received: num_outputs={num_outputs!r}"
            )
        return 1
    if num_outputs is None:
        if task == "multiclass":
            raise InvalidParameterError(
                f"`num_outputs` of `{name}` is required for task 'multiclass' (the number of "
                f"classes). Received: num_outputs=None"
            )
        return 1 if task == "regression" else None
    if isinstance(num_outputs, bool) or not isinstance(num_outputs, int) or num_outputs < 1:
        raise InvalidParameterError(
            f"`num_outputs` of `{name}` must be an integer >= 1. Received: num_outputs={num_outputs!r}"
        )
    if task == "multiclass" and num_outputs < 2:
        raise InvalidParameterError(
            f"`num_outputs` of `{name}` must be >= 2 for task 'multiclass'. "
            f"Received: num_outputs={num_outputs!r}"
        )
    return num_outputs


def create_model(name, *, input_shape, num_outputs=None, task=None, compile=True, **params):
    """Build a catalog model by name; compile it for its task unless `compile=False`.

    Example:
        >>> import zoo
        >>> model = zoo.create_model("cnn", input_shape=(8, 8, 1), num_outputs=10)
    """
    from zoo import training

    spec, task, num_outputs, builder_params, training_params = check_build_args(
        name, input_shape=input_shape, num_outputs=num_outputs, task=task, **params
    )
    model = spec.builder(input_shape=tuple(input_shape), num_outputs=num_outputs, task=task, **builder_params)
    if compile:
        training.compile_model(model, task=task, **training_params)
    return model
