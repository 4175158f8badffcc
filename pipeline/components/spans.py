"""Spans: which span a run compares with, and which spans it trains on.

CsvExampleGen records an Examples artifact's span as a custom property, so
``artifact.span`` (and StatisticsGen's copy of it) reads 0: :func:`span_of`
reads the custom property. Both strategies take every Examples artifact in the
store and keep CsvExampleGen's (those with an input fingerprint).
"""

from __future__ import annotations

from typing import Any

from tfx import types
from tfx.dsl.components.common import resolver
from tfx.utils import typing_utils

CURRENT_KEY = "current"
EXAMPLES_KEY = "examples"
HISTORY_KEY = "statistics"
_SPAN = "span"
_FINGERPRINT = "input_fingerprint"


def _ingested(artifacts: Any) -> list[types.Artifact]:
    """The Examples ExampleGen made (Transform's outputs are Examples too)."""
    return [a for a in artifacts if a.has_custom_property(_FINGERPRINT)]


def span_of(artifact: types.Artifact) -> int:
    """An Examples artifact's span. CsvExampleGen records it as a custom property,
    so ``artifact.span`` (and StatisticsGen's copy of it) reads 0."""
    if artifact.has_custom_property(_SPAN):
        return artifact.get_int_custom_property(_SPAN)
    return artifact.span


class PreviousSpanStrategy(resolver.ResolverStrategy):
    """Resolve the newest span older than this run's that passed the gate, and its statistics.

    Inputs: ``current`` (this run's Examples), ``examples`` (every Examples
    CsvExampleGen made) and ``statistics`` (every ExampleStatistics
    StatisticsGen made). Outputs ``examples`` and ``statistics``: the latest
    Examples of the greatest span below the current one that a Transform read
    (it passed the gate) and its statistics, found by lineage; both empty on
    the first span.
    """

    def resolve_artifacts(
        self, store: Any, input_dict: typing_utils.ArtifactMultiMap
    ) -> typing_utils.ArtifactMultiMap | None:
        current = list(input_dict.get(CURRENT_KEY, []))
        empty = {CURRENT_KEY: current, EXAMPLES_KEY: [], HISTORY_KEY: []}
        if not current:
            return empty
        now = max(span_of(c) for c in current)
        stats_by_examples = _statistics_by_examples(store, list(input_dict.get(HISTORY_KEY, [])))
        passed = _passed_the_gate(store, list(stats_by_examples))
        older = [
            a
            for a in _ingested(input_dict.get(EXAMPLES_KEY, []))
            if span_of(a) < now and a.id in stats_by_examples and a.id in passed
        ]
        if not older:
            return empty
        previous = max(older, key=lambda a: (span_of(a), a.id))
        return {CURRENT_KEY: current, EXAMPLES_KEY: [previous], HISTORY_KEY: [stats_by_examples[previous.id]]}


def _passed_the_gate(store: Any, examples_ids: list[int]) -> set[int]:
    """The Examples a Transform read: their span passed the data gate (a span the gate
    stopped is no baseline: the span after it is compared with the last good one)."""
    from ml_metadata.proto import metadata_store_pb2

    reads = [
        e for e in store.get_events_by_artifact_ids(examples_ids) if e.type == metadata_store_pb2.Event.INPUT
    ]
    ok = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)
    executions = {
        e.id
        for e in store.get_executions_by_id(list({r.execution_id for r in reads}))
        if e.type.endswith(".Transform") and e.last_known_state in ok
    }
    return {r.artifact_id for r in reads if r.execution_id in executions}


def _statistics_by_examples(store: Any, statistics: list[types.Artifact]) -> dict[int, types.Artifact]:
    """Examples artifact id -> the newest statistics computed from it (by MLMD lineage)."""
    from ml_metadata.proto import metadata_store_pb2

    by_id = {s.id: s for s in statistics}
    made = {
        e.execution_id: e.artifact_id
        for e in store.get_events_by_artifact_ids(list(by_id))
        if e.type == metadata_store_pb2.Event.OUTPUT
    }
    found: dict[int, types.Artifact] = {}
    for event in store.get_events_by_execution_ids(list(made)):
        if event.type == metadata_store_pb2.Event.INPUT:
            stats = by_id[made[event.execution_id]]
            if event.artifact_id not in found or found[event.artifact_id].id < stats.id:
                found[event.artifact_id] = stats
    return found


class SpanWindowStrategy(resolver.ResolverStrategy):
    """Resolve the last ``num_spans`` spans up to this run's: the Trainer's rolling window.

    Inputs: ``current`` (this run's Examples) and ``examples`` (every Examples).
    Output ``examples``: this run's artifact, plus the latest artifact of each of
    the ``num_spans - 1`` greatest spans below it that passed the gate, oldest first.
    """

    def __init__(self, num_spans: int = 1) -> None:
        self.num_spans = num_spans

    def resolve_artifacts(
        self, store: Any, input_dict: typing_utils.ArtifactMultiMap
    ) -> typing_utils.ArtifactMultiMap | None:
        current = list(input_dict.get(CURRENT_KEY, []))
        if not current:
            return {CURRENT_KEY: [], EXAMPLES_KEY: []}
        now = max(span_of(c) for c in current)
        ingested = _ingested(input_dict.get(EXAMPLES_KEY, []))
        # As for drift: a span the gate stopped is never trained on.
        passed = _passed_the_gate(store, [a.id for a in ingested]) if self.num_spans > 1 else set()
        latest: dict[int, types.Artifact] = {}
        for a in ingested:
            span = span_of(a)
            if span < now and a.id in passed and (span not in latest or latest[span].id < a.id):
                latest[span] = a
        earlier = [latest[s] for s in sorted(latest)[-(self.num_spans - 1) :]] if self.num_spans > 1 else []
        return {CURRENT_KEY: current, EXAMPLES_KEY: earlier + current}
