"""The simplest strong baseline of a dataset, scored on the split the model is judged on.

What is fitted, on the rows the model learned from (train and val: the model's search selected on
val and stopped early on it, so the baseline gets those rows too), and scored on the test split:

- a table (a CSV or DataFrame): scikit-learn's `HistGradientBoostingClassifier`/`Regressor` with
  default settings, `random_state` the data's seed (0 without one), on the raw columns: numbers
  as they are, categories as pandas categoricals (native categorical support; the most frequent
  `MAX_CATEGORIES - 1` kept, the rest one "other" category), booleans as 0/1, dates as days and
  calendar parts (`zoo.tabular.CALENDAR_PARTS`), missing values as NaN;
- plain arrays (bundled datasets, `.npz`): the same boosting on the flattened features;
- images (4-D arrays): a logistic regression (ridge for a regression) on the standardized pixels,
  block-averaged down to at most `MAX_IMAGE_SIDE` per side;
- a series (`Dataset.series`): the last-value forecast or, with a season, the seasonal-naive one,
  whichever has the lower error on the training windows (chosen there, not on the test).

The comparison metric is scikit-learn's `score` of the baseline's kind: accuracy for a
classification, R² for a regression (higher is better; a gap in points, hundredths); a forecast is
compared on the mean absolute error (lower is better; the gap as the model's error over the
baseline's). MAE rather than MASE: on the same test windows their ratio is the same (MASE divides
both by one training-series scale), and MAE is in the target's own units, which the naive MASE,
not 1.0 on a test split, would hide.

>>> baseline = score_baseline(data)
>>> baseline.against(report.metrics[baseline.metric]).verdict()
'model beats HistGradientBoostingClassifier on accuracy: 0.912 vs 0.887 (+2.5 points)'
"""

import dataclasses
import math

import numpy as np

MAX_CATEGORIES = 255  # HistGradientBoosting's most categories per column (its `max_bins`)
MAX_IMAGE_SIDE = 32  # larger images are block-averaged down: a linear model on pixels, not a CNN
# the report's metric names (scikit-learn's) and how the verdict line names them
METRIC_LABELS = {"accuracy_score": "accuracy", "r2_score": "R²", "mean_absolute_error": "MAE"}


@dataclasses.dataclass(frozen=True)
class Baseline:
    """A baseline's score on the test split beside the model's, on one metric.

    Attributes:
        name: what was fitted ("HistGradientBoostingClassifier", "naive forecast", ...).
        metric: the report's metric name ("accuracy_score", "r2_score", "mean_absolute_error").
        score: the baseline's value of `metric`.
        model_score: the model's value of `metric` (None until `against`).
        higher_is_better: False for errors.
    """

    name: str
    metric: str
    score: float
    model_score: float = None
    higher_is_better: bool = True

    def against(self, model_score):
        """This baseline beside the model's score on the same metric."""
        return dataclasses.replace(self, model_score=None if model_score is None else float(model_score))

    @property
    def comparable(self):
        """Both scores defined (an R² of one test row, or a NaN forecast, is not)."""
        return self.model_score is not None and math.isfinite(self.model_score) and math.isfinite(self.score)

    @property
    def model_wins(self):
        """True when the model is strictly better, None when the scores are not comparable."""
        if not self.comparable:
            return None
        if self.higher_is_better:
            return self.model_score > self.score
        return self.model_score < self.score

    def verdict(self):
        """One line: whether the model beats the baseline, and by how much."""
        label = METRIC_LABELS.get(self.metric, self.metric)
        if not self.comparable:
            return (f"model vs {self.name} on {label}: {self.model_score} vs {self.score:.3f} "
                    f"(not comparable: a score is undefined)")
        tied = self.model_score == self.score
        word = "ties with" if tied else "beats" if self.model_wins else "loses to"
        if self.higher_is_better:
            gap = f"{100 * (self.model_score - self.score):+.1f} points".replace("-", "\u2212")
        elif self.score > 0:
            gap = f"{self.model_score / self.score:.2f}\u00d7 its error"
        else:  # a perfect baseline: no ratio
            gap = f"{self.model_score - self.score:+.3g}"
        return f"model {word} {self.name} on {label}: {self.model_score:.3f} vs {self.score:.3f} ({gap})"

    def to_html(self):
        """The report page's baseline section: the verdict and both scores."""
        from html import escape

        rows = "".join(f"<tr><td>{escape(who)}</td><td>{'—' if score is None else f'{score:.4g}'}</td></tr>"
                       for who, score in (("model", self.model_score), (self.name, self.score)))
        return (f'<h2>Baseline</h2><p class="verdict">{escape(self.verdict())}</p>'
                f'<table class="baseline"><tr><th>on the same split</th><th>{escape(self.metric)}</th>'
                f"</tr>{rows}</table>")

    def to_dict(self):
        return {"name": self.name, "metric": self.metric, "score": self.score,
                "model_score": self.model_score, "higher_is_better": self.higher_is_better,
                "model_wins": self.model_wins, "verdict": self.verdict()}


