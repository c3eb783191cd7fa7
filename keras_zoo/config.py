"""The run configuration (`zoo run` / `zoo tune` YAML), parsed with `yaml.safe_load` and validated
into typed objects; every error names its key path and the value received."""

import hashlib
import json
import os
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from export._options import FORMATS
from tuning.options import ALGORITHMS, SearchOptions
from tuning.pruning import PRUNERS
from zoo.errors import InvalidParameterError, suggest
from zoo.tasks import SUPERVISED_TASKS


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SeriesConfig(_Section):
    """A CSV ordered in time, windowed: `window` past steps of `features` predict `target`
    `horizon` steps after the window; `season` adds the seasonal-naive baseline to the report."""

    target: str = Field(min_length=1)
    features: Optional[list[str]] = Field(None, min_length=1)
    window: int = Field(ge=1)
    horizon: int = Field(1, ge=1)
    season: Optional[int] = Field(None, ge=2)


class DataConfig(_Section):
    source: str = Field(min_length=1)
    target: Optional[str] = None
    shape: Literal["flat", "image"] = "flat"
    test_size: float = Field(0.2, gt=0.0, lt=1.0)
    val_size: float = Field(0.1, ge=0.0, lt=1.0)
    seed: int = Field(0, ge=0)
    # "model": preprocessing fitted on the training split goes inside the model (the default);
    # the others transform the arrays outside it, for experiments
    scale: Literal["model", "auto", "standard", "minmax", "none"] = "model"
    # CSV column kinds replacing the inferred ones: {column: numeric|categorical|boolean|datetime|drop}
    columns: Optional[dict[str, str]] = None
    series: Optional[SeriesConfig] = None


TRANSFER_FAMILY = "transfer"


