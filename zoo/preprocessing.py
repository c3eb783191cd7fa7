"""Preprocessing models fitted on the training split only: tabular columns, plain arrays, targets."""

import copy
import dataclasses
import re

import numpy as np

from zoo import tabular
from zoo.errors import InvalidParameterError

# How each kind appears in the codes matrix (the input of feature_model; of artifacts exported with
# inputs="codes").
ENCODINGS = {
    "numeric": "the number; NaN when missing",
    "boolean": "1 for true/yes, 0 for false/no; NaN when missing",
    "categorical": "i + 1 for vocabulary[i], 0 for a missing or unseen value",
    "datetime": "days since 1970-01-01 (time of day as a fraction); NaN when missing or unparseable",
}
# How each column enters an exported artifact (TFLite, ONNX, SavedModel with raw inputs): as in the
# codes matrix, except that a category comes as its own value and the artifact looks it up (a
# string table: TFLite's HASHTABLE builtins, ONNX's ai.onnx.ml CategoryMapper). Dates and booleans
# come as numbers: parsing strings takes TensorFlow ops that neither TFLite's builtins nor ONNX have.
ARTIFACT_ENCODINGS = {
    ("categorical", "string"): "the category as a string; \"\" when missing; a value outside the "
                               "vocabulary (unseen, or rarer than the kept categories) takes the "
                               "out-of-vocabulary slot",
    ("categorical", "number"): "the category code as a number; NaN when missing; a value outside the "
                               "vocabulary takes the out-of-vocabulary slot",
    ("numeric", None): ENCODINGS["numeric"],
    ("boolean", None): ENCODINGS["boolean"],
    ("datetime", None): ENCODINGS["datetime"],
}
IMPUTED = ("numeric", "boolean", "datetime")  # the order of the groups inside feature_model

SCALINGS = ("standard", "robust", "quantile")
NUMERIC_EMBEDDINGS = ("none", "periodic")
CATEGORY_ENCODINGS = ("one_hot", "embedding", "auto")
AUTO_ONE_HOT_MAX = 9  # "auto": a column of at most this many codes (with the unseen slot) is one-hot
MAX_QUANTILES = 256  # knots of a column's quantile map: n_train // 30, between 10 and this
NORMAL_LEVELS = 1e-3  # quantile levels clipped to [this, 1 - this] before their normal scores (±3.09)


@dataclasses.dataclass(frozen=True)
class FeatureOptions:
    """How `feature_model` turns the codes into features; the defaults are the plain encoding
    (a search's default point is `feature_space`'s).

    scaling: numbers and date parts by the training mean and standard deviation ("standard"), by
        the median and interquartile range then a smooth clip to ±3 ("robust", RealMLP's), or to
        the normal scores of their training quantiles ("quantile", QuantileTransformer's).
    numeric_embedding: "periodic" embeds each scaled number in `periodic_dim` values (Gorishniy et
        al. 2022) with `frequencies` learned frequencies initialized N(0, `sigma`).
    categories: one-hot vectors, learned `category_dim`-wide embeddings of the code, or "auto":
        one-hot up to AUTO_ONE_HOT_MAX codes, embeddings above.
    """

    scaling: str = "standard"
    numeric_embedding: str = "none"
    frequencies: int = 16
    sigma: float = 0.1
    periodic_dim: int = 4
    categories: str = "one_hot"
    category_dim: int = 8

    def __post_init__(self):
        for field, allowed in (("scaling", SCALINGS), ("numeric_embedding", NUMERIC_EMBEDDINGS),
                               ("categories", CATEGORY_ENCODINGS)):
            if getattr(self, field) not in allowed:
                raise InvalidParameterError(
                    f"`{field}` must be one of {', '.join(allowed)}. Received: {field}={getattr(self, field)!r}")

    def embeds(self, vocabulary_size):
        """Whether a categorical column of `vocabulary_size` values gets an embedding."""
        if self.categories == "auto":
            return vocabulary_size + 1 > AUTO_ONE_HOT_MAX
        return self.categories == "embedding"


