"""MLflow tracking: names MLflow accepts, and real runs exported to a real SQLite MLflow store and read back.

The values read back with ``mlflow.search_runs`` are compared with TFMA's own
files for the run (``tfma.load_eval_result``), not with our reader of them.
"""

from __future__ import annotations

import csv
import json
import math
import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import DATA_CSV, FIXTURE_TRAIN_STEPS, closed_port, fast_config
from tracking.export import export_run, metric_name, slice_path, slice_paths, track_run

FAILED_LINE = re.compile(
    r"MLflow export failed, the run is unaffected: cannot reach http://127\.0\.0\.1:\d+: Connection refused"
)


def _sqlite(path: Path) -> str:
    return f"sqlite:///{path}"


def _search(uri: str, experiment: str = "taxi-pipeline"):
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(experiment_names=[experiment])


# --- names --------------------------------------------------------------------------------------


def test_slice_paths_are_readable_and_keep_what_mlflow_allows():
    assert slice_path("Overall") == ""
    assert slice_path("payment_type=Cash") == "payment_type/Cash"
    assert slice_path("payment_type=Credit Card, trip_start_hour=7") == "payment_type/Credit Card/trip_start_hour/7"
    assert slice_path("company=C & D Cab Co Inc") == "company/C and D Cab Co Inc"
    assert (
        slice_path("company=Chicago Elite Cab Corp. (Chicago Carriag")
        == "company/Chicago Elite Cab Corp. _Chicago Carriag"
    )
    assert slice_path("company=A, B/C") == "company/A_ B_C"  # a comma inside a value, a slash
    assert slice_path("company=") == "company/_" and slice_path("company=..") == "company/_"
    assert metric_name("auc", "payment_type/Cash") == "auc/payment_type/Cash"
    assert metric_name("auc", "", "baseline") == "baseline/auc"


def test_names_that_clash_after_mapping_stay_apart_the_same_way_in_any_order():
    names = ["company=C&D", "company=CandD", "company=C(D", "company=C)D"]
    paths = slice_paths(names)
    assert paths == {
        "company=C&D": "company/CandD",
        "company=C(D": "company/C_D",
        "company=C)D": "company/C_D_2",
        "company=CandD": "company/CandD_2",
    }
    assert slice_paths(list(reversed(names))) == paths


