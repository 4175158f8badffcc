"""A gate that fails the run on schema anomalies and drift, as the policy says.

ExampleValidator and the DriftValidator only write anomalies; neither stops a
run. Transform depends on this gate, so a run that fails here stops before any
model work, and nothing after the gate is published.

The policy (``validation`` in the config) says, per finding, ``fail`` or
``warn``: by TFDV anomaly type (``SCHEMA_NEW_COLUMN``), else by source
(``schema`` for ExampleValidator, ``drift`` for the DriftValidator), else the
default. Warned findings let the run go on; the summary lists them all.
"""

# No `from __future__ import annotations`: TFX parses these type hints at runtime.

import dataclasses
import json
import os
from collections.abc import Mapping

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.components.example_validator.executor import DEFAULT_FILE_NAME
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import io_utils

SCHEMA = "schema"
DRIFT = "drift"


class AnomaliesFound(RuntimeError):
    """The data has anomalies the policy fails on; the message lists each one."""


@dataclasses.dataclass(frozen=True)
class Anomaly:
    split: str
    feature: str
    kind: str
    description: str
    source: str = SCHEMA

    def __str__(self) -> str:
        return f"[{self.split}] {self.feature}: {self.kind}: {self.description}"

    def action(self, policy: "Mapping[str, object]") -> str:
        """``fail`` or ``warn`` for this finding under ``policy`` (see the module doc)."""
        kinds = policy.get("on_kind") or {}
        assert isinstance(kinds, Mapping)
        for kind in self.kind.split(", "):
            if kind in kinds:
                return str(kinds[kind])
        return str(kinds.get(self.source, policy.get("on_anomaly", "fail")))


def _split_dirs(artifact: standard_artifacts.ExampleAnomalies) -> "list[tuple[str, str]]":
    """(split name, directory) of each split; the DriftValidator writes split pairs."""
    out = []
    for split in artifact_utils.decode_split_names(artifact.split_names):
        pair = os.path.join(artifact.uri, f"SplitPair-{split}")
        out.append((split, pair if fileio.exists(pair) else artifact_utils.get_split_uri([artifact], split)))
    return out


def read_anomalies(artifact: standard_artifacts.ExampleAnomalies, source: str = SCHEMA) -> "list[Anomaly]":
    """Every anomaly of every split of an ExampleAnomalies artifact."""
    found = []
    for split, directory in _split_dirs(artifact):
        anomalies = anomalies_pb2.Anomalies()
        anomalies.ParseFromString(io_utils.read_bytes_file(os.path.join(directory, DEFAULT_FILE_NAME)))
        found += anomalies_from_proto(anomalies, split, source)
    return found


def anomalies_from_proto(anomalies: anomalies_pb2.Anomalies, split: str, source: str = SCHEMA) -> "list[Anomaly]":
    """One Anomaly per feature (and the dataset) of a TFDV Anomalies proto."""
    found = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        kinds = [anomalies_pb2.AnomalyInfo.Type.Name(r.type) for r in info.reason] or ["UNKNOWN"]
        # Each reason's description is specific ("Expected data of type: FLOAT
        # but got BYTES"); the summary's is not ("Multiple errors").
        details = [r.description or r.short_description for r in info.reason]
        description = "; ".join(d for d in details if d) or info.description or info.short_description
        found.append(Anomaly(split, feature, ", ".join(kinds), description, source))
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        details = [r.description or r.short_description for r in info.reason]
        description = "; ".join(d for d in details if d) or info.short_description or info.description
        found.append(Anomaly(split, "<dataset>", "DATASET", description, source))
    return found


def format_anomalies(failing: "list[Anomaly]", warned: "list[Anomaly]" = ()) -> str:  # type: ignore[assignment]
    n = len(failing)
    lines = [f"the data gate stopped the run: {n} finding{'' if n == 1 else 's'} the policy fails on:"]
    lines += [f"  - {a.source}: {a}" for a in failing]
    if warned:
        lines.append(f"and {len(warned)} the policy only warns on:")
        lines += [f"  - {a.source}: {a}" for a in warned]
    advice = []
    if any(a.source == SCHEMA for a in failing):
        advice.append(
            "for schema anomalies, fix the data, or, if the change is intended, update "
            "schema/schema.pbtxt (`tfxp schema update --data DIR` proposes the smallest change, in words)"
        )
    if any(a.source == DRIFT for a in failing):
        advice.append(
            "for drift, check the new span; if the change is real and expected, re-run with "
            "`--gate-policy warn` (or set validation.on_kind: {drift: warn}), or raise the "
            "feature's drift_comparator threshold in schema/schema.pbtxt"
        )
    lines.append("What to do: " + "; ".join(advice) + ".")
    return "\n".join(lines)


def judge(found: "list[Anomaly]", policy: "Mapping[str, object]") -> "tuple[list[Anomaly], list[Anomaly]]":
    """(failing, warned) findings under ``policy``."""
    failing = [a for a in found if a.action(policy) == "fail"]
    return failing, [a for a in found if a not in failing]


@tfx.dsl.components.component
def AnomaliesGate(
    anomalies: tfx.dsl.components.InputArtifact[standard_artifacts.ExampleAnomalies],
    drift_anomalies: tfx.dsl.components.InputArtifact[standard_artifacts.ExampleAnomalies],
    policy: tfx.dsl.components.Parameter[str] = "{}",
) -> None:
    """Raise AnomaliesFound, listing each finding, if the policy fails on any."""
    found = read_anomalies(anomalies, SCHEMA) + read_anomalies(drift_anomalies, DRIFT)
    failing, warned = judge(found, json.loads(policy))
    if failing:
        raise AnomaliesFound(format_anomalies(failing, warned))
