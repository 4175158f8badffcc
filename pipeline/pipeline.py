"""``create_pipeline(cfg)``: the whole DAG, the same for every runner."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tfx import v1 as tfx
from tfx.dsl.components.base import base_component

import models
from models.features import SPEC_KEY, FeatureSpec
from models.hparams import HPARAMS_KEY
from models.preprocessing import preprocessing_fn
from models.trainer import RULE_FEATURE_KEY, run_fn
from models.tuning import TUNING_KEY, tuner_fn
from pipeline.components.baseline import CANDIDATE_KEY, BlessedBeforeCandidateStrategy
from pipeline.components.csv_example_gen import CheckedCsvExampleGen
from pipeline.components.drift import DriftValidator
from pipeline.components.gate import AnomaliesGate
from pipeline.components.pusher import AtomicPusher
from pipeline.components.schema_importer import CuratedSchemaImporter
from pipeline.components.spans import (
    CURRENT_KEY,
    EXAMPLES_KEY,
    HISTORY_KEY,
    PreviousSpanStrategy,
    SpanWindowStrategy,
)
from pipeline.config import DataConfig, EvalConfig, PipelineConfig, project_root
from pipeline.data_check import CSV_PATTERN
from pipeline.slice_gate import eval_config

# The split the Evaluator grades on; the Trainer never reads it.
TEST_SPLIT = "test"
# The key under which each component's custom_config carries the model code's
# fingerprint: TFX's cache key does not cover installed Python code, so a code
# change would otherwise reuse stale Transform and Trainer outputs.
CODE_FINGERPRINT_KEY = "code_fingerprint"


def function_path(fn: object) -> str:
    """The importable dotted path of a function, as TFX expects it."""
    return f"{fn.__module__}.{fn.__qualname__}"  # type: ignore[attr-defined]


def code_fingerprint() -> str:
    """A hash of the ``models`` package source."""
    digest = hashlib.sha256()
    for path in sorted(Path(models.__file__).parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# The pipeline image holds this project at /pipeline (the Dockerfile's WORKDIR).
IMAGE_PROJECT_ROOT = "/pipeline/"


def host_copy(path: str) -> str:
    """This checkout's copy of a file the pipeline image holds (``/pipeline/...``); other paths as given.

    The image is built from this checkout, so its schema's content can be
    fingerprinted at compile time, where the image path does not exist.
    """
    if path.startswith(IMAGE_PROJECT_ROOT) and not Path(path).exists():
        return str(project_root() / path.removeprefix(IMAGE_PROJECT_ROOT))
    return path


# Runtime parameters a submission can override (vertex.runtime_parameters or kubeflow.runtime_parameters).
# Training steps travel inside the Trainer's TrainArgs: KubeflowV2 compiles a
# parameter nested in a proto as a constant, so the whole TrainArgs (JSON,
# e.g. {"num_steps": 500}) is the parameter.
DATA_ROOT_PARAMETER = "data_root"
TRAIN_ARGS_PARAMETER = "train_args"


def _declares_parameters(cfg: PipelineConfig) -> bool:
    return cfg.vertex.runtime_parameters or cfg.kubeflow.runtime_parameters


def runtime_parameter_defaults(cfg: PipelineConfig) -> dict[str, Any]:
    """The declared runtime parameters and their defaults (written into the compiled job)."""
    if not _declares_parameters(cfg):
        return {}
    return {
        DATA_ROOT_PARAMETER: cfg.data.root,
        TRAIN_ARGS_PARAMETER: json.dumps({"num_steps": cfg.training.train_steps}),
    }


def _param(cfg: PipelineConfig, name: str, value: Any) -> Any:
    """``value``, or a runtime parameter defaulting to it when the config declares them."""
    if not _declares_parameters(cfg):
        return value
    return tfx.dsl.experimental.RuntimeParameter(name=name, ptype=type(value), default=value)


def _train_args(cfg: PipelineConfig) -> Any:
    if _declares_parameters(cfg):
        return _param(cfg, TRAIN_ARGS_PARAMETER, runtime_parameter_defaults(cfg)[TRAIN_ARGS_PARAMETER])
    return tfx.proto.TrainArgs(num_steps=cfg.training.train_steps)


def example_gen(data: DataConfig, spec: FeatureSpec, input_base: Any = None) -> base_component.BaseComponent:
    """CSV from ``data.root`` (checked first), or BigQuery when a query is configured."""
    split_config = tfx.proto.SplitConfig(
        splits=[
            tfx.proto.SplitConfig.Split(name="train", hash_buckets=data.train_buckets),
            tfx.proto.SplitConfig.Split(name="eval", hash_buckets=data.eval_buckets),
            tfx.proto.SplitConfig.Split(name=TEST_SPLIT, hash_buckets=data.test_buckets),
        ]
    )
    # Set only when configured: TFX takes even an empty name as a feature to hash on.
    if data.partition_feature:
        split_config.partition_feature_name = data.partition_feature
    output_config = tfx.proto.Output(split_config=split_config)
    if data.bigquery_query:
        return tfx.extensions.google_cloud_big_query.BigQueryExampleGen(
            query=data.bigquery_query, output_config=output_config
        ).with_id("BigQueryExampleGen")
    # With span_pattern, TFX's driver picks the span (the latest, or data.span)
    # and records its number on the Examples artifact.
    range_config = None
    if data.span is not None:
        range_config = tfx.proto.RangeConfig(
            static_range=tfx.proto.StaticRange(start_span_number=data.span, end_span_number=data.span)
        )
    return CheckedCsvExampleGen(
        input_base=input_base if input_base is not None else data.root,
        input_config=tfx.proto.Input(
            splits=[tfx.proto.Input.Split(name="single_split", pattern=data.span_pattern or CSV_PATTERN)]
        ),
        output_config=output_config,
        range_config=range_config,
        spec=spec,
        missing_values=data.missing_values,
    ).with_id("CsvExampleGen")


def _model_inputs(
    cfg: PipelineConfig,
    examples: Any,
    transform: tfx.components.Transform,
    schema_importer: base_component.BaseComponent,
    fingerprint: dict[str, str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the Trainer and the Tuner both take: their data, and the custom_config of the model code."""
    inputs = {
        "examples": examples,
        "transform_graph": transform.outputs["transform_graph"],
        "schema": schema_importer.outputs["schema"],
        "eval_args": tfx.proto.EvalArgs(num_steps=cfg.training.eval_steps),
    }
    custom_config = {
        HPARAMS_KEY: cfg.training.hparams.model_dump(mode="json"),
        SPEC_KEY: cfg.features.to_json(),
        **fingerprint,
    }
    return inputs, custom_config


