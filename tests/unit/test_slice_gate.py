"""The slice gate's TFMA config, run by TFMA itself on predictions we construct.

The model is replaced by prediction columns (TFMA's model-agnostic mode), so
each slice's AUC is known by construction: the gate must refuse exactly the
slices built to fail, and leave alone the ones too small to judge.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_specs

from models.rule import RULE_OUTPUT
from models.signatures import OUTPUT_KEY
from pipeline.config import EvalConfig, load_config
from pipeline.results import load_evaluation
from pipeline.slice_gate import NOT_JUDGED, eval_config

ROWS = 3000
LABEL_KEY = "big_tipper_xf"


def taxi_eval(**changes) -> EvalConfig:
    """The taxi profile's eval config (its slice features come from the feature spec)."""
    return load_config("local").eval.model_copy(update=changes)
CHANCE_HOUR = 7  # every prediction in this hour is noise


def _examples(path, rng) -> dict[str, np.ndarray]:
    """Taxi-like rows: cash riders rarely tip, card riders often; no company column at all."""
    pay = rng.choice(["Cash", "Credit Card", "Dispute"], size=ROWS, p=[0.6, 0.398, 0.002])
    hour = np.where(rng.random(ROWS) < 0.1, CHANCE_HOUR, rng.integers(8, 24, size=ROWS))
    label = np.where(pay == "Credit Card", rng.random(ROWS) < 0.6, rng.random(ROWS) < 0.002).astype(np.int64)
    # A good model: positives score above negatives most of the time ...
    model = np.clip(0.6 * label + 0.4 * rng.random(ROWS), 0, 1)
    # ... except in one hour (about 300 rows), where it is at chance.
    chance = hour == CHANCE_HOUR
    model[chance] = rng.random(chance.sum())
    rule = np.where(pay == "Credit Card", 0.6, 0.002)
    columns = {
        "payment_type": pay,
        "trip_start_hour": hour,
        LABEL_KEY: label,
        "model": model,
        "rule": rule,
    }
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(ROWS):
            feature = {}
            for name, values in columns.items():
                v = values[i]
                if isinstance(v, str):
                    feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()]))
                elif np.issubdtype(type(v), np.integer):
                    feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)]))
                else:
                    feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(v)]))
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return columns


@pytest.fixture(scope="module")
def gated(tmp_path_factory):
    """Our eval config, its model spec swapped for the prediction columns, run by TFMA."""
    out = tmp_path_factory.mktemp("tfma")
    columns = _examples(out / "data.tfrecord", np.random.default_rng(0))
    # No baseline in model-agnostic mode, so no change thresholds; the lift
    # threshold is set high enough that the model cannot meet it.
    cfg = taxi_eval(max_drops={}, slice_max_drops={}, min_lift_over_rule={"auc": 0.5})
    config = eval_config(cfg, LABEL_KEY)
    del config.model_specs[:]
    config.model_specs.add(
        label_keys={OUTPUT_KEY: LABEL_KEY, RULE_OUTPUT: LABEL_KEY},
        prediction_keys={OUTPUT_KEY: "model", RULE_OUTPUT: "rule"},
    )
    tfma.run_model_analysis(eval_config=config, data_location=str(out / "data.tfrecord"), output_path=str(out))
    return cfg, columns, load_evaluation(str(out))


def test_the_slice_at_chance_is_refused_by_its_slice_floor(gated):
    cfg, _, ev = gated
    assert not ev.blessed
    chance = ev.slice(f"trip_start_hour={CHANCE_HOUR}")
    assert chance.example_count >= cfg.slice_min_examples
    assert 0.4 < chance.metrics["auc"] < 0.6
    [failure] = [f for f in ev.failures if f.slice == f"trip_start_hour={CHANCE_HOUR}"]
    assert (failure.kind, failure.metric, failure.config_key) == ("floor", "auc", "eval.slice_floors.auc")
    assert failure.value == pytest.approx(chance.metrics["auc"])
    assert failure.bound == cfg.slice_floors["auc"]
    assert str(failure) == (
        f"trip_start_hour={CHANCE_HOUR}: auc {chance.metrics['auc']:.4f} is below the floor 0.6000 "
        "[eval.slice_floors.auc]"
    )


def test_small_and_one_class_slices_are_shown_but_never_decide(gated):
    cfg, columns, ev = gated
    dispute = ev.slice("payment_type=Dispute")  # a handful of rows
    cash = ev.slice("payment_type=Cash")  # ~1,800 rows, but only a few positives
    assert dispute.example_count < cfg.slice_min_examples
    assert cash.example_count >= cfg.slice_min_examples and cash.positives < cfg.slice_min_class_examples
    for s in (dispute, cash):
        assert not s.judged(cfg.slice_min_examples, cfg.slice_min_class_examples)
        assert s.metrics["judged_auc"] == NOT_JUDGED
        assert s.slice not in ev.failed_slices()
    card = ev.slice("payment_type=Credit Card")
    assert card.judged(cfg.slice_min_examples, cfg.slice_min_class_examples)
    assert card.metrics["judged_auc"] == pytest.approx(card.metrics["auc"])
    # Every judged slice except the chance hour passes; the failures are exactly these.
    judged = {s.slice for s in ev.judged_slices(cfg.slice_min_examples, cfg.slice_min_class_examples)}
    assert f"trip_start_hour={CHANCE_HOUR}" in judged and "payment_type=Credit Card" in judged
    assert ev.failed_slices() == {f"trip_start_hour={CHANCE_HOUR}", "Overall", "company"}


