"""Helpers for search spaces: variable-length integer lists, and a recorder that describes a
space without Keras Tuner (for `zoo show`, which must not import TensorFlow)."""

import contextlib


def int_list(hp, name, *, default, max_len, min_value, max_value, step=None, sampling="linear"):
    """Tune a list of integers (widths, filters, blocks): its length, then each item.

    Item `i` sits in a conditional scope on the length, so it is only registered where it acts.
    Defaults reproduce `default`.
    """
    default = tuple(default)
    length = hp.Int(f"{name}_count", 1, max_len, default=len(default))
    values = []
    for index in range(max_len):
        with hp.conditional_scope(f"{name}_count", list(range(index + 1, max_len + 1))):
            item_default = default[index] if index < len(default) else default[-1]
            value = hp.Int(f"{name}_{index}", min_value, max_value, step=step, sampling=sampling,
                           default=item_default)
        if index < length:
            values.append(value)
    return tuple(values)


class SpaceRecorder:
    """Quacks like `keras_tuner.HyperParameters` enough to run a space function; returns each
    hyperparameter's default and records what it saw."""

    def __init__(self):
        self.entries = []
        self._conditions = []

    def _record(self, kind, name, default, **details):
        entry = {"name": name, "type": kind, "default": default}
        entry.update({k: v for k, v in details.items() if v is not None})
        if self._conditions:
            entry["when"] = " and ".join(f"{p} in {v}" for p, v in self._conditions)
        self.entries.append(entry)
        return default

    def Int(self, name, min_value, max_value, step=None, sampling="linear", default=None, **_):
        return self._record("int", name, default, min=min_value, max=max_value, step=step,
                            sampling=sampling if sampling != "linear" else None)

    def Float(self, name, min_value, max_value, step=None, sampling="linear", default=None, **_):
        return self._record("float", name, default, min=min_value, max=max_value, step=step,
                            sampling=sampling if sampling != "linear" else None)

    def Choice(self, name, values, ordered=None, default=None, **_):
        return self._record("choice", name, default, values=list(values))

    def Boolean(self, name, default=False, **_):
        return self._record("boolean", name, default)

    def Fixed(self, name, value, **_):
        return self._record("fixed", name, value)

    @contextlib.contextmanager
    def conditional_scope(self, parent_name, parent_values):
        self._conditions.append((parent_name, list(parent_values)))
        try:
            yield
        finally:
            self._conditions.pop()


def describe_space(spec):
    """The hyperparameters of a model's search space, as a list of dicts."""
    recorder = SpaceRecorder()
    spec.space(recorder, spec.name)
    return recorder.entries
