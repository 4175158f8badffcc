"""Run history and lineage, read from ML Metadata (the one record of run state).

TFX's ``tfx run list`` / ``run status`` do not work for the local engine; these
functions read what LocalDagRunner recorded: one ``pipeline_run`` context per
run, one execution per component, and the events that tie artifacts to the
executions that made and used them.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from ml_metadata.proto import metadata_store_pb2

from pipeline.results import open_store

_STATES = metadata_store_pb2.Execution.State
_OUTPUT = metadata_store_pb2.Event.OUTPUT
_INPUT = metadata_store_pb2.Event.INPUT


class RunNotFound(LookupError):
    """No such run; the message lists the recent ones."""


@dataclasses.dataclass(frozen=True)
class Output:
    key: str
    type: str
    uri: str
    artifact_id: int


@dataclasses.dataclass(frozen=True)
class ComponentRun:
    """One component's execution within a run."""

    node_id: str
    state: str  # COMPLETE, CACHED, FAILED, RUNNING
    seconds: float
    execution_id: int
    outputs: list[Output]
    properties: dict[str, Any]  # the execution's recorded parameters (input_base, eval_config, ...)
    # For a cached component: the earlier execution whose outputs it reused, and its run.
    reused_execution: int | None = None
    reused_run: str | None = None


@dataclasses.dataclass(frozen=True)
class RunInfo:
    run_id: str
    started: float  # unix seconds
    seconds: float
    status: str  # succeeded, failed, running
    blessed: bool | None  # None: the run did not get as far as the Evaluator
    pushed: str | None  # the version directory pushed by this run, if any
    components: list[ComponentRun]

    def component(self, node_id: str) -> ComponentRun | None:
        return next((c for c in self.components if c.node_id == node_id), None)


@dataclasses.dataclass(frozen=True)
class LineageNode:
    """An artifact, the component run that made it, and the artifacts that went into it."""

    type: str
    uri: str
    producer: str  # node id of the execution that made it
    run_id: str
    details: dict[str, Any]
    inputs: list[LineageNode]


class _Store:
    """An MLMD store with the lookups the run views need, cached per call."""

    def __init__(self, metadata_path: str, pipeline_name: str) -> None:
        if not os.path.exists(metadata_path):
            raise RunNotFound(
                f"no runs of {pipeline_name} recorded: {metadata_path} does not exist; run `tfxp run` first"
            )
        self.store = open_store(metadata_path)
        self.pipeline_name = pipeline_name
        self._node_of: dict[int, str] = {}
        self._run_of: dict[int, str] = {}
        self._runs: list[Any] | None = None

    def runs(self) -> list[Any]:
        """``pipeline_run`` contexts of this pipeline, newest first."""
        if self._runs is not None:
            return self._runs
        pipeline = self.store.get_context_by_type_and_name("pipeline", self.pipeline_name)
        executions = self.store.get_executions_by_context(pipeline.id) if pipeline else []
        runs: dict[int, Any] = {}
        for execution in executions:
            for context in self.store.get_contexts_by_execution(execution.id):
                if context.type == "pipeline_run":
                    runs[context.id] = context
                    self._run_of[execution.id] = context.name
                elif context.type == "node":
                    self._node_of[execution.id] = context.name.split(".", 1)[-1]
        self._runs = sorted(runs.values(), key=lambda c: (c.create_time_since_epoch, c.id), reverse=True)
        return self._runs

    def node(self, execution_id: int) -> str:
        return self._node_of.get(execution_id, "?")

    def run_of(self, execution_id: int) -> str:
        return self._run_of.get(execution_id, "?")


def _value(v: metadata_store_pb2.Value) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def _properties(item: Any) -> dict[str, Any]:
    values = {k: _value(v) for k, v in item.properties.items()}
    values.update({k: _value(v) for k, v in item.custom_properties.items()})
    return values