def score_baseline(data, *, seed=None, fit_on=("train", "val"), score_on="test"):
    """Fit the baseline of a `zoo.data.Dataset` on the `fit_on` splits and score it on `score_on`.

    Args:
        data: a `zoo.data.Dataset` of task binary, multiclass or regression.
        seed: the boosting's `random_state`; None takes the data's `seed` attribute, else 0.
        fit_on: the splits the baseline learns from (the model's: train and val).
        score_on: the split it is judged on.

    Returns:
        A `Baseline` (compare it with `against(model_score)`), or None when `score_on` is empty
        or the task has no baseline (reconstruction, verification).
    """
    from threadpoolctl import threadpool_limits

    if data.task not in ("binary", "multiclass", "regression") or not len(_split(data, score_on)[1]):
        return None
    if data.series is not None and data.series.get("target_index") is not None:
        return _forecast_baseline(data, fit_on, score_on)
    seed = getattr(data, "seed", None) if seed is None else seed
    if hasattr(data.X_train, "downscaled"):  # images streamed from disk
        return _image_baseline(data, fit_on, score_on, seed=0 if seed is None else int(seed))
    y_fit = np.concatenate([_split(data, name)[1] for name in fit_on])
    y_score = _split(data, score_on)[1]
    name, estimator, X_fit, X_score = _estimator_and_inputs(data, fit_on, score_on,
                                                            seed=0 if seed is None else int(seed),
                                                            target_dims=y_fit.ndim)
    # one thread: OpenMP's workers spin against TensorFlow's on a busy machine (digits' boosting
    # took 1.6 s on one thread, 12 to 17 s on both of two shared cores)
    with threadpool_limits(1):
        estimator.fit(X_fit, y_fit)
        if data.series is not None:  # the target is not among the window's features: no naive forecast
            predicted = estimator.predict(X_score).reshape(np.shape(y_score))
            return Baseline(name, "mean_absolute_error", _mae(y_score, predicted), higher_is_better=False)
        metric = "r2_score" if data.task == "regression" else "accuracy_score"
        return Baseline(name, metric, float(estimator.score(X_score, y_score)))


def _estimator_and_inputs(data, fit_on, score_on, *, seed, target_dims):
    """`(name, estimator, X_fit, X_score)`: boosting on a table's raw columns or on flattened
    arrays, a linear model on an image's pixels."""
    if data.inputs is not None and data.schema is not None:
        fit_inputs = _rows(data.inputs, fit_on)
        encode = _table_encoder(data.schema, fit_inputs)
        return (*_boosting(data.task, seed, target_dims), encode(fit_inputs),
                encode(data.inputs[score_on]))
    X_fit = np.concatenate([_split(data, name)[0] for name in fit_on])
    X_score = _split(data, score_on)[0]
    if X_fit.ndim == 4:
        return (*_linear_on_pixels(data.task), _downscale(X_fit), _downscale(X_score))
    return (*_boosting(data.task, seed, target_dims), _flat(X_fit), _flat(X_score))


