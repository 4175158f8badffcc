"""A gate that fails the run when ExampleValidator found anomalies.

ExampleValidator only writes anomalies; it never stops a run. Transform
depends on this gate, so a run with anomalies stops before any model work.
"""

# No `from __future__ import annotations`: TFX parses these type hints at runtime.

import dataclasses
import os

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.components.example_validator.executor import DEFAULT_FILE_NAME
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import io_utils


class AnomaliesFound(RuntimeError):
    """The data has schema anomalies; the message lists each one."""


@dataclasses.dataclass(frozen=True)
class Anomaly:
    split: str
    feature: str
    kind: str
    description: str

    def __str__(self) -> str:
        return f"[{self.split}] {self.feature}: {self.kind}: {self.description}"


def read_anomalies(artifact: standard_artifacts.ExampleAnomalies) -> "list[Anomaly]":
    """Every anomaly of every split of an ExampleAnomalies artifact."""
    found = []
    for split in artifact_utils.decode_split_names(artifact.split_names):
        path = os.path.join(artifact_utils.get_split_uri([artifact], split), DEFAULT_FILE_NAME)
        anomalies = anomalies_pb2.Anomalies()
        anomalies.ParseFromString(io_utils.read_bytes_file(path))
        for feature, info in sorted(anomalies.anomaly_info.items()):
            kinds = [anomalies_pb2.AnomalyInfo.Type.Name(r.type) for r in info.reason] or ["UNKNOWN"]
            # Each reason's description is specific ("Expected data of type: FLOAT
            # but got BYTES"); the summary's is not ("Multiple errors").
            details = [r.description or r.short_description for r in info.reason]
            description = "; ".join(d for d in details if d) or info.description or info.short_description
            found.append(Anomaly(split, feature, ", ".join(kinds), description))
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            found.append(Anomaly(split, "<dataset>", "DATASET", info.short_description or info.description))
    return found


def format_anomalies(anomalies: "list[Anomaly]") -> str:
    lines = [f"ExampleValidator found {len(anomalies)} anomal{'y' if len(anomalies) == 1 else 'ies'}:"]
    lines += [f"  - {a}" for a in anomalies]
    lines.append(
        "Fix the data, or, if the change is intended, update schema/schema.pbtxt "
        "(`tfxp schema infer` proposes one) and review the diff."
    )
    return "\n".join(lines)


@tfx.dsl.components.component
def AnomaliesGate(
    anomalies: tfx.dsl.components.InputArtifact[standard_artifacts.ExampleAnomalies],
) -> None:
    """Raise AnomaliesFound, listing each anomaly, unless there are none."""
    found = read_anomalies(anomalies)
    if found:
        raise AnomaliesFound(format_anomalies(found))
