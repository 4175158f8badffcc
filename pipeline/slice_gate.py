"""The Evaluator's TFMA config: sliced metrics, the rule beside the model, and the gate.

What decides the blessing (every threshold comes from ``EvalConfig``):
- floors and a change threshold on the whole test split;
- a floor and a change threshold on every slice big enough to judge. TFMA
  applies a per-slice threshold to every slice, and a 4-row slice (or a
  cash-only slice with one positive) has no meaningful AUC. ``JudgedMetric``
  reports the metric where a slice has at least ``min_examples`` rows and
  ``min_class_examples`` of each class, and 1.0 (passes any floor, never
  moves) elsewhere, so small slices are shown but never decide;
- margins over two baselines computed in the same run on the same rows, on
  the whole split: the rule (``LiftOverRule``) and the majority class
  (``LiftOverMajority``), so the default gate fits any dataset.

A configured slice absent from the data leaves TFMA's threshold unchecked,
which TFMA reports as a missing slice and refuses to bless.

The Evaluator imports this module by name (``MetricConfig.module``), so it
must stay importable from the installed package.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import calibration, metric_types

from models.rule import RULE_OUTPUT
from models.signatures import OUTPUT_KEY
from pipeline import results
from pipeline.config import EvalConfig
from pipeline.results import is_judged

# The model's evaluation signature returns the model's and the rule's outputs.
EVAL_SIGNATURE = "evaluation"
TRANSFORM_SIGNATURE = "transform_features"

# TFMA metric classes by the metric name they report.
METRIC_CLASSES = {
    "example_count": "ExampleCount",
    "auc": "AUC",
    "auc_precision_recall": "AUCPrecisionRecall",
    "binary_accuracy": "BinaryAccuracy",
    "precision": "Precision",
    "recall": "Recall",
    "calibration": "Calibration",
    "mean_label": "MeanLabel",
    "mean_prediction": "MeanPrediction",
}
PLOT_CLASSES = ("CalibrationPlot", "ConfusionMatrixPlot")
# AUC and AUC-PR from 1,000 thresholds rather than TFMA's 10,000: each slice,
# model and output rebins its histogram once per threshold, in Python, and the
# 10,000 cost the Evaluator more than all its other metrics together. Overall
# AUC moved by 3e-5 and judged slices by at most 2e-4 (docs/performance.md).
AUC_THRESHOLDS = 1000
THRESHOLD_METRICS = ("auc", "auc_precision_recall")
# The value JudgedMetric reports on slices too small to judge.
NOT_JUDGED = 1.0
# TFX names the two models of an evaluation "candidate" and "baseline".
BASELINE_MODEL = tfma.BASELINE_KEY
JUDGED_PREFIX = "judged_"
LIFT_SUFFIX = "_lift_over_rule"
MAJORITY_SUFFIX = "_lift_over_majority"


def judged_name(metric: str) -> str:
    return f"{JUDGED_PREFIX}{metric}"


def lift_name(metric: str) -> str:
    return f"{metric}{LIFT_SUFFIX}"


def metric_args(metric: str) -> dict[str, Any]:
    """Constructor arguments of a standard TFMA metric, by the name it reports."""
    return {"num_thresholds": AUC_THRESHOLDS} if metric in THRESHOLD_METRICS else {}


def metric_config(metric: str, **fields: Any) -> tfma.MetricConfig:
    args = metric_args(metric)
    return tfma.MetricConfig(class_name=METRIC_CLASSES[metric], config=json.dumps(args) if args else "", **fields)


def _key(name: str, model_name: str, output_name: str, example_weighted: bool) -> metric_types.MetricKey:
    return metric_types.MetricKey(
        name=name, model_name=model_name, output_name=output_name, example_weighted=example_weighted
    )


def _base(
    metric: str, eval_config: Any, model_name: str, output_name: str, example_weighted: bool
) -> tuple[list[Any], metric_types.MetricKey]:
    """The computations of a standard TFMA metric, and the key its value lands under."""
    cls = metric_types.registered_metrics()[METRIC_CLASSES[metric]]
    computations = cls(**metric_args(metric)).computations(
        eval_config=eval_config,
        model_names=[model_name],
        output_names=[output_name],
        example_weighted=example_weighted,
    )
    return list(computations), _key(metric, model_name, output_name, example_weighted)


def _per_model_and_output(
    model_names: Iterable[str] | None, output_names: Iterable[str] | None, build: Any
) -> list[Any]:
    """``build(model_name, output_name)``'s computations for every model and output of a MetricsSpec."""
    return [c for m in model_names or [""] for o in output_names or [""] for c in build(m, o)]


