"""Every option a user sets, declared once (name, type, range, default, one line of help), and its
projections: the run config's sections, `AutoModel`'s parameters and `tuning.search()`'s
`SearchOptions`. No TensorFlow import, so configs and the CLI are checked before the slow import.

A declaration is a pydantic field made by `option(default, help, ...)`; `param=` gives its flat
name where the section's name would collide or read badly outside the YAML (`tracking.uri` is
`tracking_uri` as a parameter), `doors=` the doors it is offered at besides the config."""

import dataclasses
import hashlib
import json
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tuning.pruning import PRUNERS
from zoo.errors import InvalidParameterError, suggest, unknown_name
from zoo.tasks import CLASSIFICATION_TASKS, SUPERVISED_TASKS

ALGORITHMS = ("random", "grid", "bayesian", "hyperband", "evolution", "tpe")
# f1_macro, balanced_accuracy and a multiclass auc are compiled in only when the objective names
# them (zoo.training.objective_metrics)
TASK_METRICS = {
    "binary": ("loss", "accuracy", "auc", "f1_macro", "balanced_accuracy"),
    "multiclass": ("loss", "accuracy", "f1_macro", "balanced_accuracy", "auc"),
    "regression": ("loss", "mae", "rmse"),
}
MAXIMIZED = ("accuracy", "auc", "f1_macro", "balanced_accuracy")

# the doors an option can be set at besides the YAML config (which takes every option)
AUTOMODEL, SEARCH = "automodel", "search"
BOTH = (AUTOMODEL, SEARCH)


def option(default, help, *, param=None, doors=(), **constraints):
    """One declared option: its default, its one line of help, its range (pydantic's `ge`, `gt`,
    `min_length`...), its flat name outside the YAML and the doors that offer it."""
    return Field(default, description=help, json_schema_extra={"param": param, "doors": list(doors)},
                 **constraints)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _as_tuple(value):
    """A YAML list or a Python list/tuple as a tuple; one name as a tuple of one."""
    if isinstance(value, str):
        return (value,)
    return tuple(value) if isinstance(value, list) else value


class SeriesOptions(_Section):
    """A CSV ordered in time, windowed: `window` past steps of `features` predict `target`
    `horizon` steps after the window; `season` adds the seasonal-naive baseline to the report."""

    target: str = option(..., "the column forecast", min_length=1)
    features: Optional[list[str]] = option(None, "columns fed as inputs (default: the target alone)",
                                           min_length=1)
    window: int = option(..., "past steps in one input window", ge=1)
    horizon: int = option(1, "how many steps after the window the forecast is for", ge=1)
    season: Optional[int] = option(None, "season length in steps (adds seasonal-naive)", ge=2)

    @model_validator(mode="after")
    def _season_within_window(self):
        if self.season is not None and self.season > self.window:
            # the seasonal-naive value a forecast starts from must lie inside its window
            raise ValueError(f"`data.series.season` must be at most `data.series.window` "
                             f"({self.window}). Received: data.series.season={self.season}")
        return self


class DataOptions(_Section):
    source: str = option(..., "a bundled dataset name, a .npz or .csv file, or a folder of images "
                              "with one subfolder per class", min_length=1)
    target: Optional[str] = option(None, "the label column of a CSV")
    shape: Literal["flat", "image"] = option("flat", "digits as 64 features (flat) or 8x8x1 (image)")
    test_size: float = option(0.2, "share of the rows held out for the test report", gt=0.0, lt=1.0)
    val_size: float = option(0.1, "share of the rows held out to score trials", doors=(AUTOMODEL,),
                             ge=0.0, lt=1.0)
    seed: int = option(0, "seed of the split (AutoModel's `seed` seeds split and search)",
                       doors=(AUTOMODEL,), ge=0)
    # "model": preprocessing fitted on the training split goes inside the model (the default);
    # the others transform the arrays outside it, for experiments
    scale: Literal["model", "auto", "standard", "minmax", "none"] = option(
        "model", "preprocessing inside the model (model), or outside it")
    columns: Optional[dict[str, str]] = option(
        None, "CSV column kinds replacing the inferred ones: {column: numeric|categorical|boolean|"
              "datetime|drop}", doors=(AUTOMODEL,))
    series: Optional[SeriesOptions] = option(None, "window a CSV ordered in time for forecasting")
    image_size: Optional[tuple[int, int]] = option(
        None, "images: (height, width) they are decoded and resized to (default: inferred from the "
              "files)", doors=(AUTOMODEL,))

    @field_validator("image_size", mode="before")
    @classmethod
    def _two_positive_ints(cls, value):
        from zoo.images import is_image_size

        if value is not None and not is_image_size(value):
            raise ValueError("must be two positive integers (height, width)")
        return None if value is None else tuple(value)


