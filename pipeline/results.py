"""What a pipeline run produced, read back from MLMD and its artifacts.

Used by ``tfxp run`` for its summary and by ``tfxp report``; tests use it to
find artifacts instead of guessing directory names.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from google.protobuf import json_format
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
    # MLMD registers an execution when its node starts and updates it when it
    # ends: the two timestamps (ms) give the node's time.
    started_ms: int = 0
    updated_ms: int = 0

    @property
    def seconds(self) -> float:
        return (self.updated_ms - self.started_ms) / 1000

    def output_uri(self, key: str) -> str:
        uris = self.outputs.get(key) or []
        if len(uris) != 1:
            raise LookupError(f"{self.node_id} has {len(uris)} {key!r} outputs, expected 1")
        return uris[0]

    def output_property(self, key: str, name: str) -> Any:
        props = self.output_properties.get(key) or [{}]
        return props[0].get(name)


def is_judged(examples: float, positives: float, min_examples: int, min_class_examples: int) -> bool:
    """Whether a slice is big enough for its thresholds to decide: the one rule, used by the gate too."""
    return examples >= min_examples and min(positives, examples - positives) >= min_class_examples


@dataclasses.dataclass(frozen=True)
class SliceMetrics:
    """One slice's metrics on the test split: the model's, the rule's and the baseline's."""

    slice: str  # "Overall" or "feature=value[, feature=value]"
    metrics: dict[str, float]  # the candidate model
    rule: dict[str, float] = dataclasses.field(default_factory=dict)  # the rule, same rows
    baseline: dict[str, float] = dataclasses.field(default_factory=dict)  # latest blessed model, if any

    @property
    def example_count(self) -> int:
        return int(self.metrics.get("example_count", 0))

    @property
    def majority_accuracy(self) -> float | None:
        """The accuracy of always predicting the slice's commoner label (the LiftOverMajority baseline)."""
        share = self.metrics.get("mean_label")
        return None if share is None else max(share, 1.0 - share)

    @property
    def positives(self) -> int:
        return round(self.metrics.get("mean_label", 0.0) * self.example_count)

    def judged(self, min_examples: int, min_class_examples: int) -> bool:
        return is_judged(self.example_count, self.positives, min_examples, min_class_examples)


@dataclasses.dataclass(frozen=True)
class Failure:
    """One threshold the candidate failed, read from TFMA's ValidationResult."""

    slice: str
    metric: str  # the gated metric, e.g. "auc"
    # floor, drop, lift (over the rule), majority (over the majority class)
    # or missing (a configured slice absent from the data)
    kind: str
    value: float = math.nan  # the candidate's value (floor, lift) or its change (drop)
    bound: float = math.nan
    baseline: float | None = None  # the baseline's value on the slice, for a drop
    config_key: str = ""  # the eval.* setting that decided

    def __str__(self) -> str:
        setting = f" [{self.config_key}]" if self.config_key else ""
        if self.kind == "missing":
            return f"{self.slice}: configured slice absent from the test split, so it cannot be judged{setting}"
        if self.kind == "drop":
            before = f"{self.baseline:.4f}" if self.baseline is not None else "?"
            after = f"{self.baseline + self.value:.4f}" if self.baseline is not None else "?"
            return (
                f"{self.slice}: {self.metric} fell {-self.value:.4f} against the baseline "
                f"({before} -> {after}); at most {self.bound:.4f} allowed{setting}"
            )
        if self.kind in ("lift", "majority"):
            other = "the rule" if self.kind == "lift" else "the majority class"
            return f"{self.slice}: {self.metric} beats {other} by {self.value:+.4f}; needs {self.bound:+.4f}{setting}"
        return f"{self.slice}: {self.metric} {self.value:.4f} is below the floor {self.bound:.4f}{setting}"


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """TFMA results on the test split: per-slice metrics and the blessing with its reasons."""

    overall: SliceMetrics
    slices: list[SliceMetrics]
    blessed: bool
    failures: list[Failure]
    baseline_uri: str | None  # the latest blessed model compared against, if any

    def slice(self, name: str) -> SliceMetrics:
        for s in [self.overall, *self.slices]:
            if s.slice == name:
                return s
        raise KeyError(f"no slice {name!r} in the evaluation")

    def judged_slices(self, min_examples: int, min_class_examples: int) -> list[SliceMetrics]:
        """Slices whose thresholds decide, largest first."""
        judged = [s for s in self.slices if s.judged(min_examples, min_class_examples)]
        return sorted(judged, key=lambda s: (-s.example_count, s.slice))

    def failed_slices(self) -> set[str]:
        return {f.slice for f in self.failures}


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def latest_run(metadata_path: str, pipeline_name: str, run_id: str | None = None) -> dict[str, NodeResult]:
    """Node results of one run of ``pipeline_name`` (the newest by default), keyed by node id."""
    store = open_store(metadata_path)
    run_id = run_id or newest_run_id(store, pipeline_name)
    run_ctx = store.get_context_by_type_and_name("pipeline_run", run_id) if run_id else None
    return _node_results(store, store.get_executions_by_context(run_ctx.id)) if run_ctx else {}