MAX_BASELINE_IMAGES = 5000  # a stratified sample of each split it learns from: memory stays flat


def _image_baseline(data, fit_on, score_on, *, seed):
    """The linear model on pixels of streamed image splits (`zoo.images.ImageSplit.downscaled`:
    block-averaged batch by batch; at most MAX_BASELINE_IMAGES of each fit split)."""
    from threadpoolctl import threadpool_limits

    name, estimator = _linear_on_pixels(data.task)
    parts = [_split(data, part)[0].downscaled(MAX_IMAGE_SIDE, limit=MAX_BASELINE_IMAGES, seed=seed)
             for part in fit_on if len(_split(data, part)[0])]
    X_score, y_score = _split(data, score_on)[0].downscaled(MAX_IMAGE_SIDE)
    with threadpool_limits(1):
        estimator.fit(np.concatenate([X for X, _ in parts]), np.concatenate([y for _, y in parts]))
        metric = "r2_score" if data.task == "regression" else "accuracy_score"
        return Baseline(name, metric, float(estimator.score(X_score, y_score)))


def _split(data, name):
    return getattr(data, f"X_{name}"), getattr(data, f"y_{name}")


def _rows(inputs, names):
    """The raw inputs of several splits, in order, as one."""
    return {column: np.concatenate([inputs[name][column] for name in names])
            for column in inputs[names[0]]}


def _mae(y_true, y_pred):
    return float(np.mean(np.abs(np.asarray(y_true, "float64") - np.asarray(y_pred, "float64"))))


# === Estimators ===


def _boosting(task, seed, target_dims):
    """`(name, estimator)`: default gradient boosting (one per target column for 2-D targets)."""
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
    )
    from sklearn.multioutput import MultiOutputRegressor

    if task != "regression":
        return "HistGradientBoostingClassifier", HistGradientBoostingClassifier(random_state=seed)
    regressor = HistGradientBoostingRegressor(random_state=seed)
    return "HistGradientBoostingRegressor", regressor if target_dims == 1 else MultiOutputRegressor(regressor)


def _linear_on_pixels(task):
    """`(name, estimator)`: a linear model on standardized pixels (missing ones imputed)."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    linear = Ridge() if task == "regression" else LogisticRegression(max_iter=1000)
    return (f"{type(linear).__name__} on pixels",
            make_pipeline(SimpleImputer(keep_empty_features=True), StandardScaler(), linear))


def _flat(X):
    X = np.asarray(X, dtype="float32")
    return X.reshape(len(X), -1)


def _downscale(images):
    """(n, h, w, c) images block-averaged to at most MAX_IMAGE_SIDE per side, flattened."""
    images = np.asarray(images, dtype="float32")
    _, height, width, channels = images.shape
    factor_h, factor_w = -(-height // MAX_IMAGE_SIDE), -(-width // MAX_IMAGE_SIDE)
    height, width = height - height % factor_h, width - width % factor_w
    blocks = images[:, :height, :width].reshape(
        len(images), height // factor_h, factor_h, width // factor_w, factor_w, channels)
    return blocks.mean(axis=(2, 4)).reshape(len(images), -1)


# === Tables ===


def _table_encoder(schema, fit_inputs):
    """A function from raw inputs (`zoo.tabular.frame_to_inputs`) to the boosting's DataFrame:
    one or more numeric columns per feature, categories as pandas categoricals with the fit
    rows' vocabulary."""
    from zoo.tabular import boolean_values

    vocabularies = {c.name: _vocabulary(_strings(fit_inputs[c.name].ravel())) for c in schema.features
                    if c.kind == "categorical"}

    def encode(inputs):
        import pandas as pd

        columns, rows = {}, len(next(iter(inputs.values())))
        for column in schema.features:
            values = inputs[column.name].ravel()
            if column.kind == "categorical":
                columns[column.name] = _categorical(_strings(values), vocabularies[column.name])
            elif column.kind == "datetime":
                columns.update(_calendar(column, values))
            elif column.kind == "boolean":  # words ("yes"/"no") or numbers: 1/0, NaN when missing
                columns[column.name] = boolean_values(values)
            else:
                columns[column.name] = values.astype("float64")
        return pd.DataFrame(columns, index=pd.RangeIndex(rows))

    return encode


