"""``tfxp schema infer``: propose a schema from the data with SchemaGen.

The curated ``schema/schema.pbtxt`` is what the pipeline validates against;
SchemaGen only proposes. The proposal is written next to it with a diff, for
review like any code change.
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path

from tfx import v1 as tfx

from pipeline.config import PipelineConfig
from pipeline.data_check import check_csv_dir
from pipeline.pipeline import example_gen
from pipeline.results import latest_run


@dataclasses.dataclass(frozen=True)
class SchemaProposal:
    path: Path
    diff: str  # unified diff against the curated schema; empty if identical


def _schema_pipeline(cfg: PipelineConfig) -> tfx.dsl.Pipeline:
    gen = example_gen(cfg.data, cfg.features)
    statistics_gen = tfx.components.StatisticsGen(examples=gen.outputs["examples"]).with_id(
        "StatisticsGen"
    )
    schema_gen = tfx.components.SchemaGen(
        statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True
    ).with_id("SchemaGen")
    return tfx.dsl.Pipeline(
        pipeline_name=f"{cfg.name}-schema",
        pipeline_root=f"{cfg.output_dir.rstrip('/')}/schema_root",
        components=[gen, statistics_gen, schema_gen],
        enable_cache=cfg.enable_cache,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            cfg.metadata_path
        ),
        beam_pipeline_args=cfg.beam_pipeline_args(),
    )


def _content_lines(text: str) -> list[str]:
    return [line for line in text.splitlines(keepends=True) if not line.lstrip().startswith("#")]


def infer_schema(cfg: PipelineConfig, out: Path) -> SchemaProposal:
    """Run ExampleGen, StatisticsGen and SchemaGen; write the proposal to ``out``."""
    check_csv_dir(
        cfg.data.root, partition_column=cfg.data.partition_feature, spec=cfg.features,
        missing_values=cfg.data.missing_values,
    )
    tfx.orchestration.LocalDagRunner().run(_schema_pipeline(cfg))
    nodes = latest_run(cfg.metadata_path, f"{cfg.name}-schema")
    inferred = Path(nodes["SchemaGen"].output_uri("schema")) / "schema.pbtxt"
    text = inferred.read_text()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        "# Proposed by `tfxp schema infer` (SchemaGen) from "
        f"{cfg.data.root}.\n# Review against schema/schema.pbtxt before adopting.\n" + text
    )
    curated = Path(cfg.data.schema_file)
    diff = "".join(
        difflib.unified_diff(
            _content_lines(curated.read_text()),
            _content_lines(text),
            fromfile=str(curated),
            tofile=str(out),
        )
    )
    return SchemaProposal(out, diff)
