"""``tfxp runs``: history and lineage of the trained run and of a cached re-run, read from MLMD."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.run import run_local
from review.runs import RunNotFound, list_runs, show_run

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def runs(trained_run):
    """The trained run's id and a cached re-run's id."""
    cfg = trained_run.cfg
    assert run_local(cfg).ok  # every component from cache
    history = list_runs(cfg.metadata_path, cfg.name, limit=100)
    [trained] = [r for r in history if r.pushed == str(trained_run.version_dir)]
    return cfg, trained, history[0]


def test_list_shows_runs_newest_first_with_verdict_and_push(runs):
    cfg, trained, cached = runs
    history = list_runs(cfg.metadata_path, cfg.name, limit=100)
    assert [r.started for r in history] == sorted((r.started for r in history), reverse=True)
    assert trained.status == "succeeded" and trained.blessed is True
    assert trained.seconds > 10
    assert {c.state for c in trained.components if c.node_id != "LatestBlessedModelResolver"} == {"COMPLETE"}
    assert cached.run_id != trained.run_id
    assert (cached.status, cached.blessed, cached.pushed) == ("succeeded", True, None)


def test_show_names_the_earlier_execution_a_cached_component_reused(runs):
    cfg, trained, cached = runs
    info, _ = show_run(cfg.metadata_path, cfg.name, cached.run_id)
    trainer = info.component("Trainer")
    assert trainer.state == "CACHED"
    assert trainer.reused_execution == trained.component("Trainer").execution_id
    assert trainer.reused_run == trained.run_id
    assert [o.uri for o in trainer.outputs if o.key == "model"] == [
        o.uri for o in trained.component("Trainer").outputs if o.key == "model"
    ]


def test_lineage_runs_from_the_pushed_model_back_to_the_input_files(runs, fixture_data_dir):
    cfg, trained, _ = runs
    _, lineage = show_run(cfg.metadata_path, cfg.name, trained.run_id)
    assert (lineage.type, lineage.producer) == ("PushedModel", "Pusher")
    assert {(n.type, n.producer) for n in lineage.inputs} == {("Model", "Trainer"), ("ModelBlessing", "Evaluator")}
    blessing = _find(lineage, "ModelBlessing", "Evaluator")
    assert blessing.details["blessed"] == 1
    assert blessing.details["evaluation"].endswith(
        f"/Evaluator/evaluation/{trained.component('Evaluator').execution_id}"
    )
    # Each artifact's inputs are listed where it first appears: follow the chain to the data.
    model = _find(lineage, "Model", "Trainer", expanded=True)
    graph = next(n for n in model.inputs if (n.type, n.producer) == ("TransformGraph", "Transform"))
    examples = next(n for n in graph.inputs if (n.type, n.producer) == ("Examples", "CsvExampleGen"))
    assert examples.details["input_base"] == str(fixture_data_dir)
    assert "num_files:1" in examples.details["input_fingerprint"] and examples.details["span"] == 0


def _find(node, type_, producer, expanded=False):
    """The first node of that type and producer, depth first (with inputs listed, if ``expanded``)."""
    if (node.type, node.producer) == (type_, producer) and (node.inputs or not expanded):
        return node
    for child in node.inputs:
        if found := _find(child, type_, producer, expanded):
            return found
    return None


def test_the_cli_prints_tables_and_json(runs):
    cfg, trained, cached = runs
    runner = CliRunner()
    listed = runner.invoke(app, ["runs", "list", "--output", cfg.output_dir, "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert rows[0]["run_id"] == cached.run_id
    assert {r["run_id"]: r["pushed"] for r in rows}[trained.run_id] == trained.pushed
    shown = runner.invoke(app, ["runs", "show", trained.run_id, "--output", cfg.output_dir, "--json"])
    assert shown.exit_code == 0, shown.output
    detail = json.loads(shown.output)
    assert [c["node_id"] for c in detail["components"]][-1] == "Pusher"
    assert detail["lineage"]["type"] == "PushedModel"
    text = runner.invoke(app, ["runs", "show", cached.run_id, "--output", cfg.output_dir]).output
    assert f"(reused execution {trained.component('Trainer').execution_id} of run {trained.run_id})" in text
    assert "<- Examples by CsvExampleGen" in text
    table = runner.invoke(app, ["runs", "list", "--output", cfg.output_dir]).output
    assert trained.run_id in table and Path(trained.pushed).name in table


def test_an_unknown_run_lists_the_recent_ones(runs):
    cfg, _, cached = runs
    with pytest.raises(RunNotFound, match=rf"unknown run 'nope' of {cfg.name}; recent runs: {cached.run_id}"):
        show_run(cfg.metadata_path, cfg.name, "nope")
    result = CliRunner().invoke(app, ["runs", "show", "nope", "--output", cfg.output_dir])
    assert result.exit_code == 1
    assert "unknown run 'nope'" in result.output and cached.run_id in result.output
    assert "Traceback" not in result.output


def test_no_runs_yet_says_so_in_one_line(tmp_path):
    runner = CliRunner()
    for args in (["runs", "list"], ["runs", "show"], ["report"], ["report", "--out", str(tmp_path / "r.html")]):
        result = runner.invoke(app, [*args, "--output", str(tmp_path)])
        assert result.exit_code == 1, (args, result.output)
        assert "run `tfxp run` first" in result.output, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output