def newest_run_id(store: metadata_store.MetadataStore, pipeline_name: str) -> str | None:
    """The run id (pipeline_run context name) of the pipeline's newest execution, if any."""
    pipeline_ctx = store.get_context_by_type_and_name("pipeline", pipeline_name)
    executions = store.get_executions_by_context(pipeline_ctx.id) if pipeline_ctx else []
    if not executions:
        return None
    newest = max(executions, key=lambda e: e.create_time_since_epoch)
    return next((c.name for c in store.get_contexts_by_execution(newest.id) if c.type == "pipeline_run"), None)


def _node_results(store: metadata_store.MetadataStore, executions: list[Any]) -> dict[str, NodeResult]:
    results: dict[str, NodeResult] = {}
    events = store.get_events_by_execution_ids([e.id for e in executions])
    artifact_ids = {ev.artifact_id for ev in events if ev.type == metadata_store_pb2.Event.OUTPUT}
    artifacts = {a.id: a for a in store.get_artifacts_by_id(list(artifact_ids))}
    for execution in sorted(executions, key=lambda e: e.create_time_since_epoch):
        node = next((c.name for c in store.get_contexts_by_execution(execution.id) if c.type == "node"), None)
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
            values = {k: property_value(v) for k, v in artifact.properties.items()}
            values.update({k: property_value(v) for k, v in artifact.custom_properties.items()})
            properties.setdefault(key, []).append(values)
        results[node_id] = NodeResult(
            node_id,
            _STATES.Name(execution.last_known_state),
            execution.type,
            outputs,
            properties,
            execution.create_time_since_epoch,
            execution.last_update_time_since_epoch,
        )
    return results


def property_value(v: metadata_store_pb2.Value) -> Any:
    kind = v.WhichOneof("value")
    if kind == "struct_value":  # a JSON custom property; TFX wraps it as {"__value__": ...}
        value = json_format.MessageToDict(v.struct_value)
        return value.get("__value__", value)
    return getattr(v, kind) if kind else None


def slice_name(slice_key: Any) -> str:
    """ "Overall" or "feature=value[, ...]" for a TFMA SliceKey proto."""
    parts = []
    for key in slice_key.single_slice_keys:
        kind = key.WhichOneof("kind")
        value = getattr(key, kind) if kind else ""
        parts.append(f"{key.column}={value.decode() if isinstance(value, bytes) else value}")
    return ", ".join(parts) or "Overall"


def _spec_name(spec: Any) -> str:
    keys = list(spec.feature_keys) + [f"{k}={v}" for k, v in spec.feature_values.items()]
    return " x ".join(keys) or "Overall"


