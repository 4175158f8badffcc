"""The drift time series: every distance every run measured, read from ML Metadata.

The DriftValidator records each comparison as the ``drift`` custom property of
its anomalies artifact: this span, the span it was compared with, and each
feature's distance and threshold, below threshold too.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from pipeline.components.drift import DRIFT_PROPERTY
from pipeline.results import open_store, property_value


@dataclasses.dataclass(frozen=True)
class DriftRecord:
    artifact_id: int
    created: float  # unix seconds
    span: int
    baseline_span: int | None  # None: the first span, nothing to compare with
    features: dict[str, dict[str, Any]]  # feature -> comparator, distance, threshold

    @property
    def exceeded(self) -> list[str]:
        return [f for f, d in self.features.items() if d["distance"] > d["threshold"]]


def drift_history(metadata_path: str, pipeline_name: str) -> list[DriftRecord]:
    """Every drift comparison of ``pipeline_name``, newest comparison per span last, in span order."""
    if not os.path.exists(metadata_path):
        return []
    store = open_store(metadata_path)
    node = store.get_context_by_type_and_name("node", f"{pipeline_name}.DriftValidator")
    if node is None:
        return []
    latest: dict[int, DriftRecord] = {}
    for artifact in store.get_artifacts_by_context(node.id):
        if DRIFT_PROPERTY not in artifact.custom_properties:
            continue
        record = drift_record(
            property_value(artifact.custom_properties[DRIFT_PROPERTY]),
            artifact.id,
            artifact.create_time_since_epoch / 1000,
        )
        if record.span not in latest or latest[record.span].artifact_id < record.artifact_id:
            latest[record.span] = record
    return [latest[s] for s in sorted(latest)]


def drift_record(value: dict[str, Any], artifact_id: int = 0, created: float = 0.0) -> DriftRecord:
    """A DriftRecord from the DriftValidator's ``drift`` property (as JSON)."""
    return DriftRecord(
        artifact_id=artifact_id,
        created=created,
        span=int(value["span"]),
        baseline_span=None if value.get("baseline_span") is None else int(value["baseline_span"]),
        features=value.get("features") or {},
    )