def feature_space(hp, prefix="features"):
    """The searched FeatureOptions of a table, RealMLP's choices by default (robust scaling, periodic
    embeddings with 16 frequencies of sigma 0.1, embeddings for categories of more than 9 codes).
    On the tuning tables (zoo.models.mlp.TABLE_DEFAULTS) the default point with them gained 6.5
    points over HistGradientBoosting on average; standard scaling +6.4, no periodic embedding +5.9,
    quantile scaling +4.5 (measured at learning rate 2e-3, where these defaults gained +5.2)."""
    scaling = hp.Choice(f"{prefix}_scaling", list(SCALINGS), default="robust")
    embedding = hp.Choice(f"{prefix}_numeric_embedding", list(NUMERIC_EMBEDDINGS), default="periodic")
    with hp.conditional_scope(f"{prefix}_numeric_embedding", ["periodic"]):
        periodic = {"frequencies": hp.Choice(f"{prefix}_frequencies", [8, 16, 32], default=16),
                    "sigma": hp.Choice(f"{prefix}_sigma", [0.01, 0.03, 0.1, 0.3, 1.0], default=0.1)}
    categories = hp.Choice(f"{prefix}_categories", list(CATEGORY_ENCODINGS), default="auto")
    with hp.conditional_scope(f"{prefix}_categories", ["embedding", "auto"]):
        embedded = {"category_dim": hp.Choice(f"{prefix}_category_dim", [4, 8, 16], default=8)}
    chosen = {**periodic, **embedded}  # an inactive hyperparameter is None: its default stands
    return FeatureOptions(scaling=scaling, numeric_embedding=embedding, categories=categories,
                          **{name: value for name, value in chosen.items() if value is not None})


