"""A real LocalDagRunner run on the fixture data: artifacts, blessing, push, cache."""

import logging
import os
import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from typer.testing import CliRunner

from models.features import Dtype, load_spec
from pipeline.cli import app
from pipeline.run import run_local
from tests.conftest import read_rows

FEATURES = load_spec().features  # the taxi spec, models/features.yaml

pytestmark = pytest.mark.e2e


def _versions(base: str) -> list[str]:
    return sorted(os.listdir(base)) if os.path.isdir(base) else []


def test_every_component_ran_and_every_artifact_exists(trained_run):
    summary = trained_run.summary
    resolvers = {"LatestBlessedModelResolver", "PreviousSpanStatistics", "TrainingWindow"}
    assert {c.node_id: c.status for c in summary.components if c.node_id in resolvers} == dict.fromkeys(
        resolvers, "resolved"
    )
    assert [c.status for c in summary.components if c.node_id not in resolvers] == ["done"] * 10
    # Flat data is one span (0): nothing earlier to compare with.
    assert summary.span == 0
    assert summary.drift is not None and summary.drift.baseline_span is None
    for node in summary.nodes.values():
        for key, uris in node.outputs.items():
            for uri in uris:
                assert Path(uri).exists(), f"{node.node_id}.{key} artifact missing at {uri}"
    assert summary.anomalies == []
    assert Path(summary.log_file).stat().st_size > 0


def test_no_beam_component_packaged_tfx_into_the_system_temp_dir(trained_run):
    """Given Beam args without a dependency flag, TFX builds a 49 MB sdist of itself per Beam component."""
    log = Path(trained_run.summary.log_file).read_text()
    assert "Component Transform is finished" in log  # the log holds TFX's own lines
    assert "tfx_ephemeral" not in log


def test_the_run_left_nothing_in_the_system_temp_dir(trained_run):
    """Beam's DirectRunner tries Prism first: offline, each Beam component left beam-temp* and tmp* there."""
    assert trained_run.left_in_temp == []
    assert not (Path(trained_run.cfg.output_dir) / "tmp").exists()


def test_the_model_is_blessed_and_beats_the_payment_type_rule(trained_run):
    ev = trained_run.summary.evaluation
    assert ev.blessed, ev.failures
    assert ev.baseline_uri is None  # first model: no baseline
    assert ev.overall.metrics["auc"] >= trained_run.cfg.eval.floors["auc"]
    assert ev.overall.metrics["binary_accuracy"] >= trained_run.cfg.eval.floors["binary_accuracy"]
    # Graded on the test split alone (15% of the rows), beside the payment_type rule.
    assert 2000 < ev.overall.example_count < 2500
    assert ev.overall.rule["example_count"] == ev.overall.example_count
    assert ev.overall.metrics["auc"] > ev.overall.rule["auc"] > 0.9
    slices = {s.slice for s in ev.slices}
    assert any(s.startswith("trip_start_hour=") for s in slices)
    assert {"payment_type=Cash", "payment_type=Credit Card"} <= slices
    assert any(s.startswith("payment_type=Credit Card, trip_start_hour=") for s in slices)  # the crossed slice


def test_the_pushed_version_is_complete_and_alone(trained_run):
    base = trained_run.cfg.model_base_path
    assert _versions(base) == [trained_run.version_dir.name]
    assert trained_run.version_dir.name.isdigit()
    assert (trained_run.version_dir / "saved_model.pb").is_file()
    assert not [n for n in os.listdir(base) if n.startswith(".tmp")]


def _rows(n: int):
    header, rows = read_rows()
    return header, rows[:n]