def _worker_pool(cfg: PipelineConfig, replicas: int) -> dict[str, Any]:
    """A Vertex AI custom job's worker pool of the pipeline image on vertex.training_machine_type."""
    return {
        "machine_spec": {"machine_type": cfg.vertex.training_machine_type},
        "replica_count": replicas,
        "container_spec": {"image_uri": cfg.vertex.image_uri},
    }


def _tuner(
    cfg: PipelineConfig, inputs: dict[str, Any], custom_config: dict[str, Any]
) -> base_component.BaseComponent:
    """KerasTuner's search (models/tuning.py) in the pipeline, or as Vertex AI custom jobs in parallel."""
    t = cfg.tuning
    args = {
        **inputs,
        "tuner_fn": function_path(tuner_fn),
        "train_args": tfx.proto.TrainArgs(num_steps=t.steps_per_trial),
    }
    custom_config = {
        **custom_config,
        TUNING_KEY: {"max_trials": t.max_trials, "executions_per_trial": t.executions_per_trial},
    }
    if not cfg.vertex.training_machine_type:
        return tfx.components.Tuner(**args, custom_config=custom_config).with_id("Tuner")
    vertex = tfx.extensions.google_cloud_ai_platform
    # The chief runs trials too: parallel_trials - 1 workers beside it.
    pools = [_worker_pool(cfg, 1)]
    if t.parallel_trials > 1:
        pools.append(_worker_pool(cfg, t.parallel_trials - 1))
    custom_config.update(
        {
            vertex.ENABLE_VERTEX_KEY: True,
            vertex.VERTEX_REGION_KEY: cfg.vertex.region,
            vertex.experimental.TUNING_ARGS_KEY: {
                "project": cfg.vertex.project,
                "job_spec": {"worker_pool_specs": pools},
            },
        }
    )
    return vertex.Tuner(
        **args,
        tune_args=tfx.proto.TuneArgs(num_parallel_trials=t.parallel_trials),
        custom_config=custom_config,
    ).with_id("Tuner")


