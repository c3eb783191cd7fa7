"""Preprocessing layers that put imputation, date parts and lookups inside the model."""

import keras
import numpy as np
from keras import ops

from zoo.tabular import CALENDAR_PARTS, date_fields

# 1970-01-01 is day 719468 of the proleptic Gregorian calendar counted from 0000-03-01.
_EPOCH_SHIFT = 719468
_DAYS_PER_ERA = 146097  # 400 years


@keras.saving.register_keras_serializable(package="zoo")
class Impute(keras.layers.Layer):
    """NaN -> the column's fill value along the last axis; with `indicator`, 0/1 columns saying which
    were missing are appended (`True`: one per column; a list of bools: for the flagged columns only).

    NaN is found with `x != x`, since TFLite has no IsNan builtin; the layer converts to TFLite
    builtins and to ONNX.
    """

    def __init__(self, fill_values, indicator=True, **kwargs):
        super().__init__(**kwargs)
        self.fill_values = [float(v) for v in fill_values]
        self.indicator = indicator if isinstance(indicator, bool) else [bool(f) for f in indicator]

    def _flagged(self):
        if isinstance(self.indicator, bool):
            return list(range(len(self.fill_values))) if self.indicator else []
        return [i for i, flag in enumerate(self.indicator) if flag]

    def build(self, input_shape):
        if input_shape[-1] != len(self.fill_values):
            raise ValueError(f"Impute has {len(self.fill_values)} fill values for {input_shape[-1]} columns")

    def call(self, inputs):
        missing = ops.not_equal(inputs, inputs)
        fill = ops.convert_to_tensor(np.asarray(self.fill_values, dtype="float32"), dtype=inputs.dtype)
        filled = ops.where(missing, fill, inputs)
        flagged = self._flagged()
        if not flagged:
            return filled
        if len(flagged) < len(self.fill_values):
            missing = ops.take(missing, flagged, axis=-1)
        return ops.concatenate([filled, ops.cast(missing, filled.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + len(self._flagged()))

    def get_config(self):
        config = super().get_config()
        config.update({"fill_values": self.fill_values, "indicator": self.indicator})
        return config


def _floordiv(a, b):
    return ops.floor(ops.divide(a, b))


@keras.saving.register_keras_serializable(package="zoo")
class DaysToCalendar(keras.layers.Layer):
    """(batch, k) days since 1970-01-01 -> (batch, 5k): per column days (as given), year, month
    (1-12), day of month, day of week (0 = Monday), by Howard Hinnant's civil_from_days in float32
    floor arithmetic (exact for 0001-9999); converts to TFLite builtins and to ONNX."""

    def build(self, input_shape):
        pass

    def call(self, inputs):
        days = ops.floor(inputs)  # a fraction is the time of day
        z = days + _EPOCH_SHIFT
        era = _floordiv(z, _DAYS_PER_ERA)
        day_of_era = z - era * _DAYS_PER_ERA
        year_of_era = _floordiv(
            day_of_era - _floordiv(day_of_era, 1460) + _floordiv(day_of_era, 36524) - _floordiv(day_of_era, 146096), 365
        )
        day_of_year = day_of_era - (365 * year_of_era + _floordiv(year_of_era, 4) - _floordiv(year_of_era, 100))
        month_from_march = _floordiv(5 * day_of_year + 2, 153)
        day = day_of_year - _floordiv(153 * month_from_march + 2, 5) + 1
        month = ops.where(month_from_march < 10, month_from_march + 3, month_from_march - 9)
        year = year_of_era + era * 400 + ops.cast(month <= 2, inputs.dtype)
        weekday = (days + 3) - 7 * _floordiv(days + 3, 7)
        parts = ops.stack([inputs, year, month, day, weekday], axis=-1)
        return ops.reshape(parts, (-1, inputs.shape[-1] * len(CALENDAR_PARTS)))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1] * len(CALENDAR_PARTS))


