"""The evaluation floor's MLflow calls, in one module: a report logged on a run, and a run's
metric histories read back."""

import math

from zoo.errors import InvalidParameterError


def log_report(report, run_id, *, tracking_uri=None, prefix="test_", artifact_path="report",
               client=None):
    """`Report.log_to_mlflow`: the scalar metrics, the baseline and report.json/.html/PNGs."""
    import tempfile
    import time

    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = client or MlflowClient(tracking_uri)
    timestamp = int(time.time() * 1000)
    metrics = [Metric(prefix + name, float(value), timestamp, 0)
               for name, value in report.metrics.items() if value is not None]
    if report.baseline is not None and math.isfinite(report.baseline.score):
        metrics.append(Metric(f"{prefix}baseline_{report.baseline.metric}", report.baseline.score,
                              timestamp, 0))
    client.log_batch(run_id, metrics=metrics)
    client.set_tag(run_id, "evaluation.kind", report.kind)
    if report.baseline is not None:
        client.set_tag(run_id, "evaluation.baseline", report.baseline.verdict())
    with tempfile.TemporaryDirectory() as folder:
        report.save(folder)
        client.log_artifacts(run_id, folder, artifact_path)
    return run_id


def history_from_mlflow(run_id, *, tracking_uri=None):
    """{metric: [value per step]} from an MLflow run's metric histories (ordered by step)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    try:
        run = client.get_run(run_id)
    except MlflowException as error:
        raise InvalidParameterError(f"`history` run not found ({error.message.splitlines()[0]}). Received: run_id={run_id!r}") from None
    history = {}
    for key in sorted(run.data.metrics):
        points = sorted(client.get_metric_history(run_id, key), key=lambda p: (p.step, p.timestamp))
        if len(points) > 1:  # one-point metrics are final scores, not a history
            history[key] = [p.value for p in points]
    return history