TRANSFER_FAMILY = "transfer"


class ModelOptions(_Section):
    name: Optional[str] = option(None, "one catalog model (or give `families`)")
    families: Optional[tuple[str, ...]] = option(
        None, "catalog models to search among (default: those that suit the data)",
        doors=BOTH, min_length=1)
    params: Optional[dict[str, Any]] = option(None, "fixed builder parameters and training options",
                                              doors=BOTH)
    transfer_from: Optional[str] = option(None, "a saved .keras model to transfer from, with a new "
                                                "head", min_length=1)
    transfer_layer: Optional[str] = option(None, "where to cut it (default: its penultimate layer)",
                                           min_length=1)
    freeze: bool = option(True, "freeze the transferred base, then fine-tune its top layers")
    fine_tune_layers: int = option(0, "top layers of the base fine-tuned after the frozen phase",
                                   ge=0)
    class_weight: Optional[Any] = option(
        None, "'balanced' or {class: weight}, computed from the training split", doors=BOTH)

    @field_validator("families", mode="before")
    @classmethod
    def _families_form(cls, value):
        return _as_tuple(value)

    @field_validator("class_weight")
    @classmethod
    def _class_weight_form(cls, value):
        from zoo.class_weights import check_class_weight

        try:
            return check_class_weight(value)
        except (ValueError, TypeError):
            raise ValueError("must be 'balanced' or a mapping of class to a weight > 0") from None

    @model_validator(mode="after")
    def _one_way_to_name_models(self):
        if self.transfer_from is not None:
            if self.name is not None or self.families is not None:
                raise ValueError("give `transfer_from` (a saved model with a new head) or `name`/"
                                 "`families` (catalog models), not both")
            if self.fine_tune_layers and not self.freeze:
                raise ValueError("`fine_tune_layers` needs `freeze: true` (with `freeze: false` the "
                                 "whole base trains from the start)")
            return self
        if self.name is not None and self.families is not None:
            raise ValueError("give at most one of `name` (one model) or `families` (architecture search)")
        if self.transfer_layer is not None or self.fine_tune_layers or not self.freeze:
            raise ValueError("`transfer_layer`, `freeze` and `fine_tune_layers` apply only with `transfer_from`")
        return self

    @property
    def family_names(self):
        """The families searched: None when the data should choose (`tuning.space.families_for`)."""
        if self.transfer_from is not None:
            return [TRANSFER_FAMILY]
        if self.name is not None:
            return [self.name]
        return list(self.families) if self.families else None

    @property
    def transfer(self):
        """The transfer settings as `ZooHyperModel(transfer=...)` takes them, or None."""
        if self.transfer_from is None:
            return None
        return {"source": self.transfer_from, "layer": self.transfer_layer, "freeze": self.freeze,
                "fine_tune_layers": self.fine_tune_layers}