class TabularPreprocessor:
    """Built from a Schema and the TRAINING frame only.

    Two Keras models split the work: `encoder_model` takes the raw columns ({column: (batch, 1)}, string or float32 as
    `Column.source` says) to the float32 codes matrix (batch, n_features), one column per feature in
    schema order (see ENCODINGS); `feature_model` takes the codes to the features a network learns
    from, with builtin ops only: numeric -> Impute(train mean) -> Normalization(train mean/variance);
    boolean -> Impute(train majority) as 0/1; datetime -> Impute(train median day) -> DaysToCalendar
    -> Normalization; categorical -> CategoryEncoding one-hot of the code (slot 0 = missing/unseen);
    then a 0/1 missing indicator for each numeric/boolean/datetime column that had missing values in
    train (columns complete in train get none). `feature_names` names its outputs. That is the
    plain encoding (`FeatureOptions()`); `options` (or `with_options`, a search trial's) may scale
    by robust or quantile statistics instead, embed the numbers and date parts periodically and
    embed categories: `feature_shape` is then the output's width and `feature_names` still names
    the plain encoding's columns.

    Categorical columns of numbers (codes 1, 2, 3) are looked up by value with NumberLookup (no cast
    to strings or integers, so NaN is simply unseen). Each vocabulary holds the most frequent
    `tabular.MAX_CATEGORIES` training values at most. Zero-variance statistics are taken as 1.
    An exported artifact takes `build_artifact_encoder`'s inputs instead of `encoder_model`'s: the
    same but for dates and booleans as numbers (see ARTIFACT_ENCODINGS).
    `encoder_model` and `feature_model` are built once and cached; `build_encoder_model()` and
    `build_feature_model()` return fresh ones.
    """

    def __init__(self, schema, train_frame, options=None):
        self._adapt(schema, tabular.frame_to_inputs(train_frame, schema), options)

    @classmethod
    def from_inputs(cls, schema, train_inputs, options=None):
        """Fitted on the training rows already turned into raw inputs (`tabular.frame_to_inputs`,
        as `zoo.data.dataset_from_frame` turns a whole frame once and splits the result)."""
        preprocessor = cls.__new__(cls)
        preprocessor._adapt(schema, train_inputs, options)
        return preprocessor

    def _adapt(self, schema, inputs, options):
        self.schema = schema
        self.options = options or FeatureOptions()
        self.vocabularies = {
            c.name: _vocabulary(inputs[c.name][:, 0], c.source) for c in schema.features if c.kind == "categorical"
        }
        empty = [name for name, vocabulary in self.vocabularies.items() if not vocabulary]
        if empty:
            rows = len(inputs[empty[0]])
            raise InvalidParameterError(
                f"`data.columns.{empty[0]}` has no value in the training split, so it has no categories; "
                f"set `data.columns.{empty[0]}: drop`. Received: {rows} training rows, all missing"
            )
        self.statistics = _statistics(schema.features, self.encode_inputs(inputs))
        self.feature_names = _feature_names(schema.features, self.vocabularies, self.statistics)
        self._encoder_model = self._feature_model = None

    def with_options(self, options):
        """This preprocessor (the same fitted statistics) building its features as `options` (a
        FeatureOptions) says: how a search's trial gets its own encoding."""
        configured = copy.copy(self)
        configured.options = options
        configured._feature_model = None
        return configured

    @property
    def feature_shape(self):
        """The shape of feature_model's output: `(len(feature_names),)` with the plain encoding,
        wider or narrower with embeddings."""
        options, features = self.options, self.schema.features
        continuous = sum(1 if c.kind == "numeric" else len(tabular.CALENDAR_PARTS) for c in features
                         if c.kind in ("numeric", "datetime"))
        width = continuous * (options.periodic_dim if options.numeric_embedding == "periodic" else 1)
        width += sum(c.kind == "boolean" for c in features)
        for name, vocabulary in self.vocabularies.items():
            width += options.category_dim if options.embeds(len(vocabulary)) else len(vocabulary) + 1
        width += sum(self.statistics[c.name]["had_missing"] for c in features if c.kind in IMPUTED)
        return (width,)

    def to_dict(self):
        """JSON-able: the schema, the vocabularies (and their cap), the codes matrix's columns with
        their encoding, the train statistics and the feature names (for an export manifest, where
        the export adds the artifacts' raw inputs: artifact_input_specs)."""
        codes = [
            {"name": c.name, "kind": c.kind, "source": c.source, "date_format": c.date_format, "encoding": ENCODINGS[c.kind]}
            for c in self.schema.features
        ]
        return {
            "schema": self.schema.to_dict(),
            "vocabularies": {name: list(vocabulary) for name, vocabulary in self.vocabularies.items()},
            "max_categories": tabular.MAX_CATEGORIES,
            "codes": codes,
            "statistics": self.statistics,
            "feature_names": list(self.feature_names),
        }

    def encode_frame(self, frame):
        """(n, n_features) float32 codes, what encoder_model computes from frame_to_inputs(frame)."""
        return self.encode_inputs(tabular.frame_to_inputs(frame, self.schema))

    def encode_inputs(self, inputs):
        """The codes of rows already turned into raw inputs (`tabular.frame_to_inputs`)."""
        return inputs_to_codes(self.schema, self.vocabularies, inputs)

    def count_unseen(self, frame):
        """Rows with at least one non-missing category outside the training vocabulary."""
        inputs = tabular.frame_to_inputs(frame, self.schema)
        return int(unseen_rows(self.schema, inputs, self.encode_inputs(inputs)).sum())

    @property
    def encoder_model(self):
        if self._encoder_model is None:
            self._encoder_model = self.build_encoder_model()
        return self._encoder_model

    @property
    def feature_model(self):
        if self._feature_model is None:
            self._feature_model = self.build_feature_model()
        return self._feature_model

    def build_encoder_model(self):
        """Raw inputs {column: Input((1,))} -> codes (batch, n_features) float32 (TensorFlow only)."""
        import keras

        from zoo.layers.preprocessing import StackCodes

        inputs, codes, names = {}, [], set()
        for column in self.schema.features:
            dtype = "string" if column.source == "string" else "float32"
            input_name = _input_name(column.name, names)
            raw = keras.Input((1,), dtype=dtype, name=input_name)
            inputs[column.name] = raw
            codes.append(self._encode_column(column, raw, f"encode_{input_name}"))
        merged = StackCodes(name="codes")(codes)
        return keras.Model(inputs, merged, name="encoder_model")

    def _encode_column(self, column, raw, name):
        from zoo.layers.preprocessing import ParseBoolean, ParseDate

        if column.kind == "categorical":
            return _lookup(column, self.vocabularies[column.name], name)(raw)
        if column.kind == "datetime":
            return ParseDate(column.date_format, name=name)(raw)
        if column.kind == "boolean" and column.source == "string":
            return ParseBoolean(name=name)(raw)
        return raw

    def build_feature_model(self, options=None):
        """Codes (batch, n_features) -> features (batch, *feature_shape), TFLite/ONNX builtins only,
        as `options` (default: this preprocessor's FeatureOptions) say."""
        import keras

        from zoo.layers.preprocessing import Impute, SelectColumns

        options = options or self.options
        features = self.schema.features
        codes = keras.Input((len(features),), name="codes")
        groups = {kind: [i for i, c in enumerate(features) if c.kind == kind] for kind in (*IMPUTED, "categorical")}
        imputed_order = [i for kind in IMPUTED for i in groups[kind]]
        stats = [self.statistics[features[i].name] for i in imputed_order]
        parts, flags = [], [s["had_missing"] for s in stats]
        if imputed_order:
            selected = SelectColumns(imputed_order, name="select_imputed")(codes)
            imputed = Impute([s["fill"] for s in stats], indicator=flags, name="impute")(selected)
            parts += self._imputed_parts(imputed, groups, stats, options)
        if groups["categorical"]:
            selected = SelectColumns(groups["categorical"], name="select_categorical")(codes)
            # A NaN code (a deployment's slip) is read as unseen rather than cast to garbage.
            filled = Impute([0.0] * len(groups["categorical"]), indicator=False, name="impute_codes")(selected)
            for position, index in enumerate(groups["categorical"]):
                code = SelectColumns([position], name=f"code_{position}")(filled)
                parts.append(self._category_part(code, position, len(self.vocabularies[features[index].name]), options))
        if any(flags):
            start = len(imputed_order)
            parts.append(SelectColumns(range(start, start + sum(flags)), name="missing_indicators")(imputed))
        outputs = keras.layers.Concatenate(name="features")(parts) if len(parts) > 1 else parts[0]
        return keras.Model(codes, outputs, name="feature_model")

    @staticmethod
    def _category_part(code, position, vocabulary_size, options):
        """One categorical column's code (batch, 1) as a one-hot vector or a learned embedding."""
        import keras

        if not options.embeds(vocabulary_size):
            return keras.layers.CategoryEncoding(num_tokens=vocabulary_size + 1, output_mode="one_hot",
                                                 name=f"one_hot_{position}")(code)
        embedded = keras.layers.Embedding(vocabulary_size + 1, options.category_dim,
                                          name=f"embed_{position}")(code)  # (batch, 1, dim)
        return keras.layers.Reshape((options.category_dim,), name=f"embed_{position}_flat")(embedded)

    def _imputed_parts(self, imputed, groups, stats, options):
        """The numeric, boolean and datetime groups scaled as `options` say; with a periodic
        embedding, the numbers and date parts embedded together, before the booleans."""
        import keras

        from zoo.layers.preprocessing import DaysToCalendar, SelectColumns
        from zoo.layers.tabular import PeriodicEmbedding

        parts, continuous, start = [], [], 0
        for kind in IMPUTED:
            count = len(groups[kind])
            if not count:
                continue
            part = SelectColumns(range(start, start + count), name=f"select_{kind}")(imputed)
            group_stats = stats[start:start + count]
            start += count
            if kind == "datetime":
                part = DaysToCalendar(name="calendar")(part)
            if kind != "boolean":
                part = _scaled(part, kind, group_stats, options.scaling)
                continuous.append(part)
            parts.append(part)
        if options.numeric_embedding == "periodic" and continuous:
            joined = continuous[0] if len(continuous) == 1 else keras.layers.Concatenate(
                name="continuous")(continuous)
            embedded = PeriodicEmbedding(options.frequencies, options.sigma, options.periodic_dim,
                                         name="periodic")(joined)
            parts = [embedded] + [part for part in parts if all(part is not c for c in continuous)]
        return parts


