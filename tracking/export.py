"""Log a run recorded in ML Metadata to MLflow: params, TFMA metrics per slice, verdict tags, the report.

MLMD stays the record of what ran; MLflow gets a copy that experiment-tracking
users can search and compare. One MLMD run is one MLflow run: the MLflow run
carries the MLMD run id as a tag, and an export finds it by that tag before it
creates anything, so exporting again updates it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from pipeline.config import PROJECT_ROOT, PipelineConfig

if TYPE_CHECKING:
    from pipeline.results import Evaluation
    from pipeline.run import RunSummary
    from review.runs import ComponentRun, RunInfo

logger = logging.getLogger(__name__)

RUN_ID_TAG = "mlmd_run_id"
PIPELINE_TAG = "pipeline"
# The file, among the MLflow run's artifacts, that maps each slice's metric
# path back to TFMA's slice name (metric names lose characters MLflow refuses).
SLICES_ARTIFACT = "slices.json"
REPORT_ARTIFACT = "report.html"

# MLflow's own rule for metric, param and tag names (mlflow.utils.validation),
# less "/", which separates a metric from its slice's parts here.
_REFUSED = re.compile(r"[^\w.\- :]")
_NEXT_FEATURE = re.compile(r", (?=\w+=)")
_MAX_NAME = 250  # mlflow.utils.validation.MAX_ENTITY_KEY_LENGTH
_MAX_BATCH = 100  # params or tags per log_batch (MAX_PARAMS_TAGS_PER_BATCH)
_MAX_METRICS = 1000  # metrics per log_batch (MAX_METRICS_PER_BATCH)

# How long an export waits for an unreachable tracking server. MLflow's own
# defaults (7 retries, doubling back-off) wait about 4 minutes at the end of a
# run; a user's MLFLOW_HTTP_REQUEST_* environment variables still win.
_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}


def quiet_logs() -> None:
    """Keep MLflow's table creation, migrations and connection retries off a terminal: the command says what matters."""
    try:
        import mlflow  # noqa: F401 - configures its loggers on import, so first
    except ImportError:
        return  # export_run says so
    for name in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)


class TrackingError(RuntimeError):
    """The export failed; the message is one line saying why."""


@dataclasses.dataclass(frozen=True)
class Exported:
    """What an export did."""

    uri: str
    experiment: str
    mlflow_run_id: str
    mlmd_run_id: str
    created: bool  # False: the MLflow run of an earlier export was updated
    metrics: int
    # Params an earlier export recorded with another value (the profile changed
    # since): MLflow params cannot change, so the earlier values stay.
    kept_params: tuple[str, ...] = ()


def name_part(text: str) -> str:
    """One part of an MLflow name, readable and deterministic.

    ``&`` becomes ``and``, any other character MLflow refuses (and ``/``)
    becomes ``_``; a part that is empty or only dots becomes ``_``.
    """
    part = _REFUSED.sub("_", text.replace("&", "and"))
    return "_" if part.strip(".") == "" else part


def slice_path(slice_name: str) -> str:
    """TFMA's "feature=value[, feature=value]" as MLflow name parts: ``payment_type/Cash``."""
    if slice_name == "Overall":
        return ""
    # Split where a feature name follows: a value may hold ", " itself (company names do).
    pairs = [p.split("=", 1) for p in _NEXT_FEATURE.split(slice_name)]
    return "/".join(name_part(part) for pair in pairs for part in pair)


def slice_paths(slice_names: list[str]) -> dict[str, str]:
    """Each slice's path, unique within the run: a clash (``C&D``, ``CandD``) gets ``_2``, ``_3``... by name."""
    paths: dict[str, str] = {}
    taken: set[str] = set()
    for name in sorted(slice_names):
        path = base = slice_path(name)
        n = 1
        while path in taken:
            n += 1
            path = f"{base}_{n}"
        taken.add(path)
        paths[name] = path
    return paths