def _run_info(s: _Store, context: Any) -> RunInfo:
    store = s.store
    executions = sorted(store.get_executions_by_context(context.id), key=lambda e: e.create_time_since_epoch)
    events = store.get_events_by_execution_ids([e.id for e in executions])
    out_ids = {ev.artifact_id for ev in events if ev.type == _OUTPUT}
    artifacts = {a.id: a for a in store.get_artifacts_by_id(list(out_ids))}
    producers: dict[int, list[int]] = {}
    for ev in store.get_events_by_artifact_ids(list(out_ids)):
        if ev.type == _OUTPUT:
            producers.setdefault(ev.artifact_id, []).append(ev.execution_id)
    types = {t.id: t.name for t in store.get_artifact_types()}
    components = []
    blessed = pushed = None
    for e in executions:
        outputs = [
            Output(
                ev.path.steps[0].key,
                types.get(artifacts[ev.artifact_id].type_id, "?"),
                artifacts[ev.artifact_id].uri,
                ev.artifact_id,
            )
            for ev in events
            if ev.execution_id == e.id and ev.type == _OUTPUT
        ]
        state = _STATES.Name(e.last_known_state)
        reused = None
        if state == "CACHED" and outputs:
            earlier = [x for x in producers.get(outputs[0].artifact_id, []) if x != e.id]
            reused = min(earlier) if earlier else None
        node = s.node(e.id)
        seconds = max(0.0, (e.last_update_time_since_epoch - e.create_time_since_epoch) / 1000)
        components.append(
            ComponentRun(
                node, state, seconds, e.id, outputs, _properties(e), reused, s.run_of(reused) if reused else None
            )
        )
        for output in outputs:
            props = _properties(artifacts[output.artifact_id])
            if output.type == "ModelBlessing":
                blessed = bool(props.get("blessed"))
            if output.type == "PushedModel" and props.get("pushed") and state == "COMPLETE":
                pushed = props.get("pushed_destination")
    states = {c.state for c in components}
    status = "failed" if "FAILED" in states else "running" if states & {"RUNNING", "NEW"} else "succeeded"
    started = executions[0].create_time_since_epoch / 1000 if executions else context.create_time_since_epoch / 1000
    ended = max((e.last_update_time_since_epoch for e in executions), default=0) / 1000
    return RunInfo(context.name, started, max(0.0, ended - started), status, blessed, pushed, components)


def list_runs(metadata_path: str, pipeline_name: str, limit: int = 20) -> list[RunInfo]:
    """Recent runs, newest first."""
    s = _Store(metadata_path, pipeline_name)
    return [_run_info(s, c) for c in s.runs()[:limit]]


def _find(s: _Store, run_id: str) -> Any:
    runs = s.runs()
    if not runs:
        raise RunNotFound(f"no runs of {s.pipeline_name} recorded yet: run `tfxp run` first")
    if run_id == "latest":
        return runs[0]
    for context in runs:
        if context.name == run_id:
            return context
    recent = ", ".join(c.name for c in runs[:5])
    raise RunNotFound(f"unknown run {run_id!r} of {s.pipeline_name}; recent runs: {recent}")


def show_run(metadata_path: str, pipeline_name: str, run_id: str = "latest") -> tuple[RunInfo, LineageNode | None]:
    """One run's components, and the lineage of what it pushed (or trained)."""
    s = _Store(metadata_path, pipeline_name)
    info = _run_info(s, _find(s, run_id))
    final = next(
        (
            o
            for node in ("Pusher", "Trainer")
            if (c := info.component(node))
            for o in c.outputs
            if o.type in ("PushedModel", "Model")
        ),
        None,
    )
    return info, (_lineage(s, final.artifact_id, set()) if final else None)


def _lineage(s: _Store, artifact_id: int, seen: set[int]) -> LineageNode:
    store = s.store
    [artifact] = store.get_artifacts_by_id([artifact_id])
    types = {t.id: t.name for t in store.get_artifact_types_by_id([artifact.type_id])}
    made = sorted(ev.execution_id for ev in store.get_events_by_artifact_ids([artifact_id]) if ev.type == _OUTPUT)
    details = {k: v for k, v in _properties(artifact).items() if k in ("span", "blessed", "pushed_version", "version")}
    if not made:
        return LineageNode(types[artifact.type_id], artifact.uri, "?", "?", details, [])
    producer = made[0]  # cached executions reuse the first one's outputs
    [execution] = store.get_executions_by_id([producer])
    s.runs()  # fills the node and run lookups
    props = _properties(execution)
    if "input_base" in props:  # ExampleGen: where the data came from
        details.update({k: props[k] for k in ("input_base", "input_fingerprint", "span") if k in props})
    events = store.get_events_by_execution_ids([producer])
    if types[artifact.type_id] == "ModelBlessing":  # the evaluation that decided it, beside it
        evaluation = [ev.artifact_id for ev in events if ev.type == _OUTPUT and ev.path.steps[0].key == "evaluation"]
        details["evaluation"] = store.get_artifacts_by_id(evaluation)[0].uri if evaluation else None
    # An artifact met twice (the examples feed Transform and the Evaluator) is
    # listed both times, with its own inputs only the first time.
    inputs: list[LineageNode] = []
    if artifact_id not in seen:
        seen.add(artifact_id)
        ordered = sorted(
            (ev for ev in events if ev.type == _INPUT), key=lambda ev: (ev.path.steps[0].key, ev.artifact_id)
        )
        inputs = [_lineage(s, ev.artifact_id, seen) for ev in ordered]
    return LineageNode(types[artifact.type_id], artifact.uri, s.node(producer), s.run_of(producer), details, inputs)