def _as_example(header, row) -> bytes:
    feature = {}
    for f in FEATURES:
        cell = row[header.index(f.name)]
        if cell == "":
            continue  # a missing CSV cell is an absent feature, as CsvExampleGen writes it
        if f.dtype is Dtype.STRING:
            feature[f.name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[cell.encode()]))
        elif f.dtype is Dtype.INT:
            feature[f.name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(float(cell))]))
        else:
            feature[f.name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(cell)]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _as_columns(header, rows) -> dict:
    out = {}
    for f in FEATURES:
        cells = [r[header.index(f.name)] for r in rows]
        if f.dtype is Dtype.STRING:
            out[f.name] = tf.constant(cells)
        elif f.dtype is Dtype.INT:
            out[f.name] = tf.constant([int(float(c)) if c else 0 for c in cells], tf.int64)
        else:
            out[f.name] = tf.constant([float(c) if c else float("nan") for c in cells], tf.float32)
    return out


def test_both_serving_signatures_agree_on_the_same_rows(pushed_model_dir):
    header, rows = _rows(64)
    # Integer cells may be empty too; only rows where they are present compare exactly.
    rows = [r for r in rows if all(r[header.index(f.name)] for f in FEATURES if f.dtype is Dtype.INT)]
    assert len(rows) > 20
    model = tf.saved_model.load(str(pushed_model_dir))
    assert {"serving_default", "serving_tf_example", "transform_features"} <= set(model.signatures)
    by_example = model.signatures["serving_tf_example"](examples=tf.constant([_as_example(header, r) for r in rows]))[
        "probabilities"
    ].numpy()
    by_json = model.signatures["serving_default"](**_as_columns(header, rows))["probabilities"].numpy()
    assert by_example.shape == (len(rows),)
    np.testing.assert_allclose(by_example, by_json, rtol=1e-6, atol=1e-6)
    assert np.all((by_example >= 0) & (by_example <= 1))
    # Cash riders almost never tip by card: the model must have learned that.
    cash = [i for i, r in enumerate(rows) if r[header.index("payment_type")] == "Cash"]
    card = [i for i, r in enumerate(rows) if r[header.index("payment_type")] == "Credit Card"]
    assert by_example[cash].mean() < 0.1 < by_example[card].mean()


def test_a_second_run_is_fully_cached_and_pushes_nothing(trained_run):
    before = _versions(trained_run.cfg.model_base_path)
    summary = run_local(trained_run.cfg)
    assert summary.ok, summary.error
    statuses = {c.node_id: c.status for c in summary.components}
    for resolver in ("LatestBlessedModelResolver", "PreviousSpanStatistics", "TrainingWindow"):
        assert statuses.pop(resolver) == "resolved"
    assert set(statuses.values()) == {"cached"}, statuses
    assert len(statuses) == 10
    assert summary.pushed_path is None
    assert "nothing new pushed" in summary.push_note
    assert _versions(trained_run.cfg.model_base_path) == before


class _DropLines(logging.Filter):
    """Drops log records whose message matches: a stand-in for TFX rewording its logs."""

    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern, self.dropped = re.compile(pattern), 0

    def filter(self, record: logging.LogRecord) -> bool:
        if self.pattern.search(record.getMessage()):
            self.dropped += 1
            return False
        return True


