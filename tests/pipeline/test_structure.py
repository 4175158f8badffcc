"""The DAG that create_pipeline builds: ids, edges, gates and entry points."""

import importlib
import json

import pytest
from tfx import v1 as tfx
from tfx.utils import proto_utils
from tfx.utils.io_utils import SchemaReader

from pipeline.components.drift import drift_config
from pipeline.config import PROJECT_ROOT, load_config
from pipeline.pipeline import code_fingerprint, create_pipeline

EXPECTED_IDS = [
    "CsvExampleGen",
    "StatisticsGen",
    "ImportSchemaGen",
    "ExampleValidator",
    "PreviousSpanStatistics",
    "DriftValidator",
    "AnomaliesGate",
    "TrainingWindow",
    "Transform",
    "Trainer",
    "LatestBlessedModelResolver",
    "Evaluator",
    "Pusher",
]


@pytest.fixture(scope="module")
def components(tmp_path_factory):
    cfg = load_config("local", {"output_dir": str(tmp_path_factory.mktemp("out"))})
    return {c.id: c for c in create_pipeline(cfg).components}


@pytest.fixture(scope="module")
def tuned_components(tmp_path_factory):
    cfg = load_config("tune", {"output_dir": str(tmp_path_factory.mktemp("tune"))})
    return {c.id: c for c in create_pipeline(cfg).components}


def _upstream(component):
    return {u.id for u in component.upstream_nodes}


def test_every_component_is_there_with_its_id(components):
    assert sorted(components) == sorted(EXPECTED_IDS)


def test_edges(components):
    assert _upstream(components["StatisticsGen"]) == {"CsvExampleGen"}
    assert _upstream(components["ExampleValidator"]) == {"StatisticsGen", "ImportSchemaGen"}
    assert _upstream(components["Trainer"]) == {"TrainingWindow", "Transform", "ImportSchemaGen"}
    assert _upstream(components["Evaluator"]) == {"CsvExampleGen", "Trainer", "LatestBlessedModelResolver"}
    assert _upstream(components["Pusher"]) == {"Trainer", "Evaluator"}


def test_the_gate_sits_between_the_validators_and_transform(components):
    assert _upstream(components["AnomaliesGate"]) == {"ExampleValidator", "DriftValidator"}
    assert "AnomaliesGate" in _upstream(components["Transform"])
    assert _upstream(components["Transform"]) == {"AnomaliesGate", "TrainingWindow", "ImportSchemaGen"}


def test_drift_compares_this_spans_statistics_with_the_previous_spans(components):
    drift = components["DriftValidator"]
    assert drift.inputs["statistics"] is components["StatisticsGen"].outputs["statistics"]
    assert drift.inputs["baseline_statistics"] is components["PreviousSpanStatistics"].outputs["statistics"]
    assert _upstream(components["PreviousSpanStatistics"]) == {"CsvExampleGen"}
    assert drift.inputs["schema"] is components["ImportSchemaGen"].outputs["schema"]


def test_drift_thresholds_come_from_the_curated_schema():
    config = drift_config(SchemaReader().read(str(PROJECT_ROOT / "schema" / "schema.pbtxt")))
    thresholds = {f.path.step[0]: f.distribution_comparator for f in config.default_slice_config.feature}
    # L-infinity on strings, Jensen-Shannon on numbers; calendar columns have none.
    assert thresholds["payment_type"].infinity_norm.threshold == pytest.approx(0.05)
    assert thresholds["trip_miles"].jensen_shannon_divergence.threshold == pytest.approx(0.75)
    assert "trip_start_timestamp" not in thresholds and "trip_start_month" not in thresholds
    assert len(thresholds) == 15


def test_the_gate_policy_comes_from_the_config(tmp_path):
    cfg = load_config(
        "local", {"output_dir": str(tmp_path), "validation.on_kind": {"drift": "warn"}}
    )
    gate = {c.id: c for c in create_pipeline(cfg).components}["AnomaliesGate"]
    assert json.loads(gate.exec_properties["policy"]) == {"on_anomaly": "fail", "on_kind": {"drift": "warn"}}


def test_pusher_consumes_the_evaluators_blessing(components):
    pusher, evaluator = components["Pusher"], components["Evaluator"]
    assert pusher.inputs["model_blessing"] is evaluator.outputs["blessing"]
    assert pusher.inputs["model"] is components["Trainer"].outputs["model"]


def test_transform_analyses_the_windows_train_splits_and_the_trainer_reads_the_window(components):
    splits = tfx.proto.SplitsConfig()
    proto_utils.json_to_proto(components["Transform"].exec_properties["splits_config"], splits)
    assert list(splits.analyze) == ["train"]
    assert list(splits.transform) == []
    window = components["TrainingWindow"].outputs["examples"]
    assert components["Transform"].inputs["examples"] is window
    assert components["Trainer"].inputs["examples"] is window


def test_baseline_is_the_latest_blessed_model(components):
    evaluator = components["Evaluator"]
    assert evaluator.inputs["baseline_model"] is components["LatestBlessedModelResolver"].outputs["model"]


@pytest.mark.parametrize(
    ("component", "key"), [("Transform", "preprocessing_fn"), ("Trainer", "run_fn"), ("Tuner", "tuner_fn")]
)
def test_entry_points_resolve_to_installed_functions(tuned_components, component, key):
    dotted = tuned_components[component].exec_properties[key]
    module, _, name = dotted.rpartition(".")
    fn = getattr(importlib.import_module(module), name)
    assert f"{fn.__module__}.{fn.__qualname__}" == dotted