class SearchSection(_Section):
    # the defaults (hyperband, 10 epochs, no pruning, no early stopping) come from benchmarks/
    # figure 3 (README)
    algorithm: Literal[ALGORITHMS] = option("hyperband", "the search algorithm", doors=BOTH)
    objective: Optional[str] = option(
        None, "the metric trials are scored by (default val_accuracy, or val_loss for regression)",
        doors=BOTH)
    max_trials: Optional[int] = option(
        None, "trials at most (default: 10, or as many as `time_budget` allows when it is set)",
        doors=BOTH, ge=1)
    max_epochs: int = option(10, "epochs of a trial at most (and of the retrained best)", doors=BOTH,
                             ge=1)
    time_budget: Optional[float] = option(None, "seconds for the trials and the final training",
                                          doors=BOTH, gt=0)
    seed: int = option(0, "seed of the search and of every trial", doors=BOTH, ge=0)
    cv_folds: Optional[int] = option(None, "score each trial as the mean over k folds (default: "
                                           "5 folds for a table below `cv_below` rows)", doors=BOTH,
                                     ge=2)
    cv_below: Optional[int] = option(
        None, "training + validation rows of a table below which trials are cross-validated "
              "when `cv_folds` is not set (default 1000; 0: never)", doors=BOTH, ge=0)
    ensemble_size: int = option(
        1, "the best k distinct trials, each retrained as the best is, averaged as one model (1: "
           "the best alone)", doors=BOTH, ge=1)
    refit: bool = option(True, "retrain the best on the training and validation rows together, "
                               "for the epochs its validation fit chose", doors=BOTH)
    batch_sizes: tuple[Annotated[int, Field(ge=1)], ...] = option(
        (32,), "batch sizes (more than one makes it a hyperparameter)", doors=BOTH, min_length=1)
    max_consecutive_failures: int = option(3, "failed trials in a row that stop the search",
                                           doors=BOTH, ge=1)
    early_stopping_patience: Optional[int] = option(None, "epochs without progress that end a trial",
                                                    doors=BOTH, ge=1)
    pruner: Literal[PRUNERS] = option("none", "stop unpromising trials early", doors=BOTH)
    constraints: Optional[dict[str, float]] = option(
        None, "limits on costs: {params|flops|tflite_size_kb|tflite_latency_ms: limit}", doors=BOTH)
    objectives: Optional[tuple[str, ...]] = option(
        None, "several objectives (the model metric, then costs): a Pareto front", doors=BOTH)
    select: Optional[str] = option(None, "the front member retrained and exported: knee or an "
                                         "objective", doors=BOTH)
    tune_training: bool = option(True, "search the learning rate and optimizer too", doors=BOTH)
    worker_timeout: Optional[float] = option(
        None, "seconds without contact before a worker's trial is handed on (default 30)",
        doors=BOTH, gt=0)
    # how trials run, not which: left out of the fingerprint (`RUNNING_OPTIONS`)
    parallel: int = option(1, "trials at once, each in a worker process of its own (the cores "
                              "split between them, one GPU each when there are GPUs)",
                           param="n_jobs", doors=BOTH, ge=1)
    trials_per_worker: int = option(10, "trials a worker process runs before a fresh one takes "
                                        "its place (TensorFlow frees a trial's graphs only with its "
                                        "process)", doors=BOTH, ge=1)
    worker_memory_mb: Optional[int] = option(4096, "a worker process whose resident memory passes "
                                                   "this after a trial is replaced (null: no bound)",
                                             doors=BOTH, ge=1)

    @field_validator("batch_sizes", "objectives", mode="before")
    @classmethod
    def _tuples(cls, value):
        return _as_tuple(value)


class TrackingOptions(_Section):
    uri: Optional[str] = option(None, "MLflow tracking URI (default: MLFLOW_TRACKING_URI, else "
                                      "sqlite:///mlflow.db)", param="tracking_uri", doors=BOTH)
    experiment: str = option("keras-zoo", "MLflow experiment", doors=BOTH, min_length=1)
    register_model: Optional[str] = option(None, "register the best model under this name",
                                           doors=BOTH)
    enabled: bool = option(True, "log the search to MLflow", param="tracking", doors=BOTH)