def _judged_computations(
    metric: str = "auc",
    min_examples: int = 200,
    min_class_examples: int = 10,
    name: str = "",
    eval_config: Any = None,
    model_names: Iterable[str] | None = None,
    output_names: Iterable[str] | None = None,
    example_weighted: bool = False,
) -> list[Any]:
    def build(model_name: str, output_name: str) -> list[Any]:
        base, base_key = _base(metric, eval_config, model_name, output_name, example_weighted)
        counts = calibration._weighted_labels_predictions_examples(  # noqa: SLF001 - pinned TFMA
            eval_config=eval_config, model_name=model_name, output_name=output_name, example_weighted=example_weighted
        )
        counts_key = counts[-1].keys[-1]
        key = _key(name or judged_name(metric), model_name, output_name, example_weighted)

        def result(metrics: dict[Any, Any]) -> dict[Any, Any]:
            totals = metrics[counts_key]
            examples, positives = float(totals.total_weighted_examples), float(totals.total_weighted_labels)
            judged = is_judged(examples, positives, min_examples, min_class_examples)
            return {key: float(metrics[base_key]) if judged else NOT_JUDGED}

        return [*base, *counts, metric_types.DerivedMetricComputation(keys=[key], result=result)]

    return _per_model_and_output(model_names, output_names, build)


class JudgedMetric(tfma.metrics.Metric):
    """``metric`` on slices big enough to judge; ``NOT_JUDGED`` on the others."""

    def __init__(
        self,
        metric: str = "auc",
        min_examples: int = 200,
        min_class_examples: int = 10,
        name: str = "",
        source: str = "",  # noqa: ARG002 - only a cache key (see source_fingerprint)
    ) -> None:
        super().__init__(
            _judged_computations,
            metric=metric,
            min_examples=min_examples,
            min_class_examples=min_class_examples,
            name=name or judged_name(metric),
        )


def _lift_computations(
    metric: str = "auc",
    rule_output: str = RULE_OUTPUT,
    name: str = "",
    eval_config: Any = None,
    model_names: Iterable[str] | None = None,
    output_names: Iterable[str] | None = None,
    example_weighted: bool = False,
) -> list[Any]:
    def build(model_name: str, output_name: str) -> list[Any]:
        mine, mine_key = _base(metric, eval_config, model_name, output_name, example_weighted)
        rule, rule_key = _base(metric, eval_config, model_name, rule_output, example_weighted)
        key = _key(name or lift_name(metric), model_name, output_name, example_weighted)

        def result(metrics: dict[Any, Any]) -> dict[Any, Any]:
            return {key: float(metrics[mine_key]) - float(metrics[rule_key])}

        return [*mine, *rule, metric_types.DerivedMetricComputation(keys=[key], result=result)]

    return _per_model_and_output(model_names, output_names, build)


class LiftOverRule(tfma.metrics.Metric):
    """The model's ``metric`` minus the rule's, on the same slice and rows."""

    def __init__(
        self,
        metric: str = "auc",
        rule_output: str = RULE_OUTPUT,
        name: str = "",
        source: str = "",  # noqa: ARG002
    ) -> None:
        super().__init__(_lift_computations, metric=metric, rule_output=rule_output, name=name or lift_name(metric))


def _majority_computations(
    metric: str = "binary_accuracy",
    name: str = "",
    eval_config: Any = None,
    model_names: Iterable[str] | None = None,
    output_names: Iterable[str] | None = None,
    example_weighted: bool = False,
) -> list[Any]:
    def build(model_name: str, output_name: str) -> list[Any]:
        mine, mine_key = _base(metric, eval_config, model_name, output_name, example_weighted)
        mean, mean_key = _base("mean_label", eval_config, model_name, output_name, example_weighted)
        key = _key(name or f"{metric}{MAJORITY_SUFFIX}", model_name, output_name, example_weighted)

        def result(metrics: dict[Any, Any]) -> dict[Any, Any]:
            positives = float(metrics[mean_key])
            return {key: float(metrics[mine_key]) - max(positives, 1.0 - positives)}

        return [*mine, *mean, metric_types.DerivedMetricComputation(keys=[key], result=result)]

    return _per_model_and_output(model_names, output_names, build)


class LiftOverMajority(tfma.metrics.Metric):
    """The model's accuracy minus the majority class's (always predicting the commoner label), same rows."""

    def __init__(self, metric: str = "binary_accuracy", name: str = "", source: str = "") -> None:  # noqa: ARG002
        super().__init__(_majority_computations, metric=metric, name=name or f"{metric}{MAJORITY_SUFFIX}")