def test_the_rule_is_graded_beside_the_model_on_every_slice(gated):
    _, columns, ev = gated
    card = ev.slice("payment_type=Credit Card")
    assert card.rule["auc"] == pytest.approx(0.5)  # the rule is constant within a payment type
    assert card.metrics["auc"] > 0.9
    assert card.metrics["auc_lift_over_rule"] == pytest.approx(card.metrics["auc"] - card.rule["auc"])
    assert ev.overall.rule["example_count"] == ROWS
    [lift] = [f for f in ev.failures if f.kind == "lift"]
    assert (lift.slice, lift.config_key, lift.bound) == ("Overall", "eval.min_lift_over_rule.auc", 0.5)
    assert lift.value == pytest.approx(ev.overall.metrics["auc"] - ev.overall.rule["auc"])


def test_the_majority_class_is_a_baseline_on_the_same_rows(gated):
    cfg, columns, ev = gated
    positives = columns[LABEL_KEY].mean()
    majority = max(positives, 1 - positives)
    accuracy = ev.overall.metrics["binary_accuracy"]
    assert ev.overall.metrics["binary_accuracy_lift_over_majority"] == pytest.approx(accuracy - majority, abs=1e-6)
    assert accuracy - majority > cfg.min_lift_over_majority["binary_accuracy"]  # so no failure of that kind
    assert not [f for f in ev.failures if f.kind == "majority"]


def test_a_model_no_better_than_the_majority_class_is_refused(tmp_path):
    """A model that always says "no" on data that is mostly "no": accurate, and useless."""
    rng = np.random.default_rng(1)
    label = (rng.random(ROWS) < 0.2).astype(np.int64)
    path = tmp_path / "data.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(ROWS):
            feature = {
                LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label[i])])),
                "model": tf.train.Feature(float_list=tf.train.FloatList(value=[0.1 + 0.05 * rng.random()])),
                "rule": tf.train.Feature(float_list=tf.train.FloatList(value=[0.2])),
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    cfg = EvalConfig(max_drops={}, slice_max_drops={}, slice_floors={}, min_lift_over_rule={})
    config = eval_config(cfg, LABEL_KEY)
    del config.model_specs[:]
    config.model_specs.add(
        label_keys={OUTPUT_KEY: LABEL_KEY, RULE_OUTPUT: LABEL_KEY},
        prediction_keys={OUTPUT_KEY: "model", RULE_OUTPUT: "rule"},
    )
    tfma.run_model_analysis(eval_config=config, data_location=str(path), output_path=str(tmp_path))
    ev = load_evaluation(str(tmp_path))
    assert not ev.blessed
    [failure] = ev.failures
    assert (failure.kind, failure.slice, failure.config_key) == (
        "majority",
        "Overall",
        "eval.min_lift_over_majority.binary_accuracy",
    )
    assert failure.value == pytest.approx(0.0, abs=1e-9)  # exactly the majority class's accuracy
    assert str(failure) == (
        "Overall: binary_accuracy beats the majority class by +0.0000; needs +0.0100 "
        "[eval.min_lift_over_majority.binary_accuracy]"
    )


def test_a_configured_slice_absent_from_the_data_refuses_the_blessing_and_says_which(gated):
    _, _, ev = gated
    [missing] = [f for f in ev.failures if f.kind == "missing"]
    assert missing.slice == "company"
    assert "configured slice absent from the test split" in str(missing)


def test_thresholds_exist_for_every_slice_and_the_metrics_module_imports_by_name():
    cfg = taxi_eval()
    config = eval_config(cfg, LABEL_KEY)
    thresholds = metric_specs.metric_thresholds_from_metrics_specs(config.metrics_specs, eval_config=config)
    judged = {
        tuple(spec.feature_keys) for key, specs in thresholds.items() if key.name == "judged_auc" for spec, _ in specs
    }
    assert judged == set(cfg.slices)
    overall = {key.name for key, specs in thresholds.items() if all(not spec.feature_keys for spec, _ in specs)}
    assert {"auc", "binary_accuracy"} <= overall
    # TFMA imports the custom metrics by module name, as the Evaluator will.
    names = {k.name for c in metric_specs.to_computations(config.metrics_specs, config) for k in c.keys}
    assert {"judged_auc", "auc_lift_over_rule", "binary_accuracy_lift_over_majority"} <= names
    # The rule is never held to a floor.
    assert not [key for key in thresholds if key.output_name == RULE_OUTPUT]


def test_no_slice_thresholds_means_no_judged_metric():
    config = eval_config(EvalConfig(slice_floors={}, slice_max_drops={}), LABEL_KEY)
    assert "JudgedMetric" not in str(config)


def test_the_metric_code_is_in_the_evaluators_cache_key():
    """TFX hashes the eval_config, not the code it imports: the config carries the code's hash."""
    import json

    from pipeline.slice_gate import source_fingerprint

    configs = [
        json.loads(m.config)
        for spec in eval_config(EvalConfig(), LABEL_KEY).metrics_specs
        for m in spec.metrics
        if m.module
    ]
    assert configs and all(c["source"] == source_fingerprint() for c in configs)
    assert len(source_fingerprint()) == 16
