"""Deployment-aware search: each trial's on-device cost, constraints on it, and several objectives.

A trial's cost is its parameter count and FLOPs (from the Keras graph, at batch 1) and, where the
search asks for them, the size of its float32 TFLite file and its batch-1 latency in the LiteRT
interpreter, converted the way `export` converts (a SavedModel, then `TFLiteConverter`), so that
the search's figures are the exported artifact's.

- `search.constraints: {tflite_latency_ms: 0.5, tflite_size_kb: 200, params: 50000}`: a trial over a
  limit is infeasible and never chosen; TPE learns it (Optuna's `Trial.set_constraint`), evolution
  leaves it out of its population.
- `search.objectives: [val_accuracy, tflite_latency_ms]`: the non-dominated trials (Optuna's
  `Study.best_trials`) form the front. TPE steers by all objectives (Optuna's multi-objective TPE),
  evolution by Pareto dominance in its tournaments; random and grid search explore. `search.select`
  picks the member that is retrained and exported: `knee` (default: the member nearest the ideal
  point once each objective is scaled to [0, 1] over the front) or one objective's name (the member
  best on it).

What it costs: parameters are free, FLOPs about 0.2 s a trial, the TFLite conversion and timing
1-2 s a trial on 2 cores (a 20-trial digits search took 1.74x the wall of the same search
measuring nothing: benchmarks/ figure 11). With constraints and one objective, TFLite is measured only for a trial that
beats the best feasible trial so far (any other can never be chosen); with several objectives every
trial is a candidate and is measured.

Nothing here imports TensorFlow at import time: configs are checked before the slow import.
"""

import dataclasses
import math
import os
import tempfile
import time

from zoo._tflite import convert
from zoo.errors import InvalidParameterError, unknown_name

# every cost is minimized
COSTS = ("params", "flops", "tflite_size_kb", "tflite_latency_ms")
TFLITE_COSTS = ("tflite_size_kb", "tflite_latency_ms")
KNEE = "knee"
# algorithms that can take several objectives: TPE and evolution steer by them, random and grid explore
MULTI_OBJECTIVE_ALGORITHMS = ("tpe", "evolution", "random", "grid")
LATENCY_WARMUP = 5
LATENCY_ROUNDS = 5  # the latency is the smallest of the rounds' medians: noise only adds time
LATENCY_REPEATS = 20


@dataclasses.dataclass(frozen=True)
class Deployment:
    """What a search asks about deployment: limits on costs, and objectives beyond the first."""

    constraints: tuple = ()  # ((cost, limit), ...)
    objectives: tuple = ()  # every objective, the model metric first; () for one objective
    select: str = KNEE

    @property
    def limits(self):
        return dict(self.constraints)

    @property
    def multi(self):
        return len(self.objectives) > 1

    @property
    def cost_objectives(self):
        return tuple(self.objectives[1:])

    @property
    def wanted(self):
        """The costs this search must measure."""
        return set(self.limits) | set(self.cost_objectives)

    @property
    def needs_tflite(self):
        return bool(self.wanted & set(TFLITE_COSTS))

    def violations(self, costs):
        """{cost: (value, limit)} for each limit `costs` exceeds; a cost not measured is not
        counted (see `feasible`)."""
        return {name: (costs[name], limit) for name, limit in self.constraints
                if costs.get(name) is not None and costs[name] > limit}

    def over(self, costs):
        """'params 61290 > 50000, ...' for the limits `costs` exceeds, or '' when none."""
        return ", ".join(f"{k} {v:.6g} > {limit:g}" for k, (v, limit) in self.violations(costs).items())

    def feasible(self, costs):
        """True when every constrained cost was measured and is within its limit."""
        return all(costs.get(name) is not None for name in self.limits) and not self.violations(costs)

    def describe(self):
        limits = ", ".join(f"{name} <= {limit:g}" for name, limit in self.constraints)
        return limits or "none"


def make_deployment(constraints=None, objectives=None, select=None):
    """A `Deployment` from the options' plain values, or None when the search asks for nothing."""
    if not constraints and not objectives:
        return None
    return Deployment(constraints=tuple(sorted((constraints or {}).items())),
                      objectives=tuple(objectives or ()), select=select or KNEE)