def _days_from_civil(tf, year, month, day):
    """int64 days since 1970-01-01 of a proleptic Gregorian date (Hinnant's days_from_civil)."""
    year = year - tf.cast(month <= 2, year.dtype)
    era = tf.math.floordiv(year, 400)
    year_of_era = year - era * 400
    day_of_year = tf.math.floordiv(153 * tf.math.floormod(month + 9, 12) + 2, 5) + day - 1
    day_of_era = year_of_era * 365 + tf.math.floordiv(year_of_era, 4) - tf.math.floordiv(year_of_era, 100) + day_of_year
    return era * _DAYS_PER_ERA + day_of_era - _EPOCH_SHIFT


def _days_in_month(tf, year, month):
    lengths = tf.constant([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=year.dtype)
    leap = tf.logical_or(
        tf.logical_and(tf.math.floormod(year, 4) == 0, tf.math.floormod(year, 100) != 0),
        tf.math.floormod(year, 400) == 0,
    )
    february_extra = tf.cast(tf.logical_and(leap, tf.equal(month, 2)), year.dtype)
    return tf.gather(lengths, tf.clip_by_value(month, 1, 12) - 1) + february_extra


@keras.saving.register_keras_serializable(package="zoo")
class ParseDate(keras.layers.Layer):
    """(batch, 1) strings of a fixed-width `date_format` (zero-padded %Y %m %d %H %M %S, e.g.
    "%Y-%m-%d") -> (batch, 1) float32 days since 1970-01-01, the time of day as a fraction; NaN for
    empty, malformed or impossible dates. TensorFlow only (string ops): not for TFLite/ONNX."""

    def __init__(self, date_format, **kwargs):
        super().__init__(**kwargs)
        self.date_format = date_format
        self._pattern, self._fields = date_fields(date_format)

    def build(self, input_shape):
        pass

    def call(self, inputs):
        import tensorflow as tf

        well_formed = tf.strings.regex_full_match(inputs, self._pattern)
        # to_number fails on non-digits, so malformed strings become a valid one before parsing.
        safe = tf.where(well_formed, inputs, tf.constant("0" * 20))

        def field(directive, default):
            if directive not in self._fields:
                return tf.fill(tf.shape(inputs), tf.constant(default, tf.int64))
            start, width = self._fields[directive]
            return tf.strings.to_number(tf.strings.substr(safe, start, width), out_type=tf.int64)

        year, month, day = field("%Y", 1970), field("%m", 1), field("%d", 1)
        hour, minute, second = field("%H", 0), field("%M", 0), field("%S", 0)
        valid = well_formed & (month >= 1) & (month <= 12) & (day >= 1) & (day <= _days_in_month(tf, year, month))
        valid &= (hour < 24) & (minute < 60) & (second < 60)
        seconds = hour * 3600 + minute * 60 + second
        days = tf.cast(_days_from_civil(tf, year, month, day), tf.float64) + tf.cast(seconds, tf.float64) / 86400.0
        return tf.where(valid, tf.cast(days, tf.float32), tf.constant(np.nan, tf.float32))

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype="float32")

    def get_config(self):
        config = super().get_config()
        config.update({"date_format": self.date_format})
        return config


@keras.saving.register_keras_serializable(package="zoo")
class ParseBoolean(keras.layers.Layer):
    """(batch, 1) strings -> float32 1 for true/yes, 0 for false/no (any case, spaces stripped),
    NaN for anything else. TensorFlow only (string ops): not for TFLite/ONNX."""

    def build(self, input_shape):
        pass

    def call(self, inputs):
        import tensorflow as tf

        from zoo.tabular import FALSE_WORDS, TRUE_WORDS

        word = tf.strings.lower(tf.strings.strip(inputs))
        is_true = tf.reduce_any(tf.stack([tf.equal(word, w) for w in TRUE_WORDS]), axis=0)
        is_false = tf.reduce_any(tf.stack([tf.equal(word, w) for w in FALSE_WORDS]), axis=0)
        nan = tf.fill(tf.shape(inputs), tf.constant(np.nan, tf.float32))
        return tf.where(is_true, 1.0, tf.where(is_false, 0.0, nan))

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype="float32")