def test_every_slice_of_the_shipped_data_is_a_metric_mlflow_stores(tmp_path):
    """Each company and payment type, logged for real and read back under its mapped name."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    with open(DATA_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    names = sorted({f"company={r['company']}" for r in rows} | {f"payment_type={r['payment_type']}" for r in rows})
    paths = slice_paths(names)
    assert len(set(paths.values())) == len(names)
    uri = _sqlite(tmp_path / "mlflow.db")
    client = MlflowClient(uri)
    run = client.create_run(client.create_experiment("taxi-pipeline"))
    client.log_batch(
        run.info.run_id, metrics=[Metric(metric_name("auc", p), i, 0, 0) for i, p in enumerate(paths.values())]
    )
    row = _search(uri).iloc[0]
    assert row["metrics.auc/company/C and D Cab Co Inc"] == list(paths).index("company=C & D Cab Co Inc")
    assert row["metrics.auc/company/3201 - CandD Cab Co Inc"] == list(paths).index("company=3201 - C&D Cab Co Inc")
    assert row[f"metrics.auc/{paths['company=Chicago Elite Cab Corp. (Chicago Carriag']}"] >= 0
    assert sum(c.startswith("metrics.") for c in row.index) == len(names)


# --- a real run, exported -----------------------------------------------------------------------


def _tfma_metrics(evaluation_uri: str, model_name: str | None = None) -> dict[str, float]:
    """Every double metric TFMA wrote for one model, by the MLflow name it should have."""
    import tensorflow_model_analysis as tfma

    from models.rule import RULE_OUTPUT

    out = {}
    result = tfma.load_eval_result(evaluation_uri, model_name=model_name)
    names = [", ".join(f"{k}={v}" for k, v in key) or "Overall" for key, _ in result.slicing_metrics]
    paths = slice_paths(names)
    for name, (_, by_output) in zip(names, result.slicing_metrics, strict=True):
        for output, by_sub_key in by_output.items():
            prefix = "rule" if output == RULE_OUTPUT else ""
            for metric, value in by_sub_key[""].items():
                if "doubleValue" in value:
                    out[metric_name(metric, paths[name], prefix)] = float(value["doubleValue"])
    return out


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.fixture(scope="module")
def trained(trained_run):
    """The fixture run's MLMD run id and its evaluation's URI."""
    from review.runs import list_runs

    cfg = trained_run.cfg
    [run] = [r for r in list_runs(cfg.metadata_path, cfg.name, limit=100) if r.pushed == str(trained_run.version_dir)]
    [evaluation] = [o.uri for o in run.component("Evaluator").outputs if o.key == "evaluation"]
    return run, evaluation


@pytest.fixture(scope="module")
def exported(trained_run, trained, tmp_path_factory):
    run, _ = trained
    uri = _sqlite(tmp_path_factory.mktemp("mlflow") / "mlflow.db")
    first = export_run(trained_run.cfg, run.run_id, uri)
    second = export_run(trained_run.cfg, run.run_id, uri)
    return uri, first, second


def test_a_run_whose_tracking_server_is_unreachable_succeeds_pushes_and_says_so_in_one_line(trained_run):
    from pipeline.cli import console, print_summary

    summary = trained_run.summary
    assert summary.ok and summary.exit_code == 0
    assert summary.pushed_path and (Path(summary.pushed_path) / "saved_model.pb").exists()
    assert FAILED_LINE.fullmatch(summary.tracking_note), summary.tracking_note
    with console.capture() as captured:
        print_summary(summary, trained_run.cfg)
    lines = [line for line in captured.get().splitlines() if "MLflow" in line]
    assert lines == [f"Tracking: {summary.tracking_note}"]


def test_the_exported_metrics_equal_tfma_for_every_slice(exported, trained):
    uri, first, _ = exported
    _, evaluation = trained
    expected = _tfma_metrics(evaluation)
    row = _search(uri).iloc[0]
    logged = {c[len("metrics.") :]: row[c] for c in row.index if c.startswith("metrics.")}
    assert set(logged) == set(expected) and first.metrics == len(expected)
    assert all(_same(logged[k], expected[k]) for k in expected), [
        k for k in expected if not _same(logged[k], expected[k])
    ]
    assert 0.9 < logged["auc"] < 1 and logged["auc/payment_type/Cash"] == expected["auc/payment_type/Cash"]
    assert "rule/auc" in logged and not any(k.startswith("baseline/") for k in logged)  # the first model: no baseline


def test_the_exported_params_and_tags_are_the_runs(exported, trained, trained_run, fixture_data_dir):
    from pipeline.pipeline import code_fingerprint

    uri, first, _ = exported
    run, _ = trained
    row = _search(uri).iloc[0]
    assert row["run_id"] == first.mlflow_run_id and row["status"] == "FINISHED"
    tags = {c[len("tags.") :]: row[c] for c in row.index if c.startswith("tags.") and row[c] is not None}
    assert {k: tags[k] for k in ("mlmd_run_id", "mlflow.runName", "status", "verdict", "failed_thresholds")} == {
        "mlmd_run_id": run.run_id,
        "mlflow.runName": run.run_id,
        "status": "succeeded",
        "verdict": "blessed",
        "failed_thresholds": "0",
    }
    assert tags["pushed.path"] == str(trained_run.version_dir)
    assert tags["pushed.version"] == trained_run.version_dir.name
    assert not any(k.startswith("failed/") for k in tags)
    cfg = trained_run.cfg
    params = {c[len("params.") :]: row[c] for c in row.index if c.startswith("params.")}
    assert params["hparams.train_steps"] == str(FIXTURE_TRAIN_STEPS)
    assert params["hparams.learning_rate"] == str(cfg.training.learning_rate)
    assert json.loads(params["hparams.hidden_units"]) == list(cfg.training.hidden_units)
    assert params["data.input_base"] == str(fixture_data_dir)
    assert params["data.span"] == "0"
    assert params["code.models_fingerprint"] == code_fingerprint()
    assert params["config.eval.floors.auc"] == str(cfg.eval.floors["auc"])
    assert params["config.output_dir"] == cfg.output_dir
    assert json.loads(params["config.features"]) == cfg.features.to_dict()


def test_the_report_and_the_slice_names_are_artifacts(exported, trained):
    from mlflow.tracking import MlflowClient

    uri, first, _ = exported
    run, evaluation = trained
    client = MlflowClient(uri)
    assert sorted(a.path for a in client.list_artifacts(first.mlflow_run_id)) == ["report.html", "slices.json"]
    report = Path(client.download_artifacts(first.mlflow_run_id, "report.html")).read_text()
    assert report.startswith("<!DOCTYPE html>") and run.run_id in report and "BLESSED" in report
    slices = json.loads(Path(client.download_artifacts(first.mlflow_run_id, "slices.json")).read_text())
    assert slices["Overall"] == "Overall" and slices["payment_type/Cash"] == "payment_type=Cash"
    assert set(slices) == {
        k.split("/", 1)[1] if "/" in k else "Overall" for k in _tfma_metrics(evaluation) if k.startswith("auc")
    }


def test_exporting_the_same_run_again_updates_one_mlflow_run(exported):
    from mlflow.tracking import MlflowClient

    uri, first, second = exported
    assert first.created and not second.created
    assert second.mlflow_run_id == first.mlflow_run_id and second.kept_params == ()
    assert len(_search(uri)) == 1
    assert [m.value for m in MlflowClient(uri).get_metric_history(first.mlflow_run_id, "auc")] == [
        _search(uri).iloc[0]["metrics.auc"]
    ]


def test_the_runs_export_command_logs_updates_and_fails_in_one_line(exported, trained, trained_run):
    from pipeline.cli import app

    uri, first, _ = exported
    run, _ = trained
    out = trained_run.cfg.output_dir
    updated = CliRunner().invoke(app, ["runs", "export", run.run_id, "--output", out, "--mlflow", uri])
    assert updated.exit_code == 0, updated.output
    assert f"Updated MLflow run {first.mlflow_run_id}" in updated.output and f"from run {run.run_id}" in updated.output
    assert len(_search(uri)) == 1
    unreachable = f"http://127.0.0.1:{closed_port()}"
    failed = CliRunner().invoke(app, ["runs", "export", "latest", "--output", out, "--mlflow", unreachable])
    assert failed.exit_code == 1
    assert failed.output.strip().splitlines() == [
        f"error: MLflow export failed: cannot reach {unreachable}: Connection refused"
    ]
    unknown = CliRunner().invoke(app, ["runs", "export", "no-such-run", "--output", out, "--mlflow", uri])
    assert unknown.exit_code == 1 and unknown.output.startswith(
        "error: MLflow export failed: unknown run 'no-such-run'"
    )


def test_the_automatic_export_never_raises(trained_run, fixture_data_dir, tmp_path, monkeypatch):
    cfg = fast_config(
        fixture_data_dir, Path(trained_run.cfg.output_dir), **{"tracking.mlflow_uri": _sqlite(tmp_path / "m.db")}
    )
    # A run that recorded nothing in MLMD (refused before its first component) must not export an older one.
    stale = track_run(cfg, started_after=4_102_444_800)  # 2100-01-01
    assert stale.startswith("MLflow export failed, the run is unaffected: this run recorded nothing in ")
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)  # as if MLflow were not installed
    missing = track_run(cfg, started_after=0)
    assert missing.startswith("MLflow export failed, the run is unaffected: MLflow is not installed (")
    assert "\n" not in stale + missing and not (tmp_path / "m.db").exists()


def test_a_refused_model_is_logged_with_its_baseline_and_every_failed_threshold(
    trained_run, fixture_data_dir, tmp_path
):
    """A real second run, exported by `tfxp run` itself: four steps at a tiny rate, refused by the gates.

    Four, not the three of tests/e2e/test_local_run.py: that test asserts its Trainer runs, not cached.
    """
    import tensorflow_model_analysis as tfma

    from pipeline.run import run_local
    from review.runs import show_run

    uri = _sqlite(tmp_path / "mlflow.db")
    cfg = fast_config(
        fixture_data_dir,
        Path(trained_run.cfg.output_dir),
        **{"training.train_steps": 4, "training.learning_rate": 1e-5, "tracking.mlflow_uri": uri},
    )
    summary = run_local(cfg)
    assert summary.ok and summary.exit_code == 3, summary.error
    ev = summary.evaluation
    assert not ev.blessed and ev.baseline_uri and summary.pushed_path is None
    [row] = [r for _, r in _search(uri).iterrows()]
    assert summary.tracking_note == f"logged to MLflow {uri}, experiment taxi-pipeline, run {row['run_id']}"
    info, _ = show_run(cfg.metadata_path, cfg.name, "latest")
    assert row["tags.mlmd_run_id"] == info.run_id and row["tags.verdict"] == "not blessed"
    assert row["tags.failed_thresholds"] == str(len(ev.failures)) and len(ev.failures) >= 2
    failed = {c[len("tags.") :]: row[c] for c in row.index if c.startswith("tags.failed/") and row[c] is not None}
    assert sorted(failed.values()) == sorted(str(f) for f in ev.failures)
    assert failed["failed/floor/auc"] == str(next(f for f in ev.failures if (f.kind, f.slice) == ("floor", "Overall")))
    assert "failed/drop/auc/company/Taxi Affiliation Services" in failed
    assert row.get("tags.pushed.version") is None
    # Candidate and baseline, each as TFMA wrote it for this run.
    [evaluation] = [o.uri for o in info.component("Evaluator").outputs if o.key == "evaluation"]
    candidate = _tfma_metrics(evaluation, tfma.CANDIDATE_KEY)
    baseline = _tfma_metrics(evaluation, tfma.BASELINE_KEY)
    for name in ("auc", "binary_accuracy", "auc/company/Taxi Affiliation Services", "auc/payment_type/Credit Card"):
        assert row[f"metrics.{name}"] == candidate[name]
        assert row[f"metrics.baseline/{name}"] == baseline[name]
    assert row["metrics.baseline/auc"] > 0.9 > row["metrics.auc"]
