"""Parameter constraints declared as data; one checker and one message format for all of them.

Each constraint knows how to check a value, how to describe itself for `zoo show`, and which
values it must refuse (the bad-argument tests are generated from these).
"""

import math
import numbers

from zoo.errors import InvalidParameterError, InvalidTypeError, suggest, unknown_name


def _fmt(value):
    return repr(value) if isinstance(value, str) else str(value)


class Constraint:
    """Base class: `check(value)` returns the normalized value or raises."""

    description = ""
    invalid_examples = ()

    def check(self, value, *, param, owner):
        raise NotImplementedError

    def fail(self, value, *, param, owner, error=InvalidParameterError):
        return error(
            f"`{param}` of `{owner}` must be {self.description}. Received: {param}={_fmt(value)}"
        )


class Real(Constraint):
    """A float in an interval; `closed` is one of 'both', 'left', 'right', 'neither'."""

    def __init__(self, low=None, high=None, closed="both", allow_none=False):
        self.low, self.high, self.closed, self.allow_none = low, high, closed, allow_none
        left = "[" if closed in ("both", "left") else "("
        right = "]" if closed in ("both", "right") else ")"
        lo = "-inf" if low is None else _fmt(low)
        hi = "inf" if high is None else _fmt(high)
        self.description = f"a float in {left}{lo}, {hi}{right}" + (" or None" if allow_none else "")
        bad = ["high", float("nan")]
        if low is not None:
            bad.append(low - 1.0 if closed in ("both", "left") else low)
        if high is not None:
            bad.append(high + 1.0 if closed in ("both", "right") else high)
        self.invalid_examples = tuple(bad)

    def _in_range(self, value):
        if math.isnan(value):
            return False
        if self.low is not None:
            if value < self.low or (value == self.low and self.closed in ("right", "neither")):
                return False
        if self.high is not None:
            if value > self.high or (value == self.high and self.closed in ("left", "neither")):
                return False
        return True

    def check(self, value, *, param, owner):
        if value is None and self.allow_none:
            return None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise self.fail(value, param=param, owner=owner, error=InvalidTypeError)
        if not self._in_range(float(value)):
            raise self.fail(value, param=param, owner=owner)
        return float(value)


class Int(Constraint):
    """An integer in a closed interval."""

    def __init__(self, low=None, high=None, allow_none=False):
        self.low, self.high, self.allow_none = low, high, allow_none
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        self.description = f"an integer in [{lo}, {hi}]" + (" or None" if allow_none else "")
        bad = [1.5, "3"]
        if low is not None:
            bad.append(low - 1)
        if high is not None:
            bad.append(high + 1)
        self.invalid_examples = tuple(bad)

    def check(self, value, *, param, owner):
        if value is None and self.allow_none:
            return None
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise self.fail(value, param=param, owner=owner, error=InvalidTypeError)
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise self.fail(value, param=param, owner=owner)
        return int(value)


class IntSeq(Constraint):
    """A non-empty list or tuple of integers, each in [low, high]; a single int is one element."""

    def __init__(self, low=1, high=None, min_len=1, max_len=None):
        self.item = Int(low, high)
        self.min_len, self.max_len = min_len, max_len
        size = f"{min_len}+" if max_len is None else f"{min_len} to {max_len}"
        self.description = f"a list of {size} integers in [{low}, {high if high else 'inf'}]"
        bad = [(low - 1,), ("a",), "64"]
        if min_len >= 1:
            bad.append(())
        if max_len is not None:
            bad.append((low,) * (max_len + 1))
        self.invalid_examples = tuple(bad)

    def check(self, value, *, param, owner):
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = (value,)
        if not isinstance(value, (list, tuple)):
            raise self.fail(value, param=param, owner=owner, error=InvalidTypeError)
        if len(value) < self.min_len or (self.max_len is not None and len(value) > self.max_len):
            raise self.fail(value, param=param, owner=owner)
        for item in value:
            if isinstance(item, bool) or not isinstance(item, numbers.Integral):
                raise self.fail(value, param=param, owner=owner, error=InvalidTypeError)
            if item < self.item.low or (self.item.high is not None and item > self.item.high):
                raise self.fail(value, param=param, owner=owner)
        return tuple(int(v) for v in value)


class Bool(Constraint):
    description = "a bool"
    invalid_examples = ("yes", 1)

    def check(self, value, *, param, owner):
        if not isinstance(value, bool):
            raise self.fail(value, param=param, owner=owner, error=InvalidTypeError)
        return value


class Options(Constraint):
    """One of a fixed set of names; aliases map to their canonical name."""

    def __init__(self, options, aliases=None, allow_none=False):
        self.options = tuple(options)
        self.aliases = dict(aliases or {})
        self.allow_none = allow_none
        self.description = "one of " + ", ".join(repr(o) for o in self.options)
        if allow_none:
            self.description += " or None"
        self.invalid_examples = ("no_such_option", 3)

    def check(self, value, *, param, owner):
        if value is None and self.allow_none:
            return None
        if not isinstance(value, str):
            raise self.fail(value, param=param, owner=owner, error=InvalidTypeError)
        key = value.lower()
        if key in self.aliases:
            return self.aliases[key]
        if key in self.options:
            return key
        hint = suggest(value, set(self.options) | set(self.aliases))
        raise InvalidParameterError(
            f"`{param}` of `{owner}` must be {self.description}. Received: {param}={_fmt(value)}"
            + (f".{hint}" if hint else "")
        )


def check_params(owner, constraints, values):
    """Check every value against its constraint; unknown names get a did-you-mean error."""
    checked = {}
    for name, value in values.items():
        if name not in constraints:
            raise unknown_name(f"parameter of `{owner}`", name, constraints)
        checked[name] = constraints[name].check(value, param=name, owner=owner)
    return checked
