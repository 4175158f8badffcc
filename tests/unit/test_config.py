import shutil
from pathlib import Path

import pytest
import yaml

from pipeline.config import PROFILES_DIR, PROJECT_ROOT, load_config


def test_local_profile_resolves_paths_against_the_project_root():
    cfg = load_config("local")
    assert cfg.name == "taxi-pipeline"
    assert Path(cfg.data.root) == PROJECT_ROOT / "data"
    assert Path(cfg.data.schema_file) == PROJECT_ROOT / "schema" / "schema.pbtxt"
    assert cfg.pipeline_root == f"{PROJECT_ROOT}/outputs/tfx_root"
    assert cfg.metadata_path == f"{PROJECT_ROOT}/outputs/metadata.sqlite"
    assert cfg.model_base_path == f"{PROJECT_ROOT}/outputs/serving_model/taxi"
    assert cfg.training.hidden_units == (64, 32)


def test_tfxp_project_root_moves_the_profiles_relative_paths(tmp_path, monkeypatch):
    """An installed package sits in site-packages, away from schema/ and data/: the image names its root."""
    root = tmp_path.resolve()
    (root / "models").mkdir()
    shutil.copy(PROJECT_ROOT / "models" / "features.yaml", root / "models")
    monkeypatch.setenv("TFXP_PROJECT_ROOT", str(root))
    cfg = load_config("local")
    assert Path(cfg.data.root) == root / "data"
    assert Path(cfg.data.schema_file) == root / "schema" / "schema.pbtxt"
    assert cfg.model_base_path == f"{root}/outputs/serving_model/taxi"


def test_overrides_win_over_the_profile(tmp_path):
    cfg = load_config("local", {"output_dir": str(tmp_path), "training.train_steps": 7})
    assert cfg.training.train_steps == 7
    assert cfg.model_base_path == f"{tmp_path}/serving_model/taxi"


def test_tracking_is_off_by_default_and_set_by_the_profile_or_an_override():
    assert (load_config("local").tracking.mlflow_uri, load_config("local").tracking.experiment) == ("", "")
    cfg = load_config("local", {"tracking.mlflow_uri": "sqlite:////tmp/mlflow.db", "tracking.experiment": "taxi"})
    assert (cfg.tracking.mlflow_uri, cfg.tracking.experiment) == ("sqlite:////tmp/mlflow.db", "taxi")
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['tracking.uri'\]"):
        load_config("local", {"tracking.uri": "x"})


def test_beam_args_follow_the_config():
    cfg = load_config("local", {"beam.direct_running_mode": "multi_processing", "beam.direct_num_workers": 2})
    assert cfg.beam_pipeline_args() == ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    # Beam's defaults are left out: any Beam arg makes TFX package itself for every Beam component.
    assert load_config("local").beam_pipeline_args() == []


def test_a_profile_can_be_a_yaml_path(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: my-pipe\ndata:\n  root: /somewhere\ntraining:\n  train_steps: 5\n")
    cfg = load_config(str(path))
    assert (cfg.name, cfg.data.root, cfg.training.train_steps) == ("my-pipe", "/somewhere", 5)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"training.train_steps": 0}, "training.train_steps"),
        ({"training.learning_rate": 2.0}, "training.learning_rate"),
        ({"training.dropout": 1.0}, "training.dropout"),
        ({"name": "taxi_pipeline"}, "name"),
        ({"eval.floors": {"auc": 1.5}}, "eval.floors.auc"),
        ({"eval.slice_floors": {"f1": 0.5}}, "eval.slice_floors.f1"),
        ({"eval.max_drops": {"example_count": 5}}, "eval.max_drops.example_count"),
        ({"eval.slice_min_examples": 0}, "eval.slice_min_examples"),
        ({"eval.crossed_slices": [["payment_type", "driver"]]}, r"eval.crossed_slices\[0\]"),
        ({"eval.crossed_slices": [["payment_type"]]}, r"eval.crossed_slices\[0\]"),
        ({"eval.rule_feature": "fare"}, "eval.rule_feature"),
        ({"eval.baseline": "newest"}, "eval.baseline"),
        ({"beam.direct_running_mode": "fast"}, "beam.direct_running_mode"),
        ({"data.train_buckets": 0}, "data.train_buckets"),
        ({"data.test_buckets": 0}, "data.test_buckets"),
        ({"serving.model_name": "../x"}, "serving.model_name"),
        ({"tuning.max_trials": 0}, "tuning.max_trials"),
        ({"tuning.steps_per_trial": 0}, "tuning.steps_per_trial"),
        ({"tuning.executions_per_trial": 1.5}, "tuning.executions_per_trial"),
        ({"tuning.enabled": "maybe"}, "tuning.enabled"),
        # The stock Tuner runs trials one at a time: parallel ones are Vertex AI custom jobs.
        ({"tuning.parallel_trials": 4}, "tuning.parallel_trials"),
    ],
)
def test_bad_values_are_rejected_naming_the_field(overrides, field):
    with pytest.raises(ValueError, match=rf"config field {field}="):
        load_config("local", overrides)


def test_unknown_fields_and_profiles_are_rejected():
    with pytest.raises(ValueError, match=r"training.epochs"):
        load_config("local", {"training.epochs": 3})
    with pytest.raises(ValueError, match=r"unknown profile 'prod'.*available profiles: .*local"):
        load_config("prod")