class ModelConfig(_Section):
    name: Optional[str] = None
    families: Optional[list[str]] = Field(None, min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    # transfer learning: a saved .keras model cut at `transfer_layer` (default its penultimate
    # layer) with a new head; its base frozen, then its top `fine_tune_layers` fine-tuned
    transfer_from: Optional[str] = Field(None, min_length=1)
    transfer_layer: Optional[str] = Field(None, min_length=1)
    freeze: bool = True
    fine_tune_layers: int = Field(0, ge=0)
    # 'balanced' or {class: weight}, computed from the training split only
    class_weight: Optional[Any] = None

    @field_validator("class_weight")
    @classmethod
    def _class_weight_form(cls, value):
        from zoo.class_weights import check_class_weight

        try:
            return check_class_weight(value)
        except (ValueError, TypeError):
            raise ValueError("must be 'balanced' or a mapping of class to a weight > 0") from None

    @model_validator(mode="after")
    def _one_of_name_or_families(self):
        if self.transfer_from is not None:
            if self.name is not None or self.families is not None:
                raise ValueError("give `transfer_from` (a saved model with a new head) or `name`/"
                                 "`families` (catalog models), not both")
            return self
        if (self.name is None) == (self.families is None):
            raise ValueError("give exactly one of `name` (one model) or `families` (architecture search)")
        if self.transfer_layer is not None or self.fine_tune_layers or not self.freeze:
            raise ValueError("`transfer_layer`, `freeze` and `fine_tune_layers` apply only with `transfer_from`")
        return self

    @model_validator(mode="after")
    def _fine_tune_needs_freeze(self):
        if self.fine_tune_layers and not self.freeze:
            raise ValueError("`fine_tune_layers` needs `freeze: true` (with `freeze: false` the whole "
                             "base trains from the start)")
        return self

    @property
    def family_names(self):
        if self.transfer_from is not None:
            return [TRANSFER_FAMILY]
        return list(self.families) if self.families else [self.name]

    @property
    def transfer(self):
        """The transfer settings as `ZooHyperModel(transfer=...)` takes them, or None."""
        if self.transfer_from is None:
            return None
        return {"source": self.transfer_from, "layer": self.transfer_layer, "freeze": self.freeze,
                "fine_tune_layers": self.fine_tune_layers}


class SearchConfig(_Section):
    algorithm: Literal[ALGORITHMS] = "hyperband"  # chosen from benchmarks/ figure 3 (README)
    objective: Optional[str] = None
    max_trials: int = Field(10, ge=1)
    max_epochs: int = Field(10, ge=1)
    time_budget: Optional[float] = Field(None, gt=0)
    seed: int = Field(0, ge=0)
    cv_folds: Optional[int] = Field(None, ge=2)
    batch_sizes: list[int] = Field(default_factory=lambda: [32], min_length=1)
    max_consecutive_failures: int = Field(3, ge=1)
    early_stopping_patience: Optional[int] = Field(None, ge=1)
    pruner: Literal[PRUNERS] = "none"
    # deployment-aware search: {cost: limit} over params, flops, tflite_size_kb, tflite_latency_ms;
    # several objectives (the model metric first, then costs) keep a Pareto front, and `select`
    # picks the member retrained and exported (`knee`, or an objective's name)
    constraints: Optional[dict[str, float]] = None
    objectives: Optional[list[str]] = None
    select: Optional[str] = None
    tune_training: bool = True
    # distributed search: seconds without contact before a worker's trial is handed on
    worker_timeout: Optional[float] = Field(None, gt=0)


class TrackingConfig(_Section):
    uri: Optional[str] = None
    experiment: str = Field("keras-zoo", min_length=1)
    register_model: Optional[str] = None
    enabled: bool = True


class EvaluateConfig(_Section):
    enabled: bool = True


class ExportConfig(_Section):
    enabled: bool = False
    formats: list[str] = Field(default_factory=lambda: list(FORMATS))
    quantize: list[str] = Field(default_factory=list)
    # with search.objectives: every member of the Pareto front retrained and exported to front/
    front: bool = False


class RunConfig(_Section):
    data: DataConfig
    task: Optional[Literal[SUPERVISED_TASKS]] = None
    model: ModelConfig
    search: SearchConfig = SearchConfig()
    tracking: TrackingConfig = TrackingConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    export: ExportConfig = ExportConfig()

    def fingerprint(self):
        """A hash of everything that decides the trial sequence (not tracking or outputs)."""
        decisive = self.model_dump(include={"data", "task", "model", "search"})
        return hashlib.sha256(json.dumps(decisive, sort_keys=True, default=str).encode()).hexdigest()[:16]


def search_options(config, directory, *, verbose=False, retrain=True, **overrides):
    """The `tuning.SearchOptions` a `RunConfig` describes, searching in `directory`."""
    model, search, tracking = config.model, config.search, config.tracking
    options = dict(
        families=tuple(model.family_names), params=model.params, algorithm=search.algorithm,
        objective=search.objective, max_trials=search.max_trials, max_epochs=search.max_epochs,
        time_budget=search.time_budget, seed=search.seed, cv_folds=search.cv_folds,
        batch_sizes=tuple(search.batch_sizes),
        max_consecutive_failures=search.max_consecutive_failures,
        early_stopping_patience=search.early_stopping_patience, pruner=search.pruner,
        constraints=search.constraints, objectives=search.objectives, select=search.select,
        tune_training=search.tune_training, class_weight=model.class_weight,
        transfer=model.transfer, directory=directory, tracking_uri=tracking.uri,
        experiment=tracking.experiment, tracking=tracking.enabled,
        register_model=tracking.register_model, fingerprint=config.fingerprint(),
        verbose=verbose, retrain=retrain)
    options.update(overrides)
    return SearchOptions(**options)


def _message(error, data):
    path = ".".join(str(p) for p in error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        section = error["loc"][:-1]
        model = RunConfig
        for part in section:
            model = model.model_fields[part].annotation if part in model.model_fields else model
        known = list(getattr(model, "model_fields", {}))
        return f"`{path}` is not a known key.{suggest(error['loc'][-1], known)} Known: {', '.join(known)}"
    if kind == "missing":
        return f"`{path}` is required"
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    if kind == "value_error" and not error["loc"]:
        return message
    received = error.get("input")
    return f"`{path}`: {message[0].lower() + message[1:]}. Received: {path}={received!r}"


def parse_config(data, *, source="config"):
    """Validate a mapping into a `RunConfig`; raise `InvalidParameterError` naming the key path."""
    if not isinstance(data, dict):
        raise InvalidParameterError(
            f"`{source}` must be a YAML mapping with sections data, model, search... "
            f"Received: {type(data).__name__}"
        )
    try:
        return RunConfig.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        if first["loc"] and first["loc"][0] == "model" and first["type"] == "value_error":
            raise InvalidParameterError(_message(first, data)) from None
        raise InvalidParameterError(_message(first, data)) from None


def load_config(path):
    """Read a YAML config with `yaml.safe_load` (no Python tags) and validate it."""
    import yaml

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InvalidParameterError(f"`config` file does not exist. Received: config={path!r}")
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8")
        data = yaml.safe_load(text)
    except UnicodeDecodeError:
        raise InvalidParameterError(f"`config` is not a UTF-8 text file. Received: config={path!r}") from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise InvalidParameterError(f"`config` is not valid YAML{line}: {problem}. Received: config={path!r}") from None
    if data is None:
        raise InvalidParameterError(f"`config` is empty. Received: config={path!r}")
    return parse_config(data, source="config")