def _scaled(part, kind, group_stats, scaling):
    """A group of numbers or date parts scaled by its training statistics (see FeatureOptions)."""
    from zoo.layers.preprocessing import Standardize
    from zoo.layers.tabular import PiecewiseLinear, SmoothClip

    def gathered(key):
        return [value for s in group_stats for value in s[key]]

    if scaling == "quantile":
        return PiecewiseLinear(gathered("quantiles"), gathered("normal_scores"), name=f"quantile_{kind}")(part)
    if scaling == "robust":
        spread = [value ** 2 for value in gathered("spread")]
        part = Standardize(gathered("median"), spread, name=f"robust_{kind}")(part)
        return SmoothClip(3.0, name=f"clip_{kind}")(part)
    return Standardize(gathered("mean"), gathered("variance"), name=f"normalize_{kind}")(part)


def _input_name(column_name, taken):
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", str(column_name)) or "column"
    unique, suffix = name, 1
    while unique in taken:
        unique, suffix = f"{name}_{suffix}", suffix + 1
    taken.add(unique)
    return unique



def _lookup(column, vocabulary, name):
    """The layer that maps a categorical column's raw values to codes: i + 1 for vocabulary[i], 0
    for anything else (StringLookup for strings; NumberLookup for numbers, which takes floats)."""
    import keras

    from zoo.layers.preprocessing import NumberLookup

    if column.source == "string":
        return keras.layers.StringLookup(vocabulary=list(vocabulary), num_oov_indices=1, output_mode="int", name=name)
    return NumberLookup([float(v) for v in vocabulary], name=name)