def metric_name(metric: str, path: str, prefix: str = "") -> str:
    """``auc``, ``auc/payment_type/Cash``, ``baseline/auc/payment_type/Cash``."""
    name = "/".join(p for p in (prefix, name_part(metric), path) if p)
    return name[:_MAX_NAME]


def evaluation_metrics(evaluation: Evaluation) -> tuple[dict[str, float], dict[str, str]]:
    """MLflow metrics from a :class:`pipeline.results.Evaluation`, and each slice path's TFMA name.

    The candidate's metrics are unprefixed; ``baseline/`` holds the baseline
    model's (latest blessed) and ``rule/`` the rule's, on the same rows.
    """
    slices = [evaluation.overall, *evaluation.slices]
    paths = slice_paths([s.slice for s in slices])
    metrics: dict[str, float] = {}
    for s in slices:
        for prefix, values in (("", s.metrics), ("baseline", s.baseline), ("rule", s.rule)):
            for metric, value in values.items():
                metrics[metric_name(metric, paths[s.slice], prefix)] = value
    return metrics, {path or "Overall": name for name, path in paths.items()}


def _flatten(prefix: str, value: Any) -> Iterator[tuple[str, str]]:
    """A config as ``section.field`` params; mappings one entry each, the feature spec as its JSON."""
    if hasattr(value, "to_json"):  # the FeatureSpec
        yield prefix, value.to_json()
    elif isinstance(value, BaseModel):  # a config section
        for field in type(value).model_fields:
            yield from _flatten(f"{prefix}.{field}", getattr(value, field))
    elif isinstance(value, Mapping) and value:
        for key in sorted(value):
            yield from _flatten(f"{prefix}.{name_part(str(key))}", value[key])
    elif isinstance(value, (str, int, float, bool)) or value is None:
        yield prefix, str(value)
    else:
        yield prefix, json.dumps(value, default=str)


def _recorded(component: ComponentRun | None, key: str) -> Any:
    """An execution property that TFX recorded as JSON (custom_config, train_args), parsed."""
    raw = component.properties.get(key) if component else None
    return json.loads(raw) if raw else {}


def _code_params() -> dict[str, str]:
    from importlib import metadata

    from mlflow.utils.git_utils import get_git_commit

    params: dict[str, str] = {}
    try:
        params["code.package_version"] = metadata.version("tfx-production-pipeline")
    except metadata.PackageNotFoundError:
        pass
    commit = get_git_commit(str(PROJECT_ROOT))
    if commit:
        params["code.git_commit"] = commit
    return params


def run_params(
    cfg: PipelineConfig, run: RunInfo, span: int | None, trained: dict[str, Any] | None = None
) -> dict[str, str]:
    """Params: the config, the hyperparameters and data the run recorded in MLMD, the code version.

    ``trained`` is what the Trainer recorded it trained with (the Tuner's best
    trial, when tuning is on); else the configured hyperparameters it was given.
    """
    params = dict(_flatten("config", cfg))
    trainer = run.component("Trainer")
    custom = _recorded(trainer, "custom_config")
    for key, value in sorted((trained or custom.get("hparams", {})).items()):
        params[f"hparams.{key}"] = json.dumps(value) if isinstance(value, list) else str(value)
    if trainer is not None:
        params["hparams.train_steps"] = str(_recorded(trainer, "train_args").get("num_steps", ""))
        params["hparams.eval_steps"] = str(_recorded(trainer, "eval_args").get("num_steps", ""))
    if custom.get("code_fingerprint"):
        params["code.models_fingerprint"] = custom["code_fingerprint"]
    gen = run.component("CsvExampleGen") or run.component("BigQueryExampleGen")
    if gen is not None:
        for key in ("input_base", "query", "input_fingerprint"):
            if gen.properties.get(key):
                params[f"data.{key}"] = str(gen.properties[key])
    if span is not None:
        params["data.span"] = str(span)
    params.update(_code_params())
    return params


