"""Column types of a data frame: schema inference, overrides and raw model inputs (no TensorFlow)."""

import collections.abc
import dataclasses
import re

import numpy as np

from zoo.errors import InvalidParameterError, suggest

KINDS = ("numeric", "categorical", "boolean", "datetime", "drop")
DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y/%m/%d",
    "%d/%m/%Y",
    "%m/%d/%Y",
)
# What a datetime column becomes in the features (DaysToCalendar's outputs per column, in order).
CALENDAR_PARTS = ("days", "year", "month", "day", "weekday")
# pandas datetime64 columns become strings in this format (one of DATE_FORMATS).
DATETIME64_FORMAT = "%Y-%m-%d %H:%M:%S"
TRUE_WORDS = ("true", "yes")
FALSE_WORDS = ("false", "no")

INFERRED_SHARE = 0.95  # share of non-missing strings that must parse for inference to pick a kind
OVERRIDE_SHARE = 0.5  # share that must parse for a user's override to apply
MAX_CODED_VALUES = 10  # integer-valued numeric columns with at most this many values are categorical
ID_MIN_DISTINCT = 20  # string columns with more distinct values than this...
ID_SHARE = 0.5  # ...and than this share of rows are id-like and dropped
# A categorical column keeps its most frequent MAX_CATEGORIES training values (ties in value order);
# the rarer ones share the out-of-vocabulary slot with values never seen, so a column of thousands
# of distinct strings is no thousands-wide one-hot (nor a table of thousands in every artifact).
MAX_CATEGORIES = 100


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of the frame and how the model takes it.

    `source` is the dtype of the model's raw input: "string" for categorical, boolean and datetime
    columns whose raw values are strings (and datetime64 columns, formatted as strings), "number"
    otherwise; numeric columns always take numbers (strings mixed into them read as missing).
    """

    name: str
    kind: str
    source: str
    date_format: str = None
    note: str = None


@dataclasses.dataclass
class Schema:
    """Every column except the target, in the frame's order, plus the target and what was dropped."""

    columns: list
    target: str = None
    dropped_target_rows: int = 0
    notes: list = dataclasses.field(default_factory=list)

    @property
    def features(self):
        return [column for column in self.columns if column.kind != "drop"]

    def to_dict(self):
        return {
            "columns": [dataclasses.asdict(column) for column in self.columns],
            "target": self.target,
            "dropped_target_rows": self.dropped_target_rows,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d):
        columns = [Column(**column) for column in d["columns"]]
        return cls(columns, d.get("target"), d.get("dropped_target_rows", 0), list(d.get("notes", [])))

    def describe(self):
        """A small aligned table (column, kind, note) with the target and the notes below it."""
        rows = [("column", "kind", "note")]
        rows += [(c.name, c.kind + (f" ({c.date_format})" if c.date_format else ""), c.note or "") for c in self.columns]
        width = [max(len(str(row[i])) for row in rows) for i in range(2)]
        lines = [f"{name:<{width[0]}}  {kind:<{width[1]}}  {note}".rstrip() for name, kind, note in rows]
        if self.target is not None:
            lines.append(f"target: {self.target}")
        lines += self.notes
        return "\n".join(lines)


# === Missing values and parsing ===


def is_missing(series):
    """NaN/None/NaT, or a string that is empty once stripped."""
    missing = series.isna().to_numpy()
    if series.dtype == object:
        missing |= np.array([isinstance(v, str) and not v.strip() for v in series], dtype=bool)
    return missing


def drop_missing_target(frame, target):
    """`(frame without the rows whose target is missing, how many were dropped)`."""
    missing = is_missing(frame[target])
    return frame.loc[~missing], int(missing.sum())


def boolean_values(series):
    """float64 1/0 for True/"true"/"yes" (any case)/1 and False/"false"/"no"/0, NaN for anything else."""
    return np.asarray([_boolean_value(v) for v in series], dtype="float64")


def _boolean_value(value):
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, str):
        word = value.strip().lower()
        return 1.0 if word in TRUE_WORDS else 0.0 if word in FALSE_WORDS else np.nan
    if isinstance(value, (int, float, np.number)) and value in (0, 1):
        return float(value)
    return np.nan


def _date_pattern(date_format):
    digits = {"%Y": r"\d{4}", "%m": r"\d{2}", "%d": r"\d{2}", "%H": r"\d{2}", "%M": r"\d{2}", "%S": r"\d{2}"}
    return re.compile("".join(digits.get(part, _literal(part)) for part in re.split(r"(%[YmdHMS])", date_format) if part))