def _trainer(
    cfg: PipelineConfig,
    inputs: dict[str, Any],
    custom_config: dict[str, Any],
    tuner: base_component.BaseComponent | None,
) -> base_component.BaseComponent:
    """Keras training in the pipeline, or as a Vertex AI custom job (vertex.training_machine_type).

    With a Tuner, the model takes the best trial's hyperparameters.
    """
    custom_config = {**custom_config, RULE_FEATURE_KEY: cfg.eval.rule_feature}
    args = {**inputs, "run_fn": function_path(run_fn), "train_args": _train_args(cfg)}
    if tuner is not None:
        args["hyperparameters"] = tuner.outputs["best_hyperparameters"]
    if not cfg.vertex.training_machine_type:
        return tfx.components.Trainer(**args, custom_config=custom_config).with_id("Trainer")
    vertex = tfx.extensions.google_cloud_ai_platform
    custom_config.update(
        {
            vertex.ENABLE_VERTEX_KEY: True,
            vertex.VERTEX_REGION_KEY: cfg.vertex.region,
            vertex.TRAINING_ARGS_KEY: {
                "project": cfg.vertex.project,
                "worker_pool_specs": [_worker_pool(cfg, 1)],
            },
        }
    )
    return vertex.Trainer(**args, custom_config=custom_config).with_id("Trainer")


def _pusher(
    cfg: PipelineConfig, trainer: base_component.BaseComponent, evaluator: tfx.components.Evaluator
) -> base_component.BaseComponent:
    """Atomic filesystem push for TF Serving, or a Vertex AI Endpoint (vertex.endpoint_name)."""
    if not cfg.vertex.endpoint_name:
        return AtomicPusher(
            model=trainer.outputs["model"],
            model_blessing=evaluator.outputs["blessing"],
            push_destination=tfx.proto.PushDestination(
                filesystem=tfx.proto.PushDestination.Filesystem(base_directory=cfg.model_base_path)
            ),
        ).with_id("Pusher")
    vertex = tfx.extensions.google_cloud_ai_platform
    return vertex.Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        custom_config={
            vertex.ENABLE_VERTEX_KEY: True,
            vertex.VERTEX_REGION_KEY: cfg.vertex.region,
            vertex.VERTEX_CONTAINER_IMAGE_URI_KEY: cfg.vertex.serving_image_uri,
            vertex.SERVING_ARGS_KEY: {
                "project_id": cfg.vertex.project,
                "endpoint_name": cfg.vertex.endpoint_name,
                "machine_type": cfg.vertex.endpoint_machine_type,
            },
        },
    ).with_id("Pusher")


def _baseline_resolver(cfg: EvalConfig, trainer: base_component.BaseComponent) -> tfx.dsl.Resolver | None:
    """The latest blessed model, the Evaluator's baseline (see components/baseline.py); None for no baseline."""
    if cfg.baseline == "none":
        return None
    channels = {
        "model": tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        "model_blessing": tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    }
    if cfg.baseline == "blessed_before_candidate":
        resolver = tfx.dsl.Resolver(
            strategy_class=BlessedBeforeCandidateStrategy,
            **{CANDIDATE_KEY: trainer.outputs["model"]},
            **channels,
        )
    else:
        resolver = tfx.dsl.Resolver(
            strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy, **channels
        )
    return resolver.with_id("LatestBlessedModelResolver")


def _span_resolvers(
    data: DataConfig, example_gen: base_component.BaseComponent
) -> tuple[tfx.dsl.Resolver | None, tfx.dsl.Resolver | None]:
    """The earlier span's statistics for drift, and the Trainer's window (see components/spans.py).

    ``by_span``: by span number. ``latest``: TFX's stock LatestArtifactStrategy
    (what Vertex AI compiles), resolved before this run's ExampleGen starts:
    the previous run's statistics, and no window (the run's span alone; the
    Vertex compiler drops a resolver's upstream edges, so a window resolved
    after ExampleGen could miss the run's own span). ``none``: neither.
    """
    if data.span_resolution == "none":
        return None, None
    statistics = tfx.dsl.Channel(
        type=tfx.types.standard_artifacts.ExampleStatistics,
        producer_component_id="StatisticsGen",
        output_key="statistics",
    )
    if data.span_resolution == "latest":
        previous = tfx.dsl.Resolver(
            strategy_class=tfx.dsl.experimental.LatestArtifactStrategy, **{HISTORY_KEY: statistics}
        )
        example_gen.add_upstream_node(previous)
        return previous.with_id("PreviousSpanStatistics"), None
    # Every Examples: a producer id here would clash with ExampleGen's own
    # channel in TFX's input graph; the strategies keep ExampleGen's.
    every = tfx.dsl.Channel(type=tfx.types.standard_artifacts.Examples)
    current = example_gen.outputs["examples"]
    previous = tfx.dsl.Resolver(
        strategy_class=PreviousSpanStrategy,
        **{CURRENT_KEY: current, EXAMPLES_KEY: every, HISTORY_KEY: statistics},
    )
    window = tfx.dsl.Resolver(
        strategy_class=SpanWindowStrategy,
        config={"num_spans": data.training_spans},
        **{CURRENT_KEY: current, EXAMPLES_KEY: every},
    )
    return previous.with_id("PreviousSpanStatistics"), window.with_id("TrainingWindow")