def load_evaluation(evaluation_uri: str, blessing: NodeResult | None = None) -> Evaluation:
    """Read TFMA metrics and validation results from an Evaluator output."""
    import tensorflow_model_analysis as tfma

    from models.rule import RULE_OUTPUT
    from pipeline.slice_gate import BASELINE_MODEL

    by_slice: dict[str, SliceMetrics] = {}
    order: list[str] = []
    for metrics in tfma.load_metrics(evaluation_uri):
        name = slice_name(metrics.slice_key)
        entry = by_slice.setdefault(name, SliceMetrics(name, {}, {}, {}))
        order.append(name)
        for kv in metrics.metric_keys_and_values:
            key = kv.key
            if key.is_diff or not kv.value.HasField("double_value"):
                continue
            if key.output_name == RULE_OUTPUT:
                if key.model_name == BASELINE_MODEL:
                    continue  # the baseline model's copy of the rule: same rule, older fit
                target = entry.rule
            else:
                target = entry.baseline if key.model_name == BASELINE_MODEL else entry.metrics
            target[key.name] = kv.value.double_value.value
    validation = tfma.load_validation_result(evaluation_uri)
    failures = [
        _failure(slice_name(per_slice.slice_key), failure, by_slice.get(slice_name(per_slice.slice_key)))
        for per_slice in validation.metric_validations_per_slice
        for failure in per_slice.failures
    ]
    failures += [
        Failure(
            _spec_name(spec),
            "",
            "missing",
            config_key="eval.crossed_slices" if len(spec.feature_keys) > 1 else "features (slice: true)",
        )
        for spec in validation.missing_slices
    ]
    blessed = bool(validation.validation_ok)
    baseline_uri = None
    if blessing is not None:
        blessed = bool(blessing.output_property("blessing", "blessed"))
        baseline_uri = blessing.output_property("blessing", "baseline_model")
    overall = by_slice.pop("Overall", SliceMetrics("Overall", {}))
    slices = [by_slice[name] for name in dict.fromkeys(order) if name in by_slice]
    return Evaluation(overall, slices, blessed, failures, baseline_uri)


def _failure(where: str, failure: Any, metrics: SliceMetrics | None) -> Failure:
    """A TFMA MetricValidationFailure in words, with the eval.* key that set its bound."""
    from pipeline.slice_gate import JUDGED_PREFIX, LIFT_SUFFIX, MAJORITY_SUFFIX

    name = failure.metric_key.name
    value = failure.metric_value.double_value.value
    threshold = failure.metric_threshold
    sliced = where != "Overall"
    if name.endswith(LIFT_SUFFIX):
        metric = name[: -len(LIFT_SUFFIX)]
        return Failure(
            where,
            metric,
            "lift",
            value,
            threshold.value_threshold.lower_bound.value,
            config_key=f"eval.min_lift_over_rule.{metric}",
        )
    if name.endswith(MAJORITY_SUFFIX):
        metric = name[: -len(MAJORITY_SUFFIX)]
        return Failure(
            where,
            metric,
            "majority",
            value,
            threshold.value_threshold.lower_bound.value,
            config_key=f"eval.min_lift_over_majority.{metric}",
        )
    metric = name[len(JUDGED_PREFIX) :] if name.startswith(JUDGED_PREFIX) else name
    if failure.metric_key.is_diff:
        baseline = metrics.baseline.get(metric) if metrics else None
        key = f"eval.{'slice_max_drops' if sliced else 'max_drops'}.{metric}"
        return Failure(where, metric, "drop", value, -threshold.change_threshold.absolute.value, baseline, key)
    key = f"eval.{'slice_floors' if sliced else 'floors'}.{metric}"
    return Failure(where, metric, "floor", value, threshold.value_threshold.lower_bound.value, config_key=key)


def chosen_rule(model_run_uri: str) -> str | None:
    """The feature of the rule the Trainer exported (``models.trainer.RULE_FILE``), if recorded."""
    import json

    import tensorflow as tf

    path = f"{model_run_uri.rstrip('/')}/rule.json"
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f).get("feature")


def trained_hparams(model_run_uri: str) -> dict[str, Any] | None:
    """The hyperparameters the Trainer trained with (``models.trainer.HPARAMS_FILE``), if recorded."""
    import json

    import tensorflow as tf

    from models.trainer import HPARAMS_FILE

    path = f"{model_run_uri.rstrip('/')}/{HPARAMS_FILE}"
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def only_json_in_dir(uri: str) -> Any:
    """The JSON file a Tuner output holds: best_hyperparameters (a KerasTuner config) or tuner_results."""
    import json

    from tfx.utils import io_utils

    return json.loads(io_utils.read_string_file(io_utils.get_only_uri_in_dir(uri)))