class UserOptions(_Section):
    """The root of the specification: every option a user sets, by section."""

    data: DataOptions
    task: Optional[Literal[SUPERVISED_TASKS]] = option(
        None, "binary | multiclass | regression (default: inferred from the target)",
        doors=(AUTOMODEL,))
    model: ModelOptions = ModelOptions()
    search: SearchSection = SearchSection()
    tracking: TrackingOptions = TrackingOptions()

    def fingerprint(self, extra=None):
        """A hash of everything that decides the trial sequence (not tracking), and `extra`
        (AutoModel: a hash of the rows it was given)."""
        decisive = self.model_dump(include={"data", "task", "model", "search"},
                                   exclude={"search": set(RUNNING_OPTIONS)})
        decisive["extra"] = extra
        return hashlib.sha256(json.dumps(decisive, sort_keys=True, default=str).encode()).hexdigest()[:16]


SECTIONS = ("data", "model", "search", "tracking")
# how the trials run, not which trials: a search resumes, and a distributed worker joins, whatever
# they are set to (the fingerprint leaves them out)
RUNNING_OPTIONS = ("worker_timeout", "parallel", "trials_per_worker", "worker_memory_mb")


@dataclasses.dataclass(frozen=True)
class Declared:
    """One option as declared: where it lives, its flat name, its default and help."""

    path: tuple  # ("search", "max_trials"), or ("task",)
    param: str
    default: Any
    help: str
    doors: tuple


def declared(root=UserOptions):
    """Every declared option, in declaration order."""
    found = []
    for name, info in root.model_fields.items():
        annotation = info.annotation
        if name in SECTIONS:
            for field, sub in annotation.model_fields.items():
                found.append(_declared((name, field), sub))
        elif isinstance(info.json_schema_extra, dict):
            found.append(_declared((name,), info))
    return found


def _declared(path, info):
    extra = info.json_schema_extra or {}
    return Declared(path=path, param=extra.get("param") or path[-1],
                    default=None if info.is_required() else info.default,
                    help=info.description or "", doors=tuple(extra.get("doors") or ()))


def parameters(door):
    """{flat name: Declared} of the options a door offers; a name offered twice (AutoModel's
    `seed`: the split's and the search's) keeps its first declaration."""
    found = {}
    for item in declared():
        if door in item.doors:
            found.setdefault(item.param, item)
    return found


def flat_values(options, door):
    """{flat name: value} of validated options (`UserOptions` or a config) at a door; the
    families as the model section names them (a named model, a transfer's pseudo-family)."""
    values = {}
    for name, item in parameters(door).items():
        value = options
        for key in item.path:
            value = getattr(value, key)
        values[name] = value
    values["families"] = options.model.family_names
    return values


def nest(values, door, *, data=None):
    """The nested sections of flat `values` given at `door` (a name offered twice goes to each
    place it is declared); `data` fills the data section."""
    nested = {"data": dict(data or {"source": "arrays"})}
    for item in declared():
        if door in item.doors and item.param in values:
            section = nested
            for key in item.path[:-1]:
                section = section.setdefault(key, {})
            section[item.path[-1]] = values[item.param]
    return nested


def validate(nested, *, root=UserOptions, door="config"):
    """`root` (`UserOptions`, or the config's `RunConfig`) from nested sections, or one
    `InvalidParameterError` naming the key path (config) or the parameter (AutoModel, search) and
    the value received."""
    try:
        return root.model_validate(nested)
    except ValidationError as error:
        first = error.errors()[0]
        if first["type"] == "literal_error":  # an unknown name: the did-you-mean error
            raise unknown_name(_path(first["loc"], root, door), first["input"],
                               first["ctx"]["expected"].replace("'", "").replace(" or ", ", ").split(", ")) from None
        raise InvalidParameterError(error_message(first, root, door)) from None


def _path(loc, root, door):
    """How a message names an option: its key path, or outside the YAML at AutoModel's door its
    parameter name."""
    return _param_name(loc, root) if door == AUTOMODEL else ".".join(str(p) for p in loc)


def error_message(error, root, door):
    loc = error["loc"]
    kind = error["type"]
    path = _path(loc, root, door)
    if kind == "extra_forbidden":
        model = root
        for part in loc[:-1]:
            model = _section_model(model, part)
        known = list(getattr(model, "model_fields", {}))
        return f"`{path}` is not a known key.{suggest(loc[-1], known)} Known: {', '.join(known)}"
    if kind == "missing":
        return f"`{path}` is required"
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    if kind == "value_error" and (not loc or "Received:" in message):  # a complete sentence
        return message
    received = error.get("input")
    return f"`{path}`: {message[0].lower() + message[1:]}. Received: {path}={received!r}"