# === What an exported artifact takes ===


def _artifact_names(columns):
    """One input name per column: characters outside [A-Za-z0-9_] as "_", "column_" before a name
    that does not start with a letter, made unique: names a SavedModel signature, TFLite and ONNX
    all keep as they are."""
    taken, names = set(), []
    for column in columns:
        name = re.sub(r"[^A-Za-z0-9_]", "_", str(column.name))
        if not name[:1].isalpha():
            name = f"column_{name}"
        unique, suffix = name, 1
        while unique in taken:
            unique, suffix = f"{name}_{suffix}", suffix + 1
        taken.add(unique)
        names.append(unique)
    return names


def artifact_input_specs(description):
    """The inputs of an artifact exported with raw inputs, one per feature column in schema order:
    [{name, column, kind, dtype ("string" or "float32"), shape [None, 1], encoding}], from
    TabularPreprocessor.to_dict()'s output (see ARTIFACT_ENCODINGS)."""
    schema = tabular.Schema.from_dict(description["schema"])
    specs = []
    for column, name in zip(schema.features, _artifact_names(schema.features)):
        categorical = column.kind == "categorical"
        specs.append({
            "name": name, "column": column.name, "kind": column.kind,
            "dtype": "string" if categorical and column.source == "string" else "float32",
            "shape": [None, 1],
            "encoding": ARTIFACT_ENCODINGS[(column.kind, column.source if categorical else None)],
        })
    return specs


def build_artifact_encoder(description):
    """{input name: Input((1,))} (artifact_input_specs) -> the codes matrix (batch, n_features)
    float32, from TabularPreprocessor.to_dict()'s output: lookups for the categories, the other
    columns as they come. Converts to TFLite builtins and to ONNX's standard domains."""
    import keras

    from zoo.layers.preprocessing import StackCodes

    schema = tabular.Schema.from_dict(description["schema"])
    inputs, codes = {}, []
    for column, spec in zip(schema.features, artifact_input_specs(description)):
        raw = keras.Input((1,), dtype=spec["dtype"], name=spec["name"])
        inputs[spec["name"]] = raw
        if column.kind == "categorical":  # "-" keeps the layer names apart from the input names
            raw = _lookup(column, description["vocabularies"][column.name], f"lookup-{spec['name']}")(raw)
        codes.append(raw)
    return keras.Model(inputs, StackCodes(name="stack-codes")(codes), name="artifact_encoder")


def artifact_inputs(description, frame=None, *, inputs=None):
    """{input name: (n, 1) array}: what an artifact exported with raw inputs takes for the rows of
    `frame` (or of its raw `inputs`, `tabular.frame_to_inputs`): the categories' own values (str
    objects, "" when missing, or float32 codes), every other column as in the codes matrix
    (float32; dates as days since 1970-01-01)."""
    schema = tabular.Schema.from_dict(description["schema"])
    raw = tabular.frame_to_inputs(frame, schema) if inputs is None else inputs
    inputs = {}
    for column, spec in zip(schema.features, artifact_input_specs(description)):
        values = raw[column.name][:, 0]
        if column.kind != "categorical":
            values = _column_codes(column, values, None)
        inputs[spec["name"]] = values.reshape(-1, 1) if spec["dtype"] == "string" else values.astype("float32").reshape(-1, 1)
    return inputs


