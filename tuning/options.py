"""What a search is asked to do: `SearchOptions`, the algorithm names and the objectives (no
TensorFlow import, so configs and the CLI check them before the slow import)."""

import dataclasses
from typing import Optional

from zoo.errors import InvalidParameterError, suggest, unknown_name
from zoo.tasks import CLASSIFICATION_TASKS

ALGORITHMS = ("random", "grid", "bayesian", "hyperband", "evolution", "tpe")
# f1_macro, balanced_accuracy and a multiclass auc are compiled in only when the objective names
# them (zoo.training.objective_metrics)
TASK_METRICS = {
    "binary": ("loss", "accuracy", "auc", "f1_macro", "balanced_accuracy"),
    "multiclass": ("loss", "accuracy", "f1_macro", "balanced_accuracy", "auc"),
    "regression": ("loss", "mae", "rmse"),
}
MAXIMIZED = ("accuracy", "auc", "f1_macro", "balanced_accuracy")


@dataclasses.dataclass(frozen=True)
class SearchOptions:
    """Everything `search` takes besides the data; the run config's `model`, `search` and
    `tracking` sections map onto it (`keras_zoo.config.search_options`)."""

    families: tuple = ("mlp",)
    params: Optional[dict] = None
    algorithm: str = "random"
    objective: Optional[str] = None
    max_trials: int = 10
    max_epochs: int = 10
    time_budget: Optional[float] = None
    seed: int = 0
    cv_folds: Optional[int] = None
    batch_sizes: tuple = (32,)
    max_consecutive_failures: int = 3
    early_stopping_patience: Optional[int] = None
    pruner: str = "none"
    # deployment-aware search (tuning.deploy): limits on costs, several objectives, the front's pick
    constraints: Optional[dict] = None
    objectives: Optional[tuple] = None
    select: Optional[str] = None
    tune_training: bool = True
    class_weight: object = None
    transfer: Optional[dict] = None
    directory: str = "zoo_search"
    tracking_uri: Optional[str] = None
    experiment: str = "keras-zoo"
    tracking: bool = True
    register_model: Optional[str] = None
    fingerprint: Optional[str] = None
    verbose: bool = False
    progress: bool = True
    retrain: bool = True

    def __post_init__(self):
        families = [self.families] if isinstance(self.families, str) else list(self.families)
        object.__setattr__(self, "families", tuple(families))
        object.__setattr__(self, "batch_sizes", tuple(self.batch_sizes))
        if self.objectives is not None:
            object.__setattr__(self, "objectives", tuple(self.objectives))


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
    from tuning.pruning import PRUNERS

    if pruner not in PRUNERS:
        raise unknown_name("search.pruner", pruner, PRUNERS)


def check_algorithm(algorithm):
    if algorithm not in ALGORITHMS:
        raise unknown_name("search.algorithm", algorithm, ALGORITHMS)