def test_a_crippled_model_is_refused_and_the_served_model_stays(trained_run, fixture_data_dir):
    """Three training steps at a tiny learning rate: the floors must refuse it."""
    before = _versions(trained_run.cfg.model_base_path)
    cfg = trained_run.cfg.model_copy(
        update={"training": trained_run.cfg.training.model_copy(update={"train_steps": 3, "learning_rate": 1e-5})}
    )
    # Progress comes from MLMD, not TFX's log text: with TFX's per-component
    # log lines gone, every node is still reported as it starts and ends.
    events = []
    silence = _DropLines(r"Component \S+ is (running|finished)|A cached execution")
    logging.getLogger("absl").addFilter(silence)
    try:
        summary = run_local(cfg, on_progress=events.append)
    finally:
        logging.getLogger("absl").removeFilter(silence)
    assert silence.dropped > 0  # TFX did log them
    assert summary.ok, summary.error  # a refused model is not a failed run
    statuses = {c.node_id: c.status for c in summary.components}
    assert statuses["Trainer"] == "done" and statuses["Transform"] == "cached"
    assert statuses["LatestBlessedModelResolver"] == "resolved", statuses
    assert [(e.node_id, e.status) for e in events if e.node_id == "Trainer"][-1] == ("Trainer", "done")
    assert ("Evaluator", "running") in [(e.node_id, e.status) for e in events]
    assert {e.node_id for e in events} == set(statuses)
    trainer = next(c for c in summary.components if c.node_id == "Trainer")
    assert 0 < trainer.seconds < summary.seconds
    ev = summary.evaluation
    assert not ev.blessed
    assert ev.overall.metrics["auc"] < cfg.eval.floors["auc"]
    assert any(
        (f.slice, f.metric, f.kind, f.config_key) == ("Overall", "auc", "floor", "eval.floors.auc") for f in ev.failures
    ), ev.failures
    assert ev.baseline_uri is not None  # compared against the first, blessed model
    # Slice by slice against the blessed model, on the same test rows: the big
    # company slice (blessed at AUC ~0.95) drops far more than allowed.
    tas = ev.slice("company=Taxi Affiliation Services")
    drops = {f.slice: f for f in ev.failures if f.kind == "drop"}
    drop = drops[tas.slice]
    assert drop.config_key == "eval.slice_max_drops.auc"
    assert drop.baseline == pytest.approx(tas.baseline["auc"]) and tas.baseline["auc"] > 0.9
    assert drop.value == pytest.approx(tas.metrics["auc"] - tas.baseline["auc"], abs=1e-6)
    assert -drop.value > cfg.eval.slice_max_drops["auc"]
    assert summary.pushed_path is None and "not blessed" in summary.push_note
    assert _versions(cfg.model_base_path) == before


def test_report_reads_the_latest_run_back_from_mlmd(trained_run):
    # Other tests run more pipelines in this output dir; this (cached) run makes
    # the trained model's run the latest again.
    assert run_local(trained_run.cfg).ok
    result = CliRunner().invoke(app, ["report", "--output", trained_run.cfg.output_dir])
    assert result.exit_code == 0, result.output
    auc = trained_run.summary.evaluation.overall.metrics["auc"]
    rows = trained_run.summary.evaluation.overall.example_count
    assert f"Overall (test split, {rows} rows): AUC {auc:.4f}" in result.output
    assert "Anomalies: none" in result.output
    assert "Components: 0 run, 10 cached, 3 resolved" in result.output
    assert result.output.rstrip().endswith("Run succeeded (exit 0: succeeded)")


def test_a_refused_model_exits_3_and_names_the_setting_and_its_file(trained_run, tmp_path):
    """Floors nothing meets, set in a profile of the user's: the run completes, pushes nothing, says why."""
    import yaml

    from pipeline.config import PROFILES_DIR

    profile = yaml.safe_load((PROFILES_DIR / "local.yaml").read_text())
    profile["eval"]["floors"] = {"auc": 0.999, "binary_accuracy": 0.85}
    path = tmp_path / "strict.yaml"
    path.write_text(yaml.safe_dump(profile))
    cfg = trained_run.cfg
    before = _versions(cfg.model_base_path)
    result = CliRunner().invoke(
        app, ["run", "--profile", str(path), "--data", cfg.data.root, "--output", cfg.output_dir]
    )
    assert result.exit_code == 3, result.output
    text = " ".join(result.output.split())
    assert f"below the floor 0.9990 [eval.floors.auc = 0.999, set in {path}]" in text
    # The other floor, met, is not listed; the last line gives the code.
    assert "binary_accuracy" not in text.split("failed thresholds:")[1]
    assert text.endswith("Run succeeded (model not blessed, nothing pushed) (exit 3: completed, model not blessed)")
    assert _versions(cfg.model_base_path) == before
    assert run_local(cfg).ok  # cached: the trained run is the latest again


def test_a_refused_setting_exits_2(trained_run):
    cfg = trained_run.cfg
    result = CliRunner().invoke(app, ["run", "--output", cfg.output_dir, "--gate-policy", "maybe"])
    assert result.exit_code == 2
    assert "validation.on_anomaly='maybe' is invalid: must be fail or warn" in " ".join(result.output.split())