def artifact_inputs_from_codes(description, codes):
    """The artifact inputs whose codes matrix is `codes` (n, n_features): each category code back
    to its vocabulary value (0, or a code outside the vocabulary, to a missing value), the other
    columns as they are. How an export turns a codes model's samples into raw rows."""
    schema = tabular.Schema.from_dict(description["schema"])
    codes = np.asarray(codes, dtype="float32")
    inputs = {}
    for position, (column, spec) in enumerate(zip(schema.features, artifact_input_specs(description))):
        values = codes[:, position]
        if column.kind == "categorical":
            vocabulary = description["vocabularies"][column.name]
            index = np.nan_to_num(np.round(values), nan=0.0).astype("int64")
            inside = (index >= 1) & (index <= len(vocabulary))
            if spec["dtype"] == "string":
                values = np.array([vocabulary[i - 1] if ok else "" for i, ok in zip(index, inside)], dtype=object)
            else:
                numbers = np.asarray([float(v) for v in vocabulary], dtype="float32")
                values = np.where(inside, numbers[np.clip(index - 1, 0, len(vocabulary) - 1)], np.nan).astype("float32")
        inputs[spec["name"]] = values.reshape(-1, 1)
    return inputs


def unseen_and_missing_rows(description):
    """Two rows of artifact inputs that verification adds: every category outside its vocabulary
    (the other columns 0), then every column missing."""
    schema = tabular.Schema.from_dict(description["schema"])
    inputs = {}
    for column, spec in zip(schema.features, artifact_input_specs(description)):
        vocabulary = description["vocabularies"].get(column.name, [])
        if spec["dtype"] == "string":
            unseen = "<unseen>"
            while unseen in vocabulary:
                unseen += "_"
            values = np.array([unseen, ""], dtype=object)
        elif column.kind == "categorical":
            values = np.array([max(float(v) for v in vocabulary) + 1.0, np.nan], dtype="float32")
        else:
            values = np.array([0.0, np.nan], dtype="float32")
        inputs[spec["name"]] = values.reshape(-1, 1)
    return inputs


# === What the training split teaches ===


def _number_token(value):
    """A category code as a vocabulary string that reads back to the same float32."""
    value = float(np.float32(value))
    return str(int(value)) if value == int(value) else format(value, ".9g")


def _vocabulary(raw, source):
    """Distinct non-missing values, most frequent first (ties in value order), as strings; the
    first `tabular.MAX_CATEGORIES` of them."""
    if source == "string":
        values = raw[raw != ""].astype(str)
    else:
        values = raw.astype("float32")
        values = values[~np.isnan(values)]
    distinct, counts = np.unique(values, return_counts=True)
    order = np.lexsort((np.arange(len(distinct)), -counts))  # stable: ties keep np.unique's sorted order
    order = order[:tabular.MAX_CATEGORIES]
    return [str(distinct[i]) if source == "string" else _number_token(distinct[i]) for i in order]


def _statistics(features, codes):
    """Per imputed column: fill value, whether train had missing values, normalization mean/variance."""
    stats = {}
    for position, column in enumerate(features):
        values = codes[:, position].astype("float64")
        present = values[~np.isnan(values)]
        had_missing = bool(len(present) < len(values))
        if column.kind == "numeric":
            fill = float(present.mean()) if len(present) else 0.0
            stats[column.name] = {"fill": fill, "had_missing": had_missing, "mean": [fill], "variance": [_variance(present)],
                                  **_shape_statistics([present if len(present) else np.zeros(1)])}
        elif column.kind == "boolean":
            fill = float(present.mean() >= 0.5) if len(present) else 0.0
            stats[column.name] = {"fill": fill, "had_missing": had_missing}
        elif column.kind == "datetime":
            fill = float(np.median(present)) if len(present) else 0.0
            calendar = _calendar(np.where(np.isnan(values), fill, values))
            stats[column.name] = {
                "fill": fill,
                "had_missing": had_missing,
                "mean": [float(m) for m in calendar.mean(axis=0)],
                "variance": [_variance(part) for part in calendar.T],
                **_shape_statistics(calendar.T),
            }
    return stats