OTHER = "\x00other"  # the category of the values past the MAX_CATEGORIES - 1 most frequent


def _strings(values):
    """A categorical column's values as strings, "" when missing (frame_to_inputs gives numbers
    of a numeric-coded column as float32, NaN when missing)."""
    if values.dtype == object:
        return values
    return np.array(["" if np.isnan(v) else str(v) for v in values], dtype=object)


def _vocabulary(values):
    """The fit rows' categories in value order (as pandas orders them); past the cap, the most
    frequent (ties in value order) and OTHER for the rest."""
    import pandas as pd

    counts = pd.Series(values[values != ""]).value_counts()
    if len(counts) <= MAX_CATEGORIES:
        return sorted(counts.index)
    kept = sorted(counts.index, key=lambda value: (-counts[value], value))[:MAX_CATEGORIES - 1]
    return sorted(kept) + [OTHER]


def _categorical(values, vocabulary):
    import pandas as pd

    values = np.where(values != "", values, None).astype(object)
    if vocabulary and vocabulary[-1] == OTHER:  # too many values: the rare and unseen ones grouped
        known = set(vocabulary)
        values = np.array([v if v is None or v in known else OTHER for v in values], dtype=object)
    return pd.Categorical(values, categories=vocabulary)


def _calendar(column, strings):
    """{name_part: values} for each of zoo.tabular.CALENDAR_PARTS, NaN where the date is missing."""
    import pandas as pd

    from zoo.tabular import CALENDAR_PARTS, parse_dates

    days = parse_dates(strings, column.date_format)
    stamps = pd.Series(pd.to_datetime(days, unit="D"))
    parts = {"days": days, "year": stamps.dt.year, "month": stamps.dt.month,
             "day": stamps.dt.day, "weekday": stamps.dt.weekday}
    return {f"{column.name}_{part}": np.asarray(parts[part], dtype="float64") for part in CALENDAR_PARTS}


# === Series ===


def _forecast_baseline(data, fit_on, score_on):
    """The naive or seasonal-naive forecast, whichever errs less on the `fit_on` windows."""
    from zoo.series import carried_forward, naive_forecast, seasonal_naive_forecast

    index, season, horizon = (data.series[k] for k in ("target_index", "season", "horizon"))
    X_fit = np.concatenate([_split(data, name)[0] for name in fit_on])
    y_fit = np.concatenate([_split(data, name)[1] for name in fit_on])
    fallback = float(np.mean(y_fit))
    forecasts = {"naive forecast": lambda X: naive_forecast(X, target_index=index)}
    lag = season * -(-horizon // season) if season else None
    if season and lag <= X_fit.shape[1] - 1 + horizon:  # the window reaches a season back
        forecasts["seasonal-naive forecast"] = lambda X: seasonal_naive_forecast(
            X, target_index=index, season=season, horizon=horizon)
    X_fit = carried_forward(X_fit, index, fallback)
    errors = {name: _mae(y_fit, forecast(X_fit)) for name, forecast in forecasts.items()}
    name = min(errors, key=errors.get)  # the naive forecast on a tie: it comes first
    X_score, y_score = _split(data, score_on)
    predicted = forecasts[name](carried_forward(X_score, index, fallback))
    return Baseline(name, "mean_absolute_error", _mae(y_score, predicted), higher_is_better=False)