def create_pipeline(cfg: PipelineConfig) -> tfx.dsl.Pipeline:
    """The whole DAG: ingest, validate (gated), transform, tune (tuning.enabled), train, evaluate, push."""
    fingerprint = {CODE_FINGERPRINT_KEY: code_fingerprint()}
    csv_example_gen = example_gen(cfg.data, cfg.features, _param(cfg, DATA_ROOT_PARAMETER, cfg.data.root))
    statistics_gen = tfx.components.StatisticsGen(
        examples=csv_example_gen.outputs["examples"]
    ).with_id("StatisticsGen")
    schema_importer = CuratedSchemaImporter(
        schema_file=cfg.data.schema_file, content_from=host_copy(cfg.data.schema_file)
    ).with_id("ImportSchemaGen")
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_importer.outputs["schema"],
    ).with_id("ExampleValidator")
    previous_span, window = _span_resolvers(cfg.data, csv_example_gen)
    drift_validator = DriftValidator(
        statistics=statistics_gen.outputs["statistics"],
        baseline_statistics=previous_span.outputs[HISTORY_KEY] if previous_span else None,
        schema=schema_importer.outputs["schema"],
        examples=csv_example_gen.outputs["examples"],
        baseline_examples=previous_span.outputs.get(EXAMPLES_KEY) if previous_span else None,
    ).with_id("DriftValidator")
    gate = AnomaliesGate(
        anomalies=example_validator.outputs["anomalies"],
        drift_anomalies=drift_validator.outputs["anomalies"],
        policy=cfg.validation.policy_json(),
    ).with_id("AnomaliesGate")
    examples = window.outputs[EXAMPLES_KEY] if window else csv_example_gen.outputs["examples"]
    # Transform analyses the window's train splits and writes only the graph:
    # with several input artifacts TFX's Transform would materialise the first
    # one's splits alone, so the Trainer reads the raw window and applies the graph.
    transform = tfx.components.Transform(
        examples=examples,
        schema=schema_importer.outputs["schema"],
        preprocessing_fn=function_path(preprocessing_fn),
        splits_config=tfx.proto.SplitsConfig(analyze=["train"]),
        materialize=False,
        disable_statistics=True,
        custom_config={SPEC_KEY: cfg.features.to_json(), **fingerprint},
    ).with_id("Transform")
    transform.add_upstream_node(gate)
    inputs, model_config = _model_inputs(cfg, examples, transform, schema_importer, fingerprint)
    tuner = _tuner(cfg, inputs, model_config) if cfg.tuning.enabled else None
    trainer = _trainer(cfg, inputs, model_config, tuner)
    baseline = _baseline_resolver(cfg.eval, trainer)
    evaluator = tfx.components.Evaluator(
        examples=csv_example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline.outputs["model"] if baseline else None,
        eval_config=eval_config(cfg.eval, cfg.features.label.transformed_name),
        example_splits=[TEST_SPLIT],
    ).with_id("Evaluator")
    pusher = _pusher(cfg, trainer, evaluator)
    return tfx.dsl.Pipeline(
        pipeline_name=cfg.name,
        pipeline_root=cfg.pipeline_root,
        components=[
            c
            for c in (
                csv_example_gen,
                statistics_gen,
                schema_importer,
                example_validator,
                previous_span,
                drift_validator,
                gate,
                window,
                transform,
                tuner,
                trainer,
                baseline,
                evaluator,
                pusher,
            )
            if c is not None  # the resolvers and the Tuner a config leaves out
        ],
        enable_cache=cfg.enable_cache,
        metadata_connection_config=(
            tfx.orchestration.metadata.sqlite_metadata_connection_config(cfg.metadata_path)
            if cfg.is_local
            else None  # Vertex AI keeps its own metadata
        ),
        beam_pipeline_args=cfg.beam_pipeline_args(),
    )
