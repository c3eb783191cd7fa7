"""The report object every evaluation returns: metrics, tables, PNG plots; JSON, HTML and MLflow."""

import dataclasses
import json
import os

from zoo._json import jsonable


@dataclasses.dataclass
class Report:
    """Results of one evaluation.

    Attributes:
        kind: 'classification', 'regression', 'reconstruction', 'verification',
            'cross_validation', 'learning_curve' or 'validation_curve'.
        task: the data task ('binary', 'multiclass', 'regression', 'reconstruction',
            'verification').
        metrics: scalar metrics by name (scikit-learn's function names: `*_score` higher is
            better, `*_error`/`*_loss` lower is better); None where a metric is undefined.
        tables: pandas DataFrames by name (per-class table, confusion matrices, history...).
        plots: PNG bytes by name.
        notes: why a metric is missing, what an average means.
        meta: samples, class names, model name and anything else that describes the run.
        baseline: the `evaluation.baseline.Baseline` beside the model on the same split, or None.
    """

    kind: str
    task: str
    metrics: dict = dataclasses.field(default_factory=dict)
    tables: dict = dataclasses.field(default_factory=dict)
    plots: dict = dataclasses.field(default_factory=dict)
    notes: list = dataclasses.field(default_factory=list)
    meta: dict = dataclasses.field(default_factory=dict)
    baseline: object = None

    @property
    def per_class(self):
        """The per-class table (precision, recall, F1, support) of a classification report."""
        return self.tables.get("per_class")

    def merge(self, other, *, prefix=None):
        """Add another report's metrics (prefixed by its kind), tables, plots and notes; returns self."""
        prefix = f"{other.kind}_" if prefix is None else prefix
        self.metrics.update({prefix + k: v for k, v in other.metrics.items()})
        self.tables.update({prefix + k: v for k, v in other.tables.items()})
        self.plots.update(other.plots)
        self.notes.extend(other.notes)
        self.meta.setdefault("included", []).append(other.kind)
        return self

    def add_history(self, history, *, tracking_uri=None):
        """Add the training history (a Keras History, a dict of lists, or an MLflow run id)."""
        from evaluation.history import history_frame, plot_history

        frame = history_frame(history, tracking_uri=tracking_uri)
        self.tables["history"] = frame
        self.plots["training_history"] = plot_history(frame)
        return self

    # --- serialization -----------------------------------------------------------------

    def to_dict(self):
        """A JSON-ready dict; tables in pandas' 'split' layout, plots as their file names."""
        return {
            "kind": self.kind,
            "task": self.task,
            "metrics": {k: jsonable(v) for k, v in self.metrics.items()},
            "tables": {name: jsonable(frame.to_dict(orient="split")) for name, frame in self.tables.items()},
            "plots": [f"{name}.png" for name in self.plots],
            "notes": list(self.notes),
            "meta": jsonable(self.meta),
            "baseline": None if self.baseline is None else jsonable(self.baseline.to_dict()),
        }

    def to_json(self, indent=2):
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_html(self, *, title=None):
        """A self-contained HTML page: metrics and tables, plots embedded as base64 PNG."""
        from evaluation._html import render

        page = render(self, title=title)
        if self.baseline is None:
            return page
        # right under the title's line: whether the model was worth training comes first
        top = page.index('<p class="sub">')
        top = page.index("</p>", top) + len("</p>")
        return page[:top] + "\n" + self.baseline.to_html() + page[top:]

    def save(self, out_dir):
        """Write report.json, report.html and one PNG per plot into `out_dir`; returns the paths."""
        os.makedirs(out_dir, exist_ok=True)
        paths = {}
        for name, png in self.plots.items():
            paths[name] = os.path.join(out_dir, f"{name}.png")
            with open(paths[name], "wb") as handle:
                handle.write(png)
        paths["json"] = os.path.join(out_dir, "report.json")
        with open(paths["json"], "w", encoding="utf-8") as handle:
            handle.write(self.to_json())
        paths["html"] = os.path.join(out_dir, "report.html")
        with open(paths["html"], "w", encoding="utf-8") as handle:
            handle.write(self.to_html())
        return paths

    def log_to_mlflow(self, run_id, *, tracking_uri=None, prefix="test_", artifact_path="report",
                      client=None):
        """Log the scalar metrics (named `prefix + name`) and report.json/.html/PNGs on a run;
        with a baseline, its score as `prefix + "baseline_" + its metric` and its verdict as the
        tag `evaluation.baseline`.

        Uses `client` (anything with `MlflowClient`'s methods), else `MlflowClient(tracking_uri)`,
        which with no URI follows `MLFLOW_TRACKING_URI` or `mlflow.set_tracking_uri`. Undefined
        (None) metrics are skipped.
        """
        from evaluation.tracking import log_report

        return log_report(self, run_id, tracking_uri=tracking_uri, prefix=prefix,
                          artifact_path=artifact_path, client=client)