@keras.saving.register_keras_serializable(package="zoo")
class NumberLookup(keras.layers.Layer):
    """(batch, 1) float32 category codes (e.g. 1, 2, 3) -> float32 index: i + 1 where the value
    equals `values[i]`, 0 for any other value or NaN (the out-of-vocabulary slot, as StringLookup).
    Unlike IntegerLookup it takes floats, so NaN needs no cast to an integer first."""

    def __init__(self, values, **kwargs):
        super().__init__(**kwargs)
        self.values = [float(v) for v in values]

    def build(self, input_shape):
        pass

    def call(self, inputs):
        values = ops.convert_to_tensor(np.asarray(self.values, dtype="float32"), dtype=inputs.dtype)
        positions = ops.convert_to_tensor(np.arange(1, len(self.values) + 1, dtype="float32"), dtype=inputs.dtype)
        matches = ops.cast(ops.equal(inputs, values), inputs.dtype)  # (batch, 1) vs (V,) -> (batch, V)
        return ops.sum(matches * positions, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"values": self.values})
        return config


@keras.saving.register_keras_serializable(package="zoo")
class StackCodes(keras.layers.Layer):
    """A list of (batch, 1) codes of any numeric dtype (StringLookup gives int64) -> one (batch, n)
    float32 matrix; unlike Concatenate it also casts a single input."""

    def build(self, input_shape):
        pass

    def call(self, inputs):
        return ops.concatenate([ops.cast(x, "float32") for x in inputs], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], sum(shape[-1] for shape in input_shape))

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(self.compute_output_shape([x.shape for x in inputs]), dtype="float32")


@keras.saving.register_keras_serializable(package="zoo")
class SelectColumns(keras.layers.Layer):
    """The columns `indices` of the last axis, in that order (a Gather: TFLite and ONNX builtin)."""

    def __init__(self, indices, **kwargs):
        super().__init__(**kwargs)
        self.indices = [int(i) for i in indices]

    def build(self, input_shape):
        pass

    def call(self, inputs):
        return ops.take(inputs, self.indices, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], len(self.indices))

    def get_config(self):
        config = super().get_config()
        config.update({"indices": self.indices})
        return config


@keras.saving.register_keras_serializable(package="zoo")
class ClassNames(keras.layers.Layer):
    """Identity whose config holds the label vocabulary, so a `.keras` file carries its class names."""

    def __init__(self, names, **kwargs):
        super().__init__(**kwargs)
        self.names = [str(n) for n in names]

    def build(self, input_shape):
        pass

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"names": self.names})
        return config


@keras.saving.register_keras_serializable(package="zoo")
class Standardize(keras.layers.Layer):
    """(x - mean) / std along the last axis, or its inverse with `invert` (target unscaling), with
    statistics fitted on the training split, as Keras's `Normalization(mean=, variance=)` computes
    it. The statistics become graph constants inside `call`: Keras's layer holds them as eager
    tensors captured by the traced function, which an ONNX export turns into extra model inputs."""

    def __init__(self, mean, variance, invert=False, **kwargs):
        super().__init__(**kwargs)
        self.mean = [float(m) for m in np.ravel(mean)]
        self.variance = [float(v) for v in np.ravel(variance)]
        self.invert = bool(invert)

    def build(self, input_shape):
        self.built = True

    def call(self, inputs):
        inputs = ops.cast(inputs, self.compute_dtype)
        mean = ops.convert_to_tensor(np.asarray(self.mean, dtype=self.compute_dtype))
        std = ops.convert_to_tensor(np.maximum(np.sqrt(np.asarray(self.variance, dtype="float64")),
                                               keras.backend.epsilon()).astype(self.compute_dtype))
        if self.invert:
            return inputs * std + mean
        return (inputs - mean) / std

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"mean": self.mean, "variance": self.variance, "invert": self.invert})
        return config
