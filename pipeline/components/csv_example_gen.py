"""CsvExampleGen that checks its CSV input first and fails with a clear message."""

from __future__ import annotations

from typing import Any

from tfx import v1 as tfx
from tfx.components.example_gen.csv_example_gen import executor as csv_executor
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from pipeline.data_check import check_csv_dir


class CheckedCsvExecutor(csv_executor.Executor):
    """The stock CSV executor, after :func:`check_csv_dir` on the input directory."""

    def Do(self, input_dict: dict[str, Any], output_dict: dict[str, Any], exec_properties: dict[str, Any]) -> None:
        output_config = example_gen_pb2.Output()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config)
        # The driver has already put the span's number into the pattern.
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        check_csv_dir(
            exec_properties[standard_component_specs.INPUT_BASE_KEY],
            partition_column=output_config.split_config.partition_feature_name,
            pattern=input_config.splits[0].pattern,
        )
        super().Do(input_dict, output_dict, exec_properties)


class CheckedCsvExampleGen(tfx.components.CsvExampleGen):
    """CsvExampleGen whose executor checks headers, columns and rows first."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(CheckedCsvExecutor)
