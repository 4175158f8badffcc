"""From a served version back to what it was trained on, through ML Metadata.

PushedModel (``pushed_version``) <- Pusher <- Model <- Trainer <- Examples ->
StatisticsGen -> ExampleStatistics. The skew baseline is the training
statistics of the very version that answered the requests.
"""

from __future__ import annotations

import dataclasses
import os

from ml_metadata.proto import metadata_store_pb2

from pipeline.results import open_store, property_value

_OUTPUT = metadata_store_pb2.Event.OUTPUT
_INPUT = metadata_store_pb2.Event.INPUT


@dataclasses.dataclass(frozen=True)
class Trained:
    version: int
    model_uri: str  # the Trainer's Model artifact (Format-Serving below it)
    examples_uri: str  # the run's own Examples (its span)
    statistics_uri: str  # their statistics (Split-train, Split-eval ...)


def _key(event: metadata_store_pb2.Event) -> str:
    return event.path.steps[0].key if event.path.steps else ""


def trained_version(metadata_path: str, version: int) -> Trained | None:
    """What ``version`` was trained on, or None if this store never pushed it."""
    if not os.path.exists(metadata_path):
        return None
    store = open_store(metadata_path)
    pushed = [
        a
        for a in store.get_artifacts_by_type("PushedModel")
        if "pushed_version" in a.custom_properties
        and str(property_value(a.custom_properties["pushed_version"])) == str(version)
    ]
    if not pushed:
        return None
    artifact = max(pushed, key=lambda a: a.id)
    pusher = _producer(store, artifact.id)
    model_id = _inputs(store, pusher, "model")
    if pusher is None or not model_id:
        return None
    trainer = _producer(store, model_id[0])
    examples_ids = sorted(_inputs(store, trainer, "examples"))
    if trainer is None or not examples_ids:
        return None
    # The window's newest Examples: this run's span (its ids grow with time).
    examples = examples_ids[-1]
    statistics = _statistics_of(store, examples)
    if statistics is None:
        return None
    uris = {a.id: a.uri for a in store.get_artifacts_by_id([model_id[0], examples, statistics])}
    return Trained(version, uris[model_id[0]], uris[examples], uris[statistics])


def _producer(store: object, artifact_id: int) -> int | None:
    made = sorted(e.execution_id for e in store.get_events_by_artifact_ids([artifact_id]) if e.type == _OUTPUT)  # type: ignore[attr-defined]
    return made[0] if made else None


def _inputs(store: object, execution_id: int | None, key: str) -> list[int]:
    if execution_id is None:
        return []
    events = store.get_events_by_execution_ids([execution_id])  # type: ignore[attr-defined]
    return [e.artifact_id for e in events if e.type == _INPUT and _key(e) == key]


def _statistics_of(store: object, examples_id: int) -> int | None:
    """The newest ExampleStatistics computed from ``examples_id``."""
    readers = [e.execution_id for e in store.get_events_by_artifact_ids([examples_id]) if e.type == _INPUT]  # type: ignore[attr-defined]
    found = []
    for event in store.get_events_by_execution_ids(readers):  # type: ignore[attr-defined]
        if event.type == _OUTPUT and _key(event) == "statistics":
            found.append(event.artifact_id)
    if not found:
        return None
    wanted = store.get_artifact_type("ExampleStatistics").id  # type: ignore[attr-defined]
    stats = [a.id for a in store.get_artifacts_by_id(found) if a.type_id == wanted]  # type: ignore[attr-defined]
    return max(stats) if stats else None
