"""Drift and skew outside a run: per-feature distances between two datasets, and schema checks.

The comparators and thresholds are the curated schema's (``drift_comparator``
and ``skew_comparator``), as in the pipeline's DriftValidator. Every distance
is reported, below threshold too.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2
from tfx.utils.io_utils import SchemaReader

from pipeline.components.drift import distances
from pipeline.components.gate import Anomaly, anomalies_from_proto
from pipeline.data_check import DataError

ENVIRONMENTS = ("TRAINING", "SERVING")


@dataclasses.dataclass(frozen=True)
class Distance:
    feature: str
    comparator: str  # L-inf or JSD
    distance: float
    threshold: float

    @property
    def exceeded(self) -> bool:
        return self.distance > self.threshold

    @classmethod
    def from_record(cls, feature: str, measured: dict[str, Any]) -> Distance:
        """From one feature's entry of the DriftValidator's ``drift`` property (see ``distances``)."""
        return cls(feature, measured["comparator"], measured["distance"], measured["threshold"])

    def to_dict(self) -> dict[str, object]:
        return {**dataclasses.asdict(self), "exceeded": self.exceeded}


def read_schema(path: str | Path) -> schema_pb2.Schema:
    try:
        return SchemaReader().read(str(path))
    except Exception as exc:  # noqa: BLE001 - a parse error or a missing file, told as one line
        raise DataError(
            f"cannot read the schema {path}: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        ) from None


def compare(
    baseline: statistics_pb2.DatasetFeatureStatisticsList,
    current: statistics_pb2.DatasetFeatureStatisticsList,
    schema: schema_pb2.Schema,
    kind: str = "drift",
) -> list[Distance]:
    """The schema's drift (or skew: baseline = training, current = serving) distances, every feature."""
    import tensorflow_data_validation as tfdv

    if kind == "drift":
        anomalies = tfdv.validate_statistics(current, schema, previous_statistics=baseline)
    else:
        anomalies = tfdv.validate_statistics(
            baseline, schema, serving_statistics=current, environment="TRAINING"
        )
    return [Distance.from_record(name, d) for name, d in distances(anomalies).items()]


def validate(
    stats: statistics_pb2.DatasetFeatureStatisticsList, schema: schema_pb2.Schema, environment: str | None
) -> list[Anomaly]:
    """Schema anomalies of ``stats`` in ``environment`` (TRAINING, SERVING or None for no environment)."""
    import tensorflow_data_validation as tfdv

    if environment is not None and environment not in schema.default_environment:
        known = ", ".join(schema.default_environment) or "none"
        raise DataError(f"environment {environment!r} is not in the schema; its environments: {known}")
    anomalies = tfdv.validate_statistics(stats, schema, environment=environment)
    return anomalies_from_proto(anomalies, environment or "data")
