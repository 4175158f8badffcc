"""``create_pipeline(cfg)``: the whole DAG, the same for every runner."""

from __future__ import annotations

import hashlib
from pathlib import Path

import tensorflow_model_analysis as tfma
from tfx import v1 as tfx

import models
from models.features import LABEL, slice_keys
from models.model import HParams
from models.preprocessing import preprocessing_fn
from models.trainer import HPARAMS_KEY, run_fn
from pipeline.components.baseline import CANDIDATE_KEY, BlessedBeforeCandidateStrategy
from pipeline.components.csv_example_gen import CheckedCsvExampleGen
from pipeline.components.gate import AnomaliesGate
from pipeline.components.pusher import AtomicPusher
from pipeline.components.schema_importer import CuratedSchemaImporter
from pipeline.config import DataConfig, EvalConfig, PipelineConfig, TrainingConfig
from pipeline.data_check import CSV_PATTERN

# Signatures of the exported model that the Evaluator uses (models/signatures.py).
EVAL_SIGNATURE = "serving_tf_example"
TRANSFORM_SIGNATURE = "transform_features"
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


def example_gen(data: DataConfig) -> CheckedCsvExampleGen:
    return CheckedCsvExampleGen(
        input_base=data.root,
        input_config=tfx.proto.Input(
            splits=[tfx.proto.Input.Split(name="single_split", pattern=CSV_PATTERN)]
        ),
        output_config=tfx.proto.Output(
            split_config=tfx.proto.SplitConfig(
                splits=[
                    tfx.proto.SplitConfig.Split(name="train", hash_buckets=data.train_buckets),
                    tfx.proto.SplitConfig.Split(name="eval", hash_buckets=data.eval_buckets),
                ]
            )
        ),
    ).with_id("CsvExampleGen")


def hparams(training: TrainingConfig) -> HParams:
    return HParams(
        hidden_units=training.hidden_units,
        dropout=training.dropout,
        l2=training.l2,
        learning_rate=training.learning_rate,
        batch_size=training.batch_size,
        seed=training.seed,
    )


def eval_config(cfg: EvalConfig) -> tfma.EvalConfig:
    """TFMA config: overall plus one slice per slice key; floors and a change threshold.

    The thresholds gate on the overall slice only: a plain ``threshold`` would
    apply to every slice, and tiny slices (4 "Dispute" rides) have no AUC.
    """

    def overall(threshold: tfma.MetricThreshold) -> tfma.PerSliceMetricThreshold:
        return tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=threshold)

    higher = tfma.MetricDirection.HIGHER_IS_BETTER
    auc_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": cfg.min_auc}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=higher, absolute={"value": -cfg.max_auc_drop}
        ),
    )
    accuracy_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": cfg.min_accuracy})
    )
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=EVAL_SIGNATURE,
                label_key=LABEL.transformed_name,
                preprocessing_function_names=[TRANSFORM_SIGNATURE],
            )
        ],
        slicing_specs=[tfma.SlicingSpec()]
        + [tfma.SlicingSpec(feature_keys=[key]) for key in slice_keys()],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(class_name="ExampleCount"),
                    tfma.MetricConfig(class_name="AUC", per_slice_thresholds=[overall(auc_threshold)]),
                    tfma.MetricConfig(
                        class_name="BinaryAccuracy", per_slice_thresholds=[overall(accuracy_threshold)]
                    ),
                    tfma.MetricConfig(class_name="Precision"),
                    tfma.MetricConfig(class_name="Recall"),
                    tfma.MetricConfig(class_name="MeanLabel"),
                    tfma.MetricConfig(class_name="MeanPrediction"),
                    tfma.MetricConfig(class_name="CalibrationPlot"),
                ]
            )
        ],
    )


def _baseline_resolver(cfg: EvalConfig, trainer: tfx.components.Trainer) -> tfx.dsl.Resolver:
    """The latest blessed model, the Evaluator's baseline (see components/baseline.py)."""
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


def create_pipeline(cfg: PipelineConfig) -> tfx.dsl.Pipeline:
    """The whole DAG: ingest, validate (gated), transform, train, evaluate, push."""
    fingerprint = {CODE_FINGERPRINT_KEY: code_fingerprint()}
    csv_example_gen = example_gen(cfg.data)
    statistics_gen = tfx.components.StatisticsGen(
        examples=csv_example_gen.outputs["examples"]
    ).with_id("StatisticsGen")
    schema_importer = CuratedSchemaImporter(schema_file=cfg.data.schema_file).with_id("ImportSchemaGen")
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_importer.outputs["schema"],
    ).with_id("ExampleValidator")
    gate = AnomaliesGate(anomalies=example_validator.outputs["anomalies"]).with_id("AnomaliesGate")
    transform = tfx.components.Transform(
        examples=csv_example_gen.outputs["examples"],
        schema=schema_importer.outputs["schema"],
        preprocessing_fn=function_path(preprocessing_fn),
        splits_config=tfx.proto.SplitsConfig(analyze=["train"], transform=["train", "eval"]),
        custom_config=fingerprint,
    ).with_id("Transform")
    transform.add_upstream_node(gate)
    trainer = tfx.components.Trainer(
        run_fn=function_path(run_fn),
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_importer.outputs["schema"],
        train_args=tfx.proto.TrainArgs(num_steps=cfg.training.train_steps),
        eval_args=tfx.proto.EvalArgs(num_steps=cfg.training.eval_steps),
        custom_config={HPARAMS_KEY: hparams(cfg.training).to_dict(), **fingerprint},
    ).with_id("Trainer")
    baseline = _baseline_resolver(cfg.eval, trainer)
    evaluator = tfx.components.Evaluator(
        examples=csv_example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline.outputs["model"],
        eval_config=eval_config(cfg.eval),
    ).with_id("Evaluator")
    pusher = AtomicPusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=cfg.model_base_path)
        ),
    ).with_id("Pusher")
    return tfx.dsl.Pipeline(
        pipeline_name=cfg.name,
        pipeline_root=cfg.pipeline_root,
        components=[
            csv_example_gen,
            statistics_gen,
            schema_importer,
            example_validator,
            gate,
            transform,
            trainer,
            baseline,
            evaluator,
            pusher,
        ],
        enable_cache=cfg.enable_cache,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            cfg.metadata_path
        ),
        beam_pipeline_args=cfg.beam.pipeline_args(),
    )
