"""CsvExampleGen that checks its CSV input first, reads missing-value tokens as missing,
and leaves out rows without a label.

The stock executor reads ``NA`` in a numeric column as a string, which makes
the whole column a string column; here the tokens of ``data.missing_values``
become empty cells before types are inferred, as the CSV check and ``tfxp
data``/``tfxp schema`` read them (``CsvToExample``). A row whose label columns
are missing cannot be trained or graded on: it is dropped, and the count is
recorded on the Examples artifact (``rows_without_label``) for the summary.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
from google.protobuf import wrappers_pb2
from tfx import v1 as tfx
from tfx.components.example_gen.csv_example_gen import executor as csv_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import io_utils, proto_utils
from tfx_bsl.coders import csv_decoder

from models.features import FeatureSpec, from_dict
from pipeline.data_check import check_csv_dir

# The custom property the executor records on its Examples output.
ROWS_WITHOUT_LABEL = "rows_without_label"
_COUNT_DIR = "_rows_without_label_dir"


def csv_options(spec: FeatureSpec, missing_values: Sequence[str]) -> example_gen_pb2.CustomConfig:
    """ExampleGen's ``custom_config``: the spec and the missing-value tokens (part of its cache key)."""
    payload = json.dumps({"features": spec.to_dict(), "missing_values": list(missing_values)}, sort_keys=True)
    config = example_gen_pb2.CustomConfig()
    config.custom_config.Pack(wrappers_pb2.StringValue(value=payload))
    return config


def _read_options(exec_properties: dict[str, Any]) -> tuple[FeatureSpec, tuple[str, ...]]:
    config = example_gen_pb2.CustomConfig()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.CUSTOM_CONFIG_KEY], config)
    value = wrappers_pb2.StringValue()
    config.custom_config.Unpack(value)
    raw = json.loads(value.value)
    return from_dict(raw["features"]), tuple(raw["missing_values"])


class CsvToExample(beam.PTransform):
    """CSV files to ``tf.Example``s as CsvExampleGen makes them, with ``missing_values`` read as empty.

    With ``label_columns``, rows missing any of them are dropped and, with
    ``count_path``, their number is written there.
    """

    def __init__(
        self,
        pattern: str,
        missing_values: Iterable[str] = (),
        label_columns: Sequence[str] = (),
        count_path: str = "",
    ) -> None:
        super().__init__()
        self._pattern = pattern
        self._missing = frozenset(v.encode() for v in missing_values)
        self._label_columns = tuple(label_columns)
        self._count_path = count_path

    def expand(self, pipeline: beam.Pipeline) -> beam.PCollection:
        files = fileio.glob(self._pattern)
        if not files:
            raise RuntimeError(f"no files match {self._pattern}")
        names = io_utils.load_csv_column_names(files[0])
        missing = self._missing
        label_at = [names.index(c) for c in self._label_columns]

        def blank(cells: list[bytes]) -> list[bytes]:
            return [b"" if cell in missing else cell for cell in cells]

        rows = (
            pipeline
            | "Files" >> beam.Create(files)
            | "Read" >> beam.ParDo(csv_executor._ReadCsvRecordsFromTextFile())  # noqa: SLF001 - pinned TFX
            | "Parse" >> beam.ParDo(csv_decoder.ParseCSVLine(delimiter=","))
            | "Cells" >> beam.Keys()
            | "BlankMissing" >> beam.Map(blank)
        )
        if label_at:
            labelled = rows | "HasLabel" >> beam.Filter(lambda c: not c or all(c[i] for i in label_at))
            if self._count_path:
                _ = (
                    rows
                    | "NoLabel" >> beam.Filter(lambda c: bool(c) and not all(c[i] for i in label_at))
                    | "Count" >> beam.combiners.Count.Globally()
                    | "Write" >> beam.io.WriteToText(self._count_path, shard_name_template="")
                )
            rows = labelled
        types = beam.pvalue.AsSingleton(
            rows | "InferTypes" >> beam.CombineGlobally(csv_decoder.ColumnTypeInferrer(names, skip_blank_lines=True))
        )
        return rows | "ToExample" >> beam.ParDo(csv_executor._ParsedCsvToTfExample(), types)  # noqa: SLF001


def _to_examples(exec_properties: dict[str, Any], split_pattern: str) -> CsvToExample:
    spec, missing_values = _read_options(exec_properties)
    count_dir = exec_properties.get(_COUNT_DIR, "")
    return CsvToExample(
        os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], split_pattern),
        missing_values,
        spec.label.source_columns,
        os.path.join(count_dir, "count.txt") if count_dir else "",
    )


class CheckedCsvExecutor(csv_executor.Executor):
    """Checks the input with :func:`check_csv_dir`, then converts it with :class:`CsvToExample`."""

    def GetInputSourceToExamplePTransform(self) -> Any:
        return _to_examples

    def Do(self, input_dict: dict[str, Any], output_dict: dict[str, Any], exec_properties: dict[str, Any]) -> None:
        output_config = example_gen_pb2.Output()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config)
        # The driver has already put the span's number into the pattern.
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        spec, missing_values = _read_options(exec_properties)
        check_csv_dir(
            exec_properties[standard_component_specs.INPUT_BASE_KEY],
            spec=spec,
            missing_values=missing_values,
            partition_column=output_config.split_config.partition_feature_name,
            pattern=input_config.splits[0].pattern,
        )
        count_dir = os.path.join(self._get_tmp_dir(), "rows_without_label")
        super().Do(input_dict, output_dict, {**exec_properties, _COUNT_DIR: count_dir})
        count_file = os.path.join(count_dir, "count.txt")
        count = int(fileio.open(count_file).read().strip() or 0) if fileio.exists(count_file) else 0
        for examples in output_dict[standard_component_specs.EXAMPLES_KEY]:
            examples.set_int_custom_property(ROWS_WITHOUT_LABEL, count)


class CheckedCsvExampleGen(tfx.components.CsvExampleGen):
    """CsvExampleGen whose executor checks headers, columns, rows and labels first (see module doc)."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(CheckedCsvExecutor)

    def __init__(
        self,
        *,
        input_base: Any,
        input_config: example_gen_pb2.Input,
        output_config: example_gen_pb2.Output,
        range_config: Any,
        spec: FeatureSpec,
        missing_values: Sequence[str],
    ) -> None:
        from tfx.components.example_gen.component import FileBasedExampleGen

        FileBasedExampleGen.__init__(
            self,
            input_base=input_base,
            input_config=input_config,
            output_config=output_config,
            custom_config=csv_options(spec, missing_values),
            range_config=range_config,
        )