def _literal(part):
    # Separators escaped one by one (spaces left bare) so RE2 (tf.strings.regex_full_match) reads it too.
    return "".join(ch if ch.isalnum() or ch == " " else "\\" + ch for ch in part)


def parse_dates(strings, date_format):
    """float64 days since 1970-01-01 (with the time of day as a fraction), NaN where a string does
    not follow `date_format` exactly (zero-padded, fixed width) or names no real date/time."""
    import pandas as pd

    strings = np.asarray(strings, dtype=object).ravel()
    pattern = _date_pattern(date_format)
    shaped = np.array([isinstance(s, str) and pattern.fullmatch(s) is not None for s in strings], dtype=bool)
    parsed = pd.to_datetime(pd.Series(np.where(shaped, strings, None)), format=date_format, errors="coerce")
    # Strict like ParseDate: a string must be what its date prints as (pandas reads second 60 as :00 + 1 min).
    valid = parsed.notna().to_numpy() & (parsed.dt.strftime(date_format).to_numpy(dtype=object) == strings)
    seconds = np.where(valid, parsed.to_numpy().astype("datetime64[s]").astype("int64"), 0)
    days = np.floor_divide(seconds, 86400).astype("float64") + np.mod(seconds, 86400).astype("float64") / 86400.0
    return np.where(valid, days, np.nan)


def _best_date_format(values):
    """`(format, parsed share)` of the format in DATE_FORMATS that parses most values (first on ties)."""
    shares = [(float(np.mean(~np.isnan(parse_dates(values, f)))) if len(values) else 0.0, -i, f)
              for i, f in enumerate(DATE_FORMATS)]
    share, _, date_format = max(shares)
    return date_format, share


def _numbers(series):
    import pandas as pd

    return pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")


# === Inference ===


def _numeric_column(name, values, note=None):
    """Numbers: integer-valued with at most MAX_CODED_VALUES distinct values are category codes."""
    distinct = np.unique(values)
    if len(distinct) <= MAX_CODED_VALUES and np.all(distinct == np.round(distinct)):
        coded = f"{len(distinct)} integer values: categorical codes"
        return Column(name, "categorical", "number", note=f"{note}; {coded}" if note else coded)
    return Column(name, "numeric", "number", note=note)


def _is_boolean_words(present):
    words = {str(v).strip().lower() for v in present}
    return len(words) == 2 and len(words & set(TRUE_WORDS)) == 1 and len(words & set(FALSE_WORDS)) == 1


def _string_source(present):
    return "string" if any(isinstance(v, str) for v in present) else "number"


def _infer_column(name, series):
    """The Column inference gives `series` (see the module's rules), None when all of it is missing."""
    import pandas as pd

    present = series[~is_missing(series)]
    if present.empty:
        return None
    if pd.api.types.is_bool_dtype(series):
        return Column(name, "boolean", "number")
    if pd.api.types.is_datetime64_any_dtype(series):
        return Column(name, "datetime", "string", date_format=DATETIME64_FORMAT)
    if pd.api.types.is_numeric_dtype(series):
        return _numeric_column(name, present.to_numpy(dtype="float64"))
    if _is_boolean_words(present):
        return Column(name, "boolean", _string_source(present))
    numbers = _numbers(present)
    parsed = ~np.isnan(numbers)
    if parsed.mean() >= INFERRED_SHARE:
        bad = present[~parsed]
        note = None
        if len(bad):
            examples = ", ".join(repr(str(v)) for v in bad.unique()[:3])
            note = f"{len(bad)} non-numeric values ({examples}) read as missing"
        return _numeric_column(name, numbers[parsed], note)
    date_format, share = _best_date_format(present.to_numpy(dtype=object))
    if share >= INFERRED_SHARE:
        note = None if share == 1.0 else f"{round((1 - share) * len(present))} values that are not dates read as missing"
        return Column(name, "datetime", "string", date_format=date_format, note=note)
    distinct = present.astype(str).nunique()
    if distinct > ID_SHARE * len(series) and distinct > ID_MIN_DISTINCT:
        return Column(name, "drop", "string", note=f"{distinct} distinct strings in {len(series)} rows: id-like, dropped")
    note = f"{distinct} distinct values"
    if distinct > MAX_CATEGORIES:
        note += f"; the {MAX_CATEGORIES} most frequent kept, the rest share the out-of-vocabulary slot"
    return Column(name, "categorical", "string", note=note)