def check_deployment(constraints, objectives, select, *, algorithm, objective, task):
    """Every check of `search.constraints`, `search.objectives` and `search.select`, before
    anything runs."""
    from tuning.options import check_objective

    for name, limit in (constraints or {}).items():
        if name not in COSTS:
            raise unknown_name("search.constraints key", name, COSTS)
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0:
            raise InvalidParameterError(
                f"`search.constraints.{name}` must be a number > 0. "
                f"Received: search.constraints.{name}={limit!r}")
    if objectives is not None:
        objectives = list(objectives)
        if len(objectives) < 2:
            raise InvalidParameterError(
                f"`search.objectives` lists at least two objectives (one is `search.objective`). "
                f"Received: search.objectives={objectives!r}")
        if objective is not None:
            raise InvalidParameterError(
                f"give `search.objective` or `search.objectives`, not both (the first objective is "
                f"the model metric). Received: search.objective={objective!r}")
        if len(set(objectives)) != len(objectives):
            raise InvalidParameterError(
                f"`search.objectives` names an objective twice. Received: search.objectives={objectives!r}")
        check_objective(objectives[0], task)
        for name in objectives[1:]:
            if name not in COSTS:
                raise unknown_name("search.objectives entry", name, COSTS,
                                   hint=f"After the model metric come costs: {', '.join(COSTS)}.")
        if algorithm not in MULTI_OBJECTIVE_ALGORITHMS:
            raise InvalidParameterError(
                f"`search.objectives` needs an algorithm that keeps a Pareto front: "
                f"{', '.join(MULTI_OBJECTIVE_ALGORITHMS)} (hyperband and bayesian rank trials by one "
                f"number). Received: search.algorithm={algorithm!r}")
    if select is not None:
        if not objectives:
            raise InvalidParameterError(
                f"`search.select` picks a member of the Pareto front: it needs `search.objectives`. "
                f"Received: search.select={select!r}")
        if select != KNEE and select not in objectives:
            raise unknown_name("search.select", select, [KNEE, *objectives])


# === measuring a model ==========================================================================
def measure(model, sample, wanted, *, tflite=True):
    """A model's costs: {'params', and those of `wanted` among 'flops', 'tflite_size_kb',
    'tflite_latency_ms'}. `sample` is a batch of inputs (its first row is used). `tflite` says
    whether to convert and time the model: a bool, or a function of the cheap costs (params,
    FLOPs) answering it. A model the TFLite converter cannot take gets infinite TFLite costs (it
    cannot be deployed there)."""
    costs = {"params": float(model.count_params())}
    row = sample[:1]
    if "flops" in wanted:
        costs["flops"] = flops(model, row)
    if set(wanted) & set(TFLITE_COSTS) and (tflite(costs) if callable(tflite) else tflite):
        try:
            size_kb, latency_ms = tflite_costs(model, row)
        except Exception:  # noqa: BLE001 - the converter's many errors: the model has no TFLite form
            size_kb = latency_ms = math.inf
        costs.update(tflite_size_kb=size_kb, tflite_latency_ms=latency_ms)
    return costs


