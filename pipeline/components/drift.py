"""Drift between spans: TFX's DistributionValidator, fed the previous span's statistics.

- :class:`pipeline.components.spans.PreviousSpanStrategy` resolves the
  statistics of the newest span before the current one, or nothing on the first span.
- :class:`DriftValidator` is TFX's DistributionValidator with two changes: the
  baseline may be absent (the first span passes, and says so), and every
  distance is recorded, below threshold too, as the ``drift`` custom property of
  its anomalies artifact in MLMD. TFDV reports a distance in the anomalies only
  when it crosses its threshold (data-validation#181); its ``drift_skew_info``
  holds them all.
- :func:`drift_config` builds the validator's config, at run time, from the
  imported schema's ``drift_comparator``s: the curated schema stays the one
  place thresholds live, and a threshold change re-runs the step.
"""

from __future__ import annotations

import os
from typing import Any

from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2
from tfx import types
from tfx.components.distribution_validator import executor as dv_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import distribution_validator_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import io_utils, json_utils

from pipeline.components.spans import EXAMPLES_KEY, span_of

BASELINE_EXAMPLES_KEY = "baseline_examples"
# The split pair compared: the train splits. Eval and test are 15% of a span
# each, too few rows for thresholds chosen on whole spans.
DRIFT_SPLIT = "train"
DRIFT_PROPERTY = "drift"


def drift_config(schema: schema_pb2.Schema) -> distribution_validator_pb2.DistributionValidatorConfig:
    """The DistributionValidator config: one comparator per schema feature that has one."""
    config = distribution_validator_pb2.DistributionValidatorConfig()
    for feature in schema.feature:
        if feature.HasField("drift_comparator"):
            entry = config.default_slice_config.feature.add()
            entry.path.step.append(feature.name)
            entry.distribution_comparator.CopyFrom(feature.drift_comparator)
    return config


def distances(anomalies: anomalies_pb2.Anomalies) -> dict[str, dict[str, Any]]:
    """Every measured distance of an Anomalies proto: feature -> kind, distance, threshold."""
    names = {
        anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE: "JSD",
        anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: "L-inf",
    }
    found: dict[str, dict[str, Any]] = {}
    for info in anomalies.drift_skew_info:
        for m in list(info.drift_measurements) + list(info.skew_measurements):
            found[".".join(info.path.step)] = {
                "comparator": names.get(m.type, str(m.type)),
                "distance": round(m.value, 6),
                "threshold": round(m.threshold, 6),
            }
    return dict(sorted(found.items()))


class DriftValidatorExecutor(dv_executor.Executor):
    """DistributionValidator's executor, then every distance onto the artifact."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> Any:
        schema_uri = artifact_utils.get_single_uri(input_dict[standard_component_specs.SCHEMA_KEY])
        schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(schema_uri))
        exec_properties = {
            **exec_properties,
            standard_component_specs.DISTRIBUTION_VALIDATOR_CONFIG_KEY: drift_config(schema),
        }
        # Unwired (data.span_resolution: none) reads as an empty baseline, as on a first span.
        input_dict = {standard_component_specs.BASELINE_STATISTICS_KEY: [], **input_dict}
        result = super().Do(input_dict, output_dict, exec_properties)
        artifact = artifact_utils.get_single_instance(output_dict[standard_component_specs.ANOMALIES_KEY])
        current = artifact_utils.get_single_instance(input_dict[standard_component_specs.STATISTICS_KEY])
        baseline = input_dict.get(standard_component_specs.BASELINE_STATISTICS_KEY) or []
        split = json_utils.loads(exec_properties[standard_component_specs.INCLUDE_SPLIT_PAIRS_KEY])[0][0]
        examples = input_dict.get(EXAMPLES_KEY) or []
        baseline_examples = input_dict.get(BASELINE_EXAMPLES_KEY) or []
        record: dict[str, Any] = {
            "span": span_of(examples[0]) if examples else current.span,
            "baseline_span": (span_of(baseline_examples[0]) if baseline_examples else 0)
            if baseline
            else None,
            "split": split,
            "features": {},
        }
        if baseline:
            path = os.path.join(artifact.uri, f"SplitPair-{split}_{split}", dv_executor.DEFAULT_FILE_NAME)
            anomalies = anomalies_pb2.Anomalies()
            anomalies.ParseFromString(io_utils.read_bytes_file(path))
            record["features"] = distances(anomalies)
        artifact.set_json_value_custom_property(DRIFT_PROPERTY, record)
        published = result.output_artifacts[standard_component_specs.ANOMALIES_KEY].artifacts
        for proto in published:
            proto.custom_properties[DRIFT_PROPERTY].CopyFrom(
                artifact.mlmd_artifact.custom_properties[DRIFT_PROPERTY]
            )
        return result


class _DriftValidatorSpec(standard_component_specs.DistributionValidatorSpec):
    # The config is built from the schema input at run time.
    PARAMETERS = {
        k: v
        for k, v in standard_component_specs.DistributionValidatorSpec.PARAMETERS.items()
        if k != standard_component_specs.DISTRIBUTION_VALIDATOR_CONFIG_KEY
    }
    INPUTS = {
        **standard_component_specs.DistributionValidatorSpec.INPUTS,
        standard_component_specs.BASELINE_STATISTICS_KEY: ChannelParameter(
            type=standard_artifacts.ExampleStatistics, optional=True
        ),
        standard_component_specs.SCHEMA_KEY: ChannelParameter(type=standard_artifacts.Schema),
        # Only for their span numbers (see span_of).
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples, optional=True),
        BASELINE_EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples, optional=True),
    }


class DriftValidator(base_component.BaseComponent):
    """DistributionValidator with an optional baseline, recording every distance."""

    SPEC_CLASS = _DriftValidatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(DriftValidatorExecutor)

    def __init__(
        self,
        statistics: types.BaseChannel,
        baseline_statistics: types.BaseChannel | None,
        schema: types.BaseChannel,
        examples: types.BaseChannel | None = None,
        baseline_examples: types.BaseChannel | None = None,
        split: str = DRIFT_SPLIT,
    ) -> None:
        keys = standard_component_specs
        super().__init__(
            spec=_DriftValidatorSpec(
                **{
                    keys.STATISTICS_KEY: statistics,
                    keys.BASELINE_STATISTICS_KEY: baseline_statistics,
                    keys.SCHEMA_KEY: schema,
                    EXAMPLES_KEY: examples,
                    BASELINE_EXAMPLES_KEY: baseline_examples,
                    keys.INCLUDE_SPLIT_PAIRS_KEY: json_utils.dumps([(split, split)]),
                    keys.ANOMALIES_KEY: types.Channel(type=standard_artifacts.ExampleAnomalies),
                }
            )
        )