def _threshold(floor: float | None, max_drop: float | None) -> tfma.MetricThreshold:
    threshold = tfma.MetricThreshold()
    if floor is not None:
        threshold.value_threshold.lower_bound.value = floor
    if max_drop is not None:
        threshold.change_threshold.direction = tfma.MetricDirection.HIGHER_IS_BETTER
        threshold.change_threshold.absolute.value = -max_drop
    return threshold


def source_fingerprint() -> str:
    """A hash of the code behind this project's TFMA metrics.

    TFX's cache key holds the Evaluator's eval_config but not the metric
    code it imports; carried in each custom metric's config, a change to that
    code re-runs the Evaluator instead of reusing a stale evaluation.
    """
    digest = hashlib.sha256()
    for module in (__file__, results.__file__):
        digest.update(Path(module).read_bytes())
    return digest.hexdigest()[:16]


def _custom(cls: type, per_slice: list[tfma.PerSliceMetricThreshold], **config: Any) -> tfma.MetricConfig:
    return tfma.MetricConfig(
        class_name=cls.__name__,
        module=__name__,
        config=json.dumps({**config, "source": source_fingerprint()}),
        per_slice_thresholds=per_slice,
    )


def slicing_specs(cfg: EvalConfig) -> list[tfma.SlicingSpec]:
    """Overall, then one spec per configured slice (single features, then crossed ones)."""
    return [tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=list(keys)) for keys in cfg.slices]


def eval_config(cfg: EvalConfig, label_key: str) -> tfma.EvalConfig:
    """TFMA config: model and rule side by side on every slice; floors, margins and change thresholds.

    ``label_key`` is the transformed label's name (the feature spec's label).
    """
    overall = [tfma.SlicingSpec()]
    sliced = slicing_specs(cfg)[1:]
    gate: list[tfma.MetricConfig] = []
    for metric in sorted(set(cfg.floors) | set(cfg.max_drops)):
        threshold = _threshold(cfg.floors.get(metric), cfg.max_drops.get(metric))
        gate.append(
            metric_config(
                metric, per_slice_thresholds=[tfma.PerSliceMetricThreshold(slicing_specs=overall, threshold=threshold)]
            )
        )
    for metric in sorted(set(cfg.slice_floors) | set(cfg.slice_max_drops)):
        threshold = _threshold(cfg.slice_floors.get(metric), cfg.slice_max_drops.get(metric))
        gate.append(
            _custom(
                JudgedMetric,
                [tfma.PerSliceMetricThreshold(slicing_specs=sliced, threshold=threshold)],
                metric=metric,
                min_examples=cfg.slice_min_examples,
                min_class_examples=cfg.slice_min_class_examples,
            )
        )
    for metric in sorted({"auc"} | set(cfg.min_lift_over_rule)):
        margin = cfg.min_lift_over_rule.get(metric)
        per_slice = (
            [tfma.PerSliceMetricThreshold(slicing_specs=overall, threshold=_threshold(margin, None))]
            if margin is not None
            else []
        )
        gate.append(_custom(LiftOverRule, per_slice, metric=metric))
    for metric, margin in sorted(cfg.min_lift_over_majority.items()):
        per_slice = [tfma.PerSliceMetricThreshold(slicing_specs=overall, threshold=_threshold(margin, None))]
        gate.append(_custom(LiftOverMajority, per_slice, metric=metric))
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=EVAL_SIGNATURE,
                label_keys={OUTPUT_KEY: label_key, RULE_OUTPUT: label_key},
                preprocessing_function_names=[TRANSFORM_SIGNATURE],
            )
        ],
        slicing_specs=slicing_specs(cfg),
        # Only the metrics below. TFMA's defaults would add the Keras model's
        # compiled metrics, which read a single unnamed output and fail on the
        # evaluation signature's two (model and rule) once a baseline is loaded.
        options=tfma.Options(include_default_metrics={"value": False}),
        metrics_specs=[
            # Shown for model and rule alike; decides nothing.
            tfma.MetricsSpec(
                output_names=[OUTPUT_KEY, RULE_OUTPUT], metrics=[metric_config(m) for m in METRIC_CLASSES]
            ),
            # Plots of the model's output (the review shows no plot of the rule's).
            tfma.MetricsSpec(
                output_names=[OUTPUT_KEY], metrics=[tfma.MetricConfig(class_name=c) for c in PLOT_CLASSES]
            ),
            # The gate: the model's output only (the rule is never held to a floor).
            tfma.MetricsSpec(output_names=[OUTPUT_KEY], metrics=gate),
        ],
    )