def _shape_statistics(parts):
    """Per part (a column's values): the median, the robust spread (interquartile range, else half
    the range, else 1) and the quantile map (knots: distinct training quantiles; normal_scores:
    the normal score of each knot's mean quantile level, as QuantileTransformer averages ties)."""
    from scipy.special import ndtri

    medians, spreads, knots, scores = [], [], [], []
    for values in parts:
        values = np.asarray(values, dtype="float64")
        low, median, high = np.quantile(values, [0.25, 0.5, 0.75])
        spread = high - low or 0.5 * (values.max() - values.min()) or 1.0
        count = int(np.clip(len(values) // 30, 10, MAX_QUANTILES))
        levels = np.linspace(0.0, 1.0, count)
        quantiles = np.quantile(values, levels).astype("float32").astype("float64")
        distinct, index = np.unique(quantiles, return_inverse=True)
        level = np.bincount(index, weights=levels) / np.bincount(index)
        medians.append(float(median))
        spreads.append(float(spread))
        knots.append([float(k) for k in distinct])
        scores.append([float(v) for v in ndtri(np.clip(level, NORMAL_LEVELS, 1.0 - NORMAL_LEVELS))])
    return {"median": medians, "spread": spreads, "quantiles": knots, "normal_scores": scores}


def _variance(values):
    variance = float(np.var(values)) if len(values) else 0.0
    return variance if variance > 0 else 1.0  # a constant column stays finite (0) instead of / epsilon


def _calendar(days):
    """(n, 5) days, year, month, day, weekday as DaysToCalendar computes them (pandas here)."""
    import pandas as pd

    dates = pd.to_datetime(np.floor(days), unit="D")
    return np.stack([days, dates.year, dates.month, dates.day, dates.dayofweek], axis=1).astype("float64")


def _feature_names(features, vocabularies, stats):
    """Names of feature_model's outputs, in its order."""
    names = []
    for kind in IMPUTED:
        for column in (c for c in features if c.kind == kind):
            parts = tabular.CALENDAR_PARTS if kind == "datetime" else (None,)
            names += [column.name if part is None else f"{column.name}.{part}" for part in parts]
    for column in (c for c in features if c.kind == "categorical"):
        names += [f"{column.name}=<other>"] + [f"{column.name}={v}" for v in vocabularies[column.name]]
    names += [f"{c.name}.missing" for kind in IMPUTED for c in features if c.kind == kind and stats[c.name]["had_missing"]]
    return names


# === Codes without Keras ===


def apply_vocabularies(description, frame):
    """The codes matrix of `frame` from TabularPreprocessor.to_dict()'s output alone (no Keras):
    what a TFLite/ONNX deployment computes before calling the model. Equals encode_frame."""
    schema = tabular.Schema.from_dict(description["schema"])
    return inputs_to_codes(schema, description["vocabularies"], tabular.frame_to_inputs(frame, schema))


def inputs_to_codes(schema, vocabularies, inputs):
    """The codes matrix (n, n_features) float32 of raw inputs (`tabular.frame_to_inputs`)."""
    columns = [_column_codes(c, inputs[c.name][:, 0], vocabularies.get(c.name)) for c in schema.features]
    rows = len(next(iter(inputs.values()))) if inputs else 0
    return np.stack(columns, axis=1).astype("float32") if columns else np.zeros((rows, 0), "float32")


def unseen_rows(schema, inputs, codes):
    """Per row: whether a non-missing category is outside its vocabulary (code 0), from the
    rows' raw inputs and their codes (what `zoo predict` reports)."""
    unseen = np.zeros(len(codes), dtype=bool)
    for position, column in enumerate(schema.features):
        if column.kind == "categorical":
            raw = inputs[column.name][:, 0]
            present = raw != "" if column.source == "string" else ~np.isnan(raw.astype("float32"))
            unseen |= present & (codes[:, position] == 0)
    return unseen


def _column_codes(column, raw, vocabulary):
    if column.kind == "categorical" and column.source == "string":
        index = {value: i + 1 for i, value in enumerate(vocabulary)}
        return np.array([index.get(value, 0) for value in raw], dtype="float32")
    if column.kind == "categorical":
        values = np.asarray([float(v) for v in vocabulary], dtype="float32")
        matches = raw.astype("float32")[:, None] == values[None, :]
        return np.where(matches.any(axis=1), matches.argmax(axis=1) + 1, 0).astype("float32")
    if column.kind == "datetime":
        return tabular.parse_dates(raw, column.date_format).astype("float32")
    if column.kind == "boolean" and column.source == "string":
        return tabular.boolean_values(raw).astype("float32")
    return raw.astype("float32")


# === Plain arrays and targets ===

ARRAY_KINDS = ("auto", "image", "feature")


class ArrayPreprocessor:
    """For plain numeric arrays (numpy, images, windows): a Normalization fitted on X_train only.

    `kind="auto"` is "image" for 4-D arrays (one mean/variance over every pixel and channel) and
    "feature" otherwise (one per last-axis feature, over samples and any time steps). Arrays with
    NaN in X_train get an Impute (train means, no indicator) before the Normalization; arrays
    without NaN are assumed NaN-free at prediction time too.
    """

    def __init__(self, X_train, *, kind="auto"):
        if kind not in ARRAY_KINDS:
            raise InvalidParameterError(f"`kind` must be one of {', '.join(ARRAY_KINDS)}. Received: kind={kind!r}")
        X = np.asarray(X_train, dtype="float32")
        if X.ndim < 2:
            raise InvalidParameterError(f"`X_train` must have a sample axis and a feature axis. Received: shape {X.shape}")
        self.kind = ("image" if X.ndim == 4 else "feature") if kind == "auto" else kind
        self.input_shape = tuple(X.shape[1:])
        channels = X.shape[-1]
        if self.kind == "image":
            mean, variance = np.full(channels, np.nanmean(X)), np.full(channels, np.nanvar(X))
        else:
            axes = tuple(range(X.ndim - 1))
            mean, variance = np.nanmean(X, axis=axes), np.nanvar(X, axis=axes)
        self.mean = [float(m) for m in np.nan_to_num(mean)]
        self.variance = [float(v) if v > 0 else 1.0 for v in np.nan_to_num(variance)]
        self.has_missing = bool(np.isnan(X).any())
        self._feature_model = None

    @property
    def feature_model(self):
        if self._feature_model is None:
            self._feature_model = self.build_feature_model()
        return self._feature_model

    def build_feature_model(self):
        """Raw array -> normalized array of the same shape."""
        import keras

        from zoo.layers.preprocessing import Impute, Standardize

        inputs = keras.Input(self.input_shape, name="array")
        x = Impute(self.mean, indicator=False, name="impute")(inputs) if self.has_missing else inputs
        x = Standardize(self.mean, self.variance, name="normalize")(x)
        return keras.Model(inputs, x, name="feature_model")


def target_stats(y_train):
    y = np.asarray(y_train, dtype="float64")
    y = y.reshape(len(y), -1)
    variance = y.var(axis=0)
    return [float(m) for m in y.mean(axis=0)], [float(v) if v > 0 else 1.0 for v in variance]


def target_scaler(y_train):
    """Standardize(invert=True) (Normalization's arithmetic) holding y_train's mean and variance (one per output column): the
    last layer of a regression model that trains on scale_target(y, scaler) and so predicts in the
    user's units."""
    return unscale_target(target_stats(y_train))


def unscale_target(stats):
    """The layer that puts a model's scaled output back in the target's units, from
    target_stats' (mean, variance)."""
    from zoo.layers.preprocessing import Standardize

    mean, variance = stats
    return Standardize(mean, variance, invert=True, name="unscale_target")


def scale_target(y, scaler):
    """(y - mean) / std with the statistics of `scaler` (from target_scaler): the training targets
    whose inverse the scaler computes. Same shape as y, float32."""
    import keras

    config = scaler.get_config()
    mean = np.asarray(config["mean"], dtype="float64")
    std = np.maximum(np.sqrt(np.asarray(config["variance"], dtype="float64")), keras.backend.epsilon())
    y = np.asarray(y, dtype="float64")
    scaled = (y.reshape(len(y), -1) - mean) / std
    return scaled.reshape(y.shape).astype("float32")