def _override_column(name, series, kind):
    """`(Column, None)` for the kind the user set, or `(None, why it cannot apply)`."""
    import pandas as pd

    present = series[~is_missing(series)]
    total = len(present)
    is_datetime64 = pd.api.types.is_datetime64_any_dtype(series)
    is_number = pd.api.types.is_numeric_dtype(series)  # bool included
    note = "set in data.columns"
    if kind == "drop":
        return Column(name, "drop", "number" if is_number else "string", note=note), None
    if kind == "categorical":
        return Column(name, kind, "number" if is_number else "string", note=note), None
    if kind == "numeric":
        parsed = 0 if is_datetime64 else total if is_number else int((~np.isnan(_numbers(present))).sum())
        if total and parsed >= OVERRIDE_SHARE * total:
            return Column(name, kind, "number", note=note), None
        return None, f"'numeric' cannot apply: {parsed} of {total} values parse as numbers"
    if kind == "boolean":
        parsed = int((~np.isnan(boolean_values(present))).sum())
        if total and parsed >= OVERRIDE_SHARE * total:
            return Column(name, kind, _string_source(present), note=note), None
        return None, f"'boolean' cannot apply: {parsed} of {total} values read as true/false/yes/no/1/0"
    if is_datetime64:
        return Column(name, kind, "string", date_format=DATETIME64_FORMAT, note=note), None
    date_format, share = _best_date_format(present.to_numpy(dtype=object)) if not is_number else (None, 0.0)
    if total and share >= OVERRIDE_SHARE:
        return Column(name, kind, "string", date_format=date_format, note=note), None
    parsed = round(share * total)
    return None, f"'datetime' cannot apply: {parsed} of {total} values parse as dates"


def _did_you_mean(name, choices):
    hint = suggest(name, choices).strip()
    return f"({hint[0].lower()}{hint[1:]})" if hint else ""


def _override_problems(frame, target, overrides):
    """Problems `(field, what is wrong)` with the override names and kinds, and the valid ones."""
    problems, valid = [], {}
    columns = [str(c) for c in frame.columns]
    for name, kind in overrides.items():
        field = f"data.columns.{name}"
        if name not in frame.columns:
            where = _did_you_mean(name, columns) or f"(columns: {', '.join(columns)})"
            problems.append((field, f"names no column of the data {where}"))
        elif name == target:
            problems.append((field, "names the target column, which takes no kind"))
        elif kind not in KINDS:
            problems.append((field, f"must be one of {', '.join(KINDS)} {_did_you_mean(kind, KINDS)}".rstrip()))
        else:
            valid[name] = kind
    return problems, valid


def _target_problems(frame, target):
    if target is None:
        return []
    if target not in frame.columns:
        return [("data.target", f"names no column of the data (columns: {', '.join(map(str, frame.columns))})")]
    present = frame[target][~is_missing(frame[target])]
    if present.empty:
        return [("data.target", f"column {target!r} is missing in every row")]
    if present.astype(str).nunique() == 1:
        return [("data.target", f"column {target!r} is constant ({_plain(present.iloc[0])!r} in every row): nothing to learn")]
    return []


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _raise_problems(problems, received):
    """One InvalidParameterError naming every problem: `field` what. Received: ..."""
    if len(problems) == 1:
        (field, what), = problems
        raise InvalidParameterError(f"`{field}` {what}. Received: {received}")
    scope = "data.columns" if all(f.startswith("data.columns") for f, _ in problems) else "data"
    listed = "; ".join(f"`{field}` {what}" for field, what in problems)
    raise InvalidParameterError(f"`{scope}`: {len(problems)} problems: {listed}. Received: {received}")


def _received(problems, target, overrides):
    """The `Received: ...` part: the values behind the problems."""
    prefix = "data.columns."
    named = [f.removeprefix(prefix) for f, _ in problems if f.startswith(prefix)]
    overridden = [name for name in named if name in overrides]
    if len(problems) == 1 and overridden:
        return f"{prefix}{overridden[0]}={overrides[overridden[0]]!r}"
    parts = [f"data.target={target!r}"] if any(f == "data.target" for f, _ in problems) else []
    if overridden or any(f == "data.columns" for f, _ in problems):
        parts.append(f"data.columns={dict(overrides)!r}")
    missing = [f.removeprefix(prefix) for f, what in problems if what.startswith("is missing in every row")]
    if missing:
        parts.append(f"all-missing column(s) {', '.join(map(str, missing))}")
    return ", ".join(parts)