def run_tags(cfg: PipelineConfig, run: RunInfo, summary: RunSummary | None) -> dict[str, str]:
    """Tags: the MLMD run id, status, verdict, every failed threshold, what was pushed."""
    ev = summary.evaluation if summary else None
    tags = {
        "mlflow.runName": run.run_id,
        RUN_ID_TAG: run.run_id,
        PIPELINE_TAG: cfg.name,
        "status": run.status,
        "verdict": "not evaluated" if ev is None else "blessed" if ev.blessed else "not blessed",
    }
    if ev is not None:
        tags["failed_thresholds"] = str(len(ev.failures))
        for failure in ev.failures:
            parts = (
                "failed",
                failure.kind,
                name_part(failure.metric) if failure.metric else "",
                slice_path(failure.slice),
            )
            tags["/".join(p for p in parts if p)[:_MAX_NAME]] = str(failure)
        if ev.baseline_uri:
            tags["baseline_model"] = ev.baseline_uri
    if run.pushed:
        tags["pushed.path"] = run.pushed
        tags["pushed.version"] = Path(run.pushed).name
    if summary is not None and summary.push_note:
        tags["push"] = summary.push_note
    return tags


def _artifact_location(uri: str, experiment: str) -> str | None:
    """Beside a local SQLite store: MLflow's default is ./mlruns under whatever directory the export ran in."""
    if not uri.startswith("sqlite:///"):
        return None  # a server or another database decides
    database = Path(uri[len("sqlite:///") :])
    return (database.parent / "mlartifacts" / name_part(experiment)).resolve().as_uri()


def _why(exc: BaseException, uri: str) -> str:
    """An MLflow or connection error in one line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if refused := re.search(r"\[Errno -?\d+\] ([^'\")]+)", text):
        return f"cannot reach {uri}: {refused.group(1).strip()}"
    return text


def export_run(
    cfg: PipelineConfig, run_id: str = "latest", uri: str | None = None, *, started_after: float | None = None
) -> Exported:
    """Log one MLMD run (``latest`` by default) to MLflow at ``uri`` (default: ``tracking.mlflow_uri``).

    Raises RunNotFound for an unknown run and TrackingError for anything on the
    MLflow side (not installed, unreachable, refused). ``started_after`` (unix
    seconds) refuses a run older than that: what `tfxp run` exports must be its own.
    """
    from review.report import collect, render

    uri = uri or cfg.tracking.mlflow_uri
    if not uri:
        raise TrackingError("no MLflow tracking URI: set tracking.mlflow_uri or pass --mlflow URI")
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise TrackingError(
            f"MLflow is not installed ({exc}): pip install -e '.[mlflow]' or the version in requirements.lock"
        ) from None
    data = collect(cfg, run_id)  # the run, its summary and statistics, read once
    run = data.run
    if started_after is not None and run.started < started_after - 1:
        raise TrackingError(f"this run recorded nothing in {cfg.metadata_path} (the newest run there is {run.run_id})")
    experiment = cfg.tracking.experiment or cfg.name
    # The store first: an unreachable one fails before the report is rendered.
    with _mlflow_errors(uri):
        client = MlflowClient(tracking_uri=uri)
        found = client.get_experiment_by_name(experiment)
        experiment_id = (
            found.experiment_id if found else client.create_experiment(experiment, _artifact_location(uri, experiment))
        )
    summary = data.summary
    metrics, slice_names = evaluation_metrics(summary.evaluation) if summary and summary.evaluation else ({}, {})
    artifacts = {SLICES_ARTIFACT: json.dumps(slice_names, indent=2, sort_keys=True), REPORT_ARTIFACT: render(data)}
    with _mlflow_errors(uri):
        mlflow_run_id, created, kept = _log(
            client,
            experiment_id,
            run,
            run_params(cfg, run, summary.span if summary else None, summary.hparams if summary else None),
            metrics,
            run_tags(cfg, run, summary),
            artifacts,
        )
    return Exported(uri, experiment, mlflow_run_id, run.run_id, created, len(metrics), kept)


@contextmanager
def _mlflow_errors(uri: str) -> Iterator[None]:
    """MLflow's own, requests' and SQLAlchemy's errors as one TrackingError; with a bounded wait for a server."""
    missing = [k for k in _HTTP_DEFAULTS if k not in os.environ]
    os.environ.update({k: _HTTP_DEFAULTS[k] for k in missing})
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - turned into the one line that names it
        raise TrackingError(_why(exc, uri)) from exc
    finally:
        for k in missing:
            os.environ.pop(k, None)