def test_a_threshold_on_a_metric_that_is_not_computed_names_it_and_the_choices():
    with pytest.raises(ValueError, match=r"eval.slice_floors.f1=0.5 is invalid: 'f1' is not a metric the Evaluator "
                       r"computes; choose from auc, auc_precision_recall, binary_accuracy, precision, recall"):
        load_config("local", {"eval.slice_floors": {"f1": 0.5}})


def test_a_slice_key_outside_the_feature_spec_is_named():
    with pytest.raises(ValueError, match=r"'driver' is not in the feature spec"):
        load_config("local", {"eval.crossed_slices": [["payment_type", "driver"]]})


def test_the_local_profile_judges_every_slice_feature_and_the_cross():
    cfg = load_config("local")
    assert cfg.eval.slices == (
        ("trip_start_hour",),
        ("payment_type",),
        ("company",),
        ("payment_type", "trip_start_hour"),
    )
    # The default slice floor refuses a model at chance (AUC <= 0.55) on any slice of >= 200 rows.
    assert cfg.eval.slice_floors["auc"] > 0.55 and cfg.eval.slice_min_examples <= 200
    assert round(cfg.data.test_fraction, 2) == 0.15


def test_a_slice_size_larger_than_the_test_split_is_warned_about_up_front():
    from pipeline.run import judging_warnings

    cfg = load_config("local", {"eval.slice_min_examples": 5000})
    [warning] = judging_warnings(cfg, rows=15002)
    assert warning == (
        "eval.slice_min_examples=5000 is more than the test split's ~2250 rows (15002 rows x 0.15): no slice of "
        "trip_start_hour, payment_type, company, payment_type x trip_start_hour can be judged, so only the overall "
        "thresholds decide; lower eval.slice_min_examples or add data"
    )
    assert judging_warnings(load_config("local"), rows=15002) == []
    assert judging_warnings(load_config("local", {"eval.slice_floors": {}, "eval.slice_max_drops": {}}), rows=10) == []


def test_yaml_numbers_without_a_dot_are_coerced(tmp_path):
    # PyYAML reads 3e-3 as the string '3e-3'; the typed config makes it a float.
    path = tmp_path / "mine.yaml"
    path.write_text(
        "data: {root: /d}\ntraining: {learning_rate: 3e-3, hidden_units: [16]}\neval: {floors: {auc: 9e-1}}\n"
    )
    cfg = load_config(str(path))
    assert cfg.training.learning_rate == 0.003 and cfg.eval.floors == {"auc": 0.9}
    assert cfg.training.hparams.learning_rate == 0.003 and cfg.training.hparams.hidden_units == (16,)


@pytest.mark.parametrize(
    ("yaml_text", "line"),
    [
        (
            "training: {learning_rate: fast}",
            "config field training.learning_rate='fast' is invalid: Input should be a valid number",
        ),
        (
            "eval: {floors: {auc: high}}",
            "config field eval.floors.auc='high' is invalid: Input should be a valid number",
        ),
        (
            "training: {train_steps: yes}",
            "config field training.train_steps=True is invalid: expected a number, got True",
        ),
        (
            "training: {hidden_units: [64, 0]}",
            "config field training.hidden_units[1]=0 is invalid: Input should be greater than or equal to 1",
        ),
        (
            "monitoring: {window_rows: 2.5}",
            "config field monitoring.window_rows=2.5 is invalid: Input should be a valid integer",
        ),
        ("enable_cache: maybe", "config field enable_cache='maybe' is invalid: Input should be a valid boolean"),
    ],
)
def test_a_bad_value_in_a_profile_is_one_line_naming_file_field_value_and_expectation(tmp_path, yaml_text, line):
    path = tmp_path / "bad.yaml"
    path.write_text(f"data: {{root: /d}}\n{yaml_text}\n")
    with pytest.raises(ValueError) as info:
        load_config(str(path))
    assert str(info.value).startswith(f"{path}: {line}"), str(info.value)
    assert "\n" not in str(info.value)


def test_the_cli_reports_a_bad_profile_value_in_one_line_with_exit_2(tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli import app

    path = tmp_path / "bad.yaml"
    path.write_text("data: {root: /d}\ntraining: {learning_rate: 3e-3, dropout: lots}\n")
    result = CliRunner().invoke(app, ["run", "--profile", str(path), "--output", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        f"error: {path}: config field training.dropout='lots' is invalid: "
        "Input should be a valid number, unable to parse string as a number"
    )
    assert not (tmp_path / "out").exists()


def test_hyperparameter_defaults_have_one_home():
    from models.hparams import HParams

    assert load_config("local").training.hparams == HParams()
    for profile in PROFILES_DIR.glob("*.yaml"):
        training = (yaml.safe_load(profile.read_text()) or {}).get("training") or {}
        assert not set(training) & set(HParams.model_fields), f"{profile.name} repeats a default: {training}"


def test_tuning_is_off_by_default_and_on_in_the_tune_profile():
    tune, local = load_config("tune"), load_config("local")
    assert not local.tuning.enabled
    assert (tune.tuning.enabled, tune.tuning.max_trials, tune.tuning.steps_per_trial) == (True, 8, 300)
    # Otherwise the local profile: same data, outputs, training and gates.
    assert tune.model_copy(update={"tuning": local.tuning}) == local


def test_a_profile_that_is_not_yaml_is_one_line_naming_the_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("data: {root: /d}\ntraining: {learning_rate: [0.1\n")
    with pytest.raises(ValueError) as info:
        load_config(str(path))
    assert str(info.value).startswith(f"{path} line 3: not valid YAML (")
    assert "\n" not in str(info.value)