def _section_model(model, part):
    info = getattr(model, "model_fields", {}).get(part)
    if info is None:
        return model
    annotation = info.annotation
    for candidate in getattr(annotation, "__args__", ()) or (annotation,):  # Optional[Section]
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return annotation


def _param_name(loc, root):
    """A location's flat parameter name (outside the YAML there are no sections)."""
    for item in declared(root):
        if tuple(loc[:len(item.path)]) == item.path:
            return ".".join([item.param, *map(str, loc[len(item.path):])])
    return ".".join(str(p) for p in loc)


def _search_options_class():
    """`SearchOptions`: the options `tuning.search()` takes, declared above, plus what only the
    code sets (the folder, the fingerprint, the progress printing)."""
    fields = [(name, Any, dataclasses.field(default=item.default))
              for name, item in parameters(SEARCH).items()]
    fields += [("transfer", Optional[dict], None), ("directory", str, "zoo_search"),
               ("fingerprint", Optional[str], None), ("verbose", bool, False),
               ("progress", bool, True), ("retrain", bool, True)]
    return dataclasses.make_dataclass("SearchOptions", fields, frozen=True,
                                      namespace={"__post_init__": _check_search_options,
                                                 "__module__": __name__,
                                                 "__doc__": _SEARCH_OPTIONS_DOC})


_SEARCH_OPTIONS_DOC = """Everything `tuning.search()` takes besides the data: the options declared
in `tuning.options` offered at its door, each validated there, plus the folder, fingerprint and
progress settings the caller sets."""


def _check_search_options(self):
    values = {name: getattr(self, name) for name in parameters(SEARCH)}
    for name, value in flat_values(validate(nest(values, SEARCH), door=SEARCH), SEARCH).items():
        object.__setattr__(self, name, value)


SearchOptions = _search_options_class()


def search_options(options, directory, **runtime):
    """The `SearchOptions` of validated `UserOptions` (a config's or an AutoModel's), searching
    in `directory`."""
    return SearchOptions(**flat_values(options, SEARCH), transfer=options.model.transfer,
                         directory=directory,
                         fingerprint=runtime.pop("fingerprint", None) or options.fingerprint(),
                         **runtime)


DEFAULT_TRIALS = 10
# `max_trials` when only a time budget bounds the search: the budget ends it long before
TRIALS_WITHIN_BUDGET = 10_000


def trials_bound(max_trials, time_budget):
    """The trial count a search is sized for: the option's, else 10, else (with a time budget
    alone) as many as the budget allows."""
    if max_trials is not None:
        return max_trials
    return TRIALS_WITHIN_BUDGET if time_budget else DEFAULT_TRIALS


def default_objective(task):
    return "val_accuracy" if task in CLASSIFICATION_TASKS else "val_loss"


def objective_direction(name):
    """'max' for accuracy-like metrics, 'min' for losses and errors."""
    return "max" if name.split("val_", 1)[-1] in MAXIMIZED else "min"


def is_better(score, best, objective):
    if best is None:
        return True
    return score > best if objective_direction(objective) == "max" else score < best


def check_objective(objective, task):
    allowed = [prefix + name for prefix in ("val_", "") for name in TASK_METRICS[task]]
    if objective not in allowed:
        raise InvalidParameterError(
            f"`search.objective` must be a metric the model reports for task '{task}': "
            f"{', '.join(allowed)}. Received: search.objective={objective!r}.{suggest(objective, allowed)}"
        )


def check_pruner(pruner):
    if pruner not in PRUNERS:
        raise unknown_name("search.pruner", pruner, PRUNERS)


def check_algorithm(algorithm):
    if algorithm not in ALGORITHMS:
        raise unknown_name("search.algorithm", algorithm, ALGORITHMS)