def test_without_tuning_there_is_no_tuner(components):
    assert "Tuner" not in components
    assert components["Trainer"].inputs.get("hyperparameters") is None


def test_the_tuner_searches_on_the_trainers_data_and_the_trainer_takes_its_best_trial(tuned_components):
    c = tuned_components
    assert sorted(c) == sorted([*EXPECTED_IDS, "Tuner"])
    tuner, trainer = c["Tuner"], c["Trainer"]
    assert _upstream(tuner) == {"TrainingWindow", "Transform", "ImportSchemaGen"}
    assert _upstream(trainer) == {"TrainingWindow", "Transform", "ImportSchemaGen", "Tuner"}
    assert trainer.inputs["hyperparameters"] is tuner.outputs["best_hyperparameters"]
    for key in ("examples", "transform_graph", "schema"):
        assert tuner.inputs[key] is trainer.inputs[key], key
    # The same gates: the Evaluator grades the Trainer's model, the Pusher needs its blessing.
    assert c["Evaluator"].inputs["model"] is trainer.outputs["model"]
    assert c["Pusher"].inputs["model_blessing"] is c["Evaluator"].outputs["blessing"]


def test_the_trial_bounds_come_from_the_config(tmp_path):
    cfg = load_config(
        "tune",
        {
            "output_dir": str(tmp_path),
            "tuning.max_trials": 3,
            "tuning.steps_per_trial": 40,
            "training.eval_steps": 5,
        },
    )
    tuner = {c.id: c for c in create_pipeline(cfg).components}["Tuner"]
    custom_config = json.loads(tuner.exec_properties["custom_config"])
    assert custom_config["tuning"] == {"max_trials": 3, "executions_per_trial": 1}
    assert json.loads(tuner.exec_properties["train_args"]) == {"num_steps": 40}
    assert json.loads(tuner.exec_properties["eval_args"]) == {"num_steps": 5}
    # The search space lives in models/, whose source the fingerprint hashes: editing it re-runs the Tuner.
    assert custom_config["code_fingerprint"] == code_fingerprint()


def test_code_and_schema_content_are_in_the_cache_key(tmp_path):
    schema = tmp_path / "schema.pbtxt"
    schema.write_text('feature { name: "a" type: INT }\n')
    cfg = load_config("local", {"data.schema_file": str(schema), "output_dir": str(tmp_path)})
    first = {c.id: c for c in create_pipeline(cfg).components}
    schema.write_text('feature { name: "a" type: FLOAT }\n')
    second = {c.id: c for c in create_pipeline(cfg).components}
    assert (
        first["ImportSchemaGen"].exec_properties["content_fingerprint"]
        != second["ImportSchemaGen"].exec_properties["content_fingerprint"]
    )
    assert '"code_fingerprint"' in first["Trainer"].exec_properties["custom_config"]
    assert '"code_fingerprint"' in first["Transform"].exec_properties["custom_config"]


def test_the_evaluator_grades_on_the_test_split_that_nothing_else_reads(components):
    import json

    output = tfx.proto.Output()
    proto_utils.json_to_proto(components["CsvExampleGen"].exec_properties["output_config"], output)
    splits = {s.name: s.hash_buckets for s in output.split_config.splits}
    assert splits == {"train": 14, "eval": 3, "test": 3}
    assert output.split_config.partition_feature_name == "trip_start_timestamp"
    assert json.loads(components["Evaluator"].exec_properties["example_splits"]) == ["test"]
    transform = tfx.proto.SplitsConfig()
    proto_utils.json_to_proto(components["Transform"].exec_properties["splits_config"], transform)
    assert "test" not in transform.transform  # the Trainer never sees test rows


def test_the_trainer_fits_the_configured_rule_and_the_evaluator_grades_its_output(components):
    import json

    import tensorflow_model_analysis as tfma

    assert json.loads(components["Trainer"].exec_properties["custom_config"])["rule_feature"] == "payment_type"
    config = tfma.EvalConfig()
    proto_utils.json_to_proto(components["Evaluator"].exec_properties["eval_config"], config)
    [spec] = config.model_specs
    assert spec.signature_name == "evaluation"
    assert dict(spec.label_keys) == {"probabilities": "big_tipper_xf", "rule": "big_tipper_xf"}
    assert [list(s.feature_keys) for s in config.slicing_specs] == [
        [], ["trip_start_hour"], ["payment_type"], ["company"], ["payment_type", "trip_start_hour"]
    ]


def test_without_a_partition_feature_the_whole_row_is_hashed(tmp_path):
    cfg = load_config("local", {"output_dir": str(tmp_path), "data.partition_feature": ""})
    [example_gen] = [c for c in create_pipeline(cfg).components if c.id == "CsvExampleGen"]
    output = tfx.proto.Output()
    proto_utils.json_to_proto(example_gen.exec_properties["output_config"], output)
    # An empty name would make ExampleGen look for a feature called "" (and fail).
    assert "partition_feature_name" not in example_gen.exec_properties["output_config"]
    assert [s.name for s in output.split_config.splits] == ["train", "eval", "test"]