def flops(model, row):
    """Floating-point operations of one forward pass at batch 1 (TensorFlow's profiler on the
    model's frozen graph; a multiply-add counts two)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2_as_graph,
    )

    spec = tf.TensorSpec((1, *row.shape[1:]), tf.as_dtype(row.dtype))
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen, _ = convert_variables_to_constants_v2_as_graph(function)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(graph=frozen.graph, options=options)
    return float(profile.total_float_ops)


def tflite_costs(model, row):
    """(size in KB, median batch-1 latency in ms) of the model's float32 TFLite file in the LiteRT
    interpreter: a SavedModel converted by `TFLiteConverter`, as `export` writes `model.tflite`."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as folder:
        saved = os.path.join(folder, "saved_model")
        model.export(saved, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        blob = convert(converter)
    return len(blob) / 1024.0, tflite_latency_ms(blob, row)


def tflite_latency_ms(blob, row, repeats=LATENCY_REPEATS, rounds=LATENCY_ROUNDS):
    """Wall time of one batch-1 call of the TFLite model's signature runner: the smallest of
    `rounds` medians of `repeats` calls each (a shared machine's noise only ever adds time)."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=blob)
    runner = interpreter.get_signature_runner(next(iter(interpreter.get_signature_list())))
    details = runner.get_input_details()
    name = next(iter(details))
    feeds = {name: np.asarray(row, dtype=details[name]["dtype"])}
    for _ in range(LATENCY_WARMUP):
        runner(**feeds)
    medians = []
    for _ in range(rounds):
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            runner(**feeds)
            times.append(time.perf_counter() - started)
        medians.append(float(np.median(times)))
    return min(medians) * 1000.0


# === the oracle's side ==========================================================================
class DeploymentAware:
    """Oracle mixin: trials carry their costs as metrics (reported by the tuner through
    `update_trial`, over gRPC in distributed mode); infeasible trials are never among the best, and
    with several objectives `get_best_trials` returns the Pareto front, the selected member first."""

    deployment = None

    def set_deployment(self, deployment):
        self.deployment = deployment

    def trial_costs(self, trial):
        return {name: float(trial.metrics.get_last_value(name)) for name in COSTS
                if trial.metrics.exists(name)}

    def is_feasible(self, trial):
        return self.deployment is None or self.deployment.feasible(self.trial_costs(trial))

    def objective_values(self, trial):
        """The trial's value of each objective (the score first), or None when one is missing."""
        if trial.score is None:
            return None
        values = [float(trial.score)]
        if self.deployment is not None and self.deployment.multi:
            costs = self.trial_costs(trial)
            if any(name not in costs for name in self.deployment.cost_objectives):
                return None
            values += [costs[name] for name in self.deployment.cost_objectives]
        return values

    def constraint_values(self, trial):
        """{cost: value - limit} (feasible when <= 0) for each measured constrained cost."""
        if self.deployment is None:
            return {}
        costs = self.trial_costs(trial)
        return {name: costs[name] - limit for name, limit in self.deployment.constraints
                if name in costs}

    def directions(self):
        """Optuna's direction of each objective."""
        first = "maximize" if self.objective.direction == "max" else "minimize"
        extra = self.deployment.cost_objectives if self.deployment is not None else ()
        return [first] + ["minimize"] * len(extra)

    def dominates(self, a, b):
        """Pareto dominance of trial `a` over trial `b` on every objective."""
        va, vb = self.objective_values(a), self.objective_values(b)
        if va is None or vb is None:
            return va is not None
        signs = [1 if d == "maximize" else -1 for d in self.directions()]
        better_or_equal = all(s * x >= s * y for s, x, y in zip(signs, va, vb))
        return better_or_equal and any(s * x > s * y for s, x, y in zip(signs, va, vb))

    def candidates(self):
        """Completed, scored, feasible trials, with every objective measured."""
        return [t for t in self.trials.values()
                if t.status == "COMPLETED" and t.score is not None and self.is_feasible(t)
                and self.objective_values(t) is not None]

    def pareto_front(self):
        """The non-dominated feasible trials (Optuna's `Study.best_trials`), in trial order."""
        import optuna

        trials = self.candidates()
        if not trials:
            return []
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(directions=self.directions())
        for trial in trials:
            study.add_trial(optuna.trial.create_trial(
                values=self.objective_values(trial), user_attrs={"trial_id": trial.trial_id}))
        kept = {t.user_attrs["trial_id"] for t in study.best_trials}
        return [t for t in trials if t.trial_id in kept]

    def selected(self, front):
        """The front member `search.select` picks."""
        select = self.deployment.select
        objectives = list(self.deployment.objectives)
        values = [self.objective_values(t) for t in front]
        signs = [1 if d == "maximize" else -1 for d in self.directions()]
        if select != KNEE:
            index = objectives.index(select)
            return max(zip(front, values), key=lambda pair: signs[index] * pair[1][index])[0]
        # the knee: nearest the ideal point, each objective scaled to [0, 1] over the front
        lows = [min(v[i] for v in values) for i in range(len(objectives))]
        highs = [max(v[i] for v in values) for i in range(len(objectives))]

        def distance(vector):
            total = 0.0
            for i, x in enumerate(vector):
                span = highs[i] - lows[i]
                scaled = (x - lows[i]) / span if span > 0 else 0.0
                gap = 1.0 - scaled if signs[i] > 0 else scaled  # 0 at the ideal end
                total += gap * gap
            return math.sqrt(total)

        return min(zip(front, values), key=lambda pair: distance(pair[1]))[0]

    def get_best_trials(self, num_trials=1):
        if self.deployment is None:
            return super().get_best_trials(num_trials)
        if self.deployment.multi:
            front = self.pareto_front()
            if not front:
                return []
            chosen = self.selected(front)
            rest = sorted((t for t in front if t is not chosen), key=lambda t: t.score,
                          reverse=self.objective.direction == "max")
            return ([chosen] + rest)[:num_trials]
        return sorted(self.candidates(), key=lambda t: t.score,
                      reverse=self.objective.direction == "max")[:num_trials]


# === the search's record of it ==================================================================
def front_frame(oracle, front, chosen):
    """The Pareto front as a table: one row per member, its objectives, costs and hyperparameters."""
    import pandas as pd

    rows = []
    for trial in front:
        row = {"trial_id": trial.trial_id, "selected": trial is chosen, "score": trial.score}
        row.update(oracle.trial_costs(trial))
        row.update({f"hp:{k}": v for k, v in trial.hyperparameters.values.items()
                    if not k.startswith("tuner/")})
        rows.append(row)
    return pd.DataFrame(rows)


def front_plot(oracle, front, chosen, objective):
    """PNG bytes: every feasible trial and the front, the first objective against the second."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_name = oracle.deployment.cost_objectives[0]
    everyone = oracle.candidates()
    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    axes.scatter([oracle.trial_costs(t)[x_name] for t in everyone], [t.score for t in everyone],
                 color="0.75", label="feasible trials")
    ordered = sorted(front, key=lambda t: oracle.trial_costs(t)[x_name])
    axes.plot([oracle.trial_costs(t)[x_name] for t in ordered], [t.score for t in ordered],
              marker="o", color="tab:blue", label="Pareto front")
    axes.scatter([oracle.trial_costs(chosen)[x_name]], [chosen.score], marker="*", s=250,
                 color="tab:red", zorder=3, label=f"selected ({oracle.deployment.select})")
    axes.set_xlabel(x_name)
    axes.set_ylabel(objective)
    axes.set_title("Pareto front of the search")
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