def infer_schema(frame, *, target=None, overrides=None):
    """The Schema of `frame`: a kind per column by the rules below, `overrides` ({column: kind},
    the config's `data.columns`) winning; every problem is reported at once in one error.

    Rules: bool dtype, or exactly two words one of true/yes and one of false/no (any case) -> boolean;
    numbers (or strings of which >= 95% parse as numbers, the rest read as missing) -> numeric, but
    integer-valued with <= 10 distinct values -> categorical codes; datetime64 -> datetime; strings of
    which >= 95% follow one of DATE_FORMATS -> datetime; strings with more than 20 distinct values and
    more than half the rows distinct -> dropped as id-like; other strings -> categorical. An override
    must fit at least half of the non-missing values (numbers, dates, true/false).
    Rows whose target is missing are left out of inference and counted (see drop_missing_target).
    """
    if overrides is not None and not isinstance(overrides, collections.abc.Mapping):
        raise InvalidParameterError(
            f"`data.columns` must map column names to kinds ({', '.join(KINDS)}). Received: data.columns={overrides!r}"
        )
    overrides = dict(overrides or {})
    problems, valid = _override_problems(frame, target, overrides)
    problems += _target_problems(frame, target)
    rows, dropped = frame, 0
    if target is not None and target in frame.columns:
        rows, dropped = drop_missing_target(frame, target)
    columns = []
    for name in frame.columns:
        if name == target:
            continue
        if name in valid:
            column, why = _override_column(name, rows[name], valid[name])
            if why:
                problems.append((f"data.columns.{name}", why))
                continue
        else:
            column = _infer_column(name, rows[name])
            if column is None:
                problems.append((f"data.columns.{name}", f"is missing in every row; set `data.columns.{name}: drop`"))
                continue
        columns.append(column)
    if not problems and not any(c.kind != "drop" for c in columns):
        problems.append(("data.columns", "leaves no feature column: every column is dropped"))
    if problems:
        _raise_problems(problems, _received(problems, target, overrides))
    notes = [f"{dropped} rows with a missing target dropped"] if dropped else []
    return Schema(columns, target, dropped, notes)


# === Raw model inputs ===


def frame_to_inputs(frame, schema):
    """`{column: (n, 1) array}` for every feature column: str objects ("" when missing) for source
    "string", float32 (NaN when missing, booleans 0/1) for the others. A datetime64 column becomes
    strings in DATETIME64_FORMAT; other non-string values of a "string" column become `str(value)`
    (so a float 1.0 is "1.0": read prediction CSVs with the training dtypes)."""
    import pandas as pd

    absent = [c.name for c in schema.features if c.name not in frame.columns]
    if absent:
        raise InvalidParameterError(
            f"`data` lacks column(s) the model takes: {', '.join(map(str, absent))}. "
            f"Received: columns {', '.join(map(str, frame.columns))}"
        )
    inputs = {}
    for column in schema.features:
        series = frame[column.name]
        if column.source == "string":
            if pd.api.types.is_datetime64_any_dtype(series):
                series = series.dt.strftime(DATETIME64_FORMAT)
            missing = is_missing(series)
            values = np.array(["" if gone else str(v) for v, gone in zip(series, missing)], dtype=object)
        elif column.kind == "boolean":
            values = boolean_values(series).astype("float32")
        else:
            values = _numbers(series).astype("float32")
        inputs[column.name] = values.reshape(-1, 1)
    return inputs


def date_fields(date_format):
    """`(regex, {directive: (start, width)})` of a fixed-width format made of %Y %m %d %H %M %S and
    literal separators: where each field sits in a string that follows it."""
    widths = {"%Y": 4, "%m": 2, "%d": 2, "%H": 2, "%M": 2, "%S": 2}
    fields, start = {}, 0
    for part in re.split(r"(%.)", date_format):
        if part.startswith("%"):
            if part not in widths:
                raise InvalidParameterError(
                    f"`date_format` may use only %Y %m %d %H %M %S and separators. Received: date_format={date_format!r}"
                )
            fields[part] = (start, widths[part])
            start += widths[part]
        else:
            start += len(part)
    return _date_pattern(date_format).pattern, fields
