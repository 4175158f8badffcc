"""What a pipeline run produced, read back from MLMD and its artifacts.

Used by ``tfxp run`` for its summary and by ``tfxp report``; tests use it to
find artifacts instead of guessing directory names.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2


_STATES = metadata_store_pb2.Execution.State


@dataclasses.dataclass(frozen=True)
class NodeResult:
    """One component's execution in a run: output artifact URIs and properties by key."""

    node_id: str
    state: str  # COMPLETE, CACHED, FAILED, RUNNING, ...
    execution_type: str
    outputs: dict[str, list[str]]
    output_properties: dict[str, list[dict[str, Any]]]

    def output_uri(self, key: str) -> str:
        uris = self.outputs.get(key) or []
        if len(uris) != 1:
            raise LookupError(f"{self.node_id} has {len(uris)} {key!r} outputs, expected 1")
        return uris[0]

    def output_property(self, key: str, name: str) -> Any:
        props = self.output_properties.get(key) or [{}]
        return props[0].get(name)


@dataclasses.dataclass(frozen=True)
class SliceMetrics:
    slice: str  # "Overall" or "feature=value"
    metrics: dict[str, float]

    @property
    def example_count(self) -> int:
        return int(self.metrics.get("example_count", 0))


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """TFMA results: per-slice metrics and the blessing decision with its reasons."""

    overall: SliceMetrics
    slices: list[SliceMetrics]
    blessed: bool
    failures: list[str]
    baseline_uri: str | None  # the latest blessed model compared against, if any

    def worst_slice(self, metric: str = "auc", min_examples: int = 50) -> SliceMetrics | None:
        """The slice with the lowest ``metric`` among slices with enough examples.

        Slices whose labels are all one class are skipped: AUC is undefined there.
        """
        candidates = [
            s
            for s in self.slices
            if s.example_count >= min_examples
            and not math.isnan(s.metrics.get(metric, math.nan))
            and 0 < s.metrics.get("mean_label", 0.5) < 1
        ]
        return min(candidates, key=lambda s: s.metrics[metric], default=None)


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def latest_run(metadata_path: str, pipeline_name: str) -> dict[str, NodeResult]:
    """Node results of the newest run of ``pipeline_name``, keyed by node id."""
    store = open_store(metadata_path)
    pipeline_ctx = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline_ctx is None:
        return {}
    executions = store.get_executions_by_context(pipeline_ctx.id)
    if not executions:
        return {}
    newest = max(executions, key=lambda e: e.create_time_since_epoch)
    run_ctx = next(
        (c for c in store.get_contexts_by_execution(newest.id) if c.type == "pipeline_run"), None
    )
    if run_ctx is None:
        return {}
    return _node_results(store, store.get_executions_by_context(run_ctx.id))


def _node_results(store: metadata_store.MetadataStore, executions: list[Any]) -> dict[str, NodeResult]:
    results: dict[str, NodeResult] = {}
    events = store.get_events_by_execution_ids([e.id for e in executions])
    artifact_ids = {ev.artifact_id for ev in events if ev.type == metadata_store_pb2.Event.OUTPUT}
    artifacts = {a.id: a for a in store.get_artifacts_by_id(list(artifact_ids))}
    for execution in sorted(executions, key=lambda e: e.create_time_since_epoch):
        node = next(
            (c.name for c in store.get_contexts_by_execution(execution.id) if c.type == "node"), None
        )
        if node is None:
            continue
        node_id = node.split(".", 1)[-1]
        outputs: dict[str, list[str]] = {}
        properties: dict[str, list[dict[str, Any]]] = {}
        for ev in events:
            if ev.execution_id != execution.id or ev.type != metadata_store_pb2.Event.OUTPUT:
                continue
            key = ev.path.steps[0].key
            artifact = artifacts[ev.artifact_id]
            outputs.setdefault(key, []).append(artifact.uri)
            values = {k: _value(v) for k, v in artifact.properties.items()}
            values.update({k: _value(v) for k, v in artifact.custom_properties.items()})
            properties.setdefault(key, []).append(values)
        results[node_id] = NodeResult(
            node_id, _STATES.Name(execution.last_known_state), execution.type, outputs, properties
        )
    return results


def _value(v: metadata_store_pb2.Value) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def load_evaluation(evaluation_uri: str, blessing: NodeResult | None = None) -> Evaluation:
    """Read TFMA metrics and validation results from an Evaluator output."""
    import tensorflow_model_analysis as tfma

    result = tfma.load_eval_result(evaluation_uri)
    slices = []
    overall = None
    for slice_key, metrics in result.slicing_metrics:
        values = {
            name: float(value.get("doubleValue", math.nan))
            for name, value in metrics.get("", {}).get("", {}).items()
            if isinstance(value, dict) and "doubleValue" in value
        }
        name = "Overall" if not slice_key else ", ".join(f"{k}={v}" for k, v in slice_key)
        entry = SliceMetrics(name, values)
        if not slice_key:
            overall = entry
        else:
            slices.append(entry)
    validation = tfma.load_validation_result(evaluation_uri)
    failures = [
        _describe_failure(per_slice.slice_key, failure)
        for per_slice in validation.metric_validations_per_slice
        for failure in per_slice.failures
    ]
    blessed = bool(validation.validation_ok)
    baseline_uri = None
    if blessing is not None:
        blessed = bool(blessing.output_property("blessing", "blessed"))
        baseline_uri = blessing.output_property("blessing", "baseline_model")
    return Evaluation(overall or SliceMetrics("Overall", {}), slices, blessed, failures, baseline_uri)


def _describe_failure(slice_key: Any, failure: Any) -> str:
    key = failure.metric_key
    value = failure.metric_value.double_value.value
    where = "overall" if not slice_key.single_slice_keys else ", ".join(
        f"{k.column}={k.bytes_value.decode() or k.int64_value or k.float_value}"
        for k in slice_key.single_slice_keys
    )
    threshold = failure.metric_threshold
    if key.is_diff:
        allowed = threshold.change_threshold.absolute.value
        return f"{key.name} changed by {value:+.4f} against the baseline, more than the allowed {allowed:+.4f} ({where})"
    if threshold.value_threshold.HasField("lower_bound"):
        floor = threshold.value_threshold.lower_bound.value
        return f"{key.name} {value:.4f} is below the floor {floor} ({where})"
    return f"{key.name} {value:.4f} fails its threshold ({where})"