def _log(
    client: Any,
    experiment_id: str,
    run: RunInfo,
    params: dict[str, str],
    metrics: dict[str, float],
    tags: dict[str, str],
    artifacts: dict[str, str],
) -> tuple[str, bool, tuple[str, ...]]:
    """Create the MLflow run, or find the one an earlier export made; log everything; return (id, created, kept)."""
    from mlflow.entities import Metric, Param, RunTag

    earlier = client.search_runs([experiment_id], filter_string=f"tags.{RUN_ID_TAG} = '{run.run_id}'", max_results=1)
    if earlier:
        mlflow_run = earlier[0]
        recorded = mlflow_run.data.params
        kept = tuple(sorted(k for k, v in params.items() if k in recorded and recorded[k] != v))
        params = {k: v for k, v in params.items() if k not in recorded}
    else:
        mlflow_run, kept = client.create_run(experiment_id, start_time=int(run.started * 1000)), ()
    run_uuid = mlflow_run.info.run_id
    # One timestamp and step per metric: a second export logs the same points again, which MLflow keeps once.
    ended_ms = int((run.started + run.seconds) * 1000)
    points = [Metric(k, v, ended_ms, 0) for k, v in sorted(metrics.items())]
    for i in range(0, len(points), _MAX_METRICS):
        client.log_batch(run_uuid, metrics=points[i : i + _MAX_METRICS])
    for batch in _batches(sorted(params.items())):
        client.log_batch(run_uuid, params=[Param(k, v) for k, v in batch])
    for batch in _batches(sorted(tags.items())):
        client.log_batch(run_uuid, tags=[RunTag(k, v) for k, v in batch])
    with tempfile.TemporaryDirectory(prefix="tfxp-mlflow-") as scratch:
        for name, text in artifacts.items():
            (Path(scratch) / name).write_text(text, encoding="utf-8")
            client.log_artifact(run_uuid, str(Path(scratch) / name))
    client.set_terminated(run_uuid, "FINISHED" if run.status == "succeeded" else "FAILED", end_time=ended_ms)
    return run_uuid, not earlier, kept


def _batches(items: list[tuple[str, str]]) -> Iterator[list[tuple[str, str]]]:
    for i in range(0, len(items), _MAX_BATCH):
        yield items[i : i + _MAX_BATCH]


def track_run(cfg: PipelineConfig, started_after: float) -> str:
    """The automatic export at the end of `tfxp run`: one line saying what happened. Never raises.

    Tracking must never fail a run (nor stop a blessed model's push, done by
    then): any error, MLflow missing or its store unreachable, becomes the line.
    """
    if not cfg.tracking.mlflow_uri:
        return ""
    try:
        done = export_run(cfg, "latest", started_after=started_after)
    except Exception as exc:  # noqa: BLE001 - see the docstring; the line names the error
        logger.warning("MLflow export failed", exc_info=True)
        why = (
            str(exc)
            if isinstance(exc, TrackingError)
            else f"{type(exc).__name__}: {_why(exc, cfg.tracking.mlflow_uri)}"
        )
        return f"MLflow export failed, the run is unaffected: {why}"
    return f"logged to MLflow {done.uri}, experiment {done.experiment}, run {done.mlflow_run_id}"
