"""``tfxp runs``: local run history and lineage. The commands only parse and print."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from review.runs import LineageNode, RunInfo, RunNotFound, list_runs, show_run

app = typer.Typer(
    help="Run history and lineage of local runs, read from ML Metadata.", no_args_is_help=True, rich_markup_mode=None
)
console = Console(highlight=False, soft_wrap=True)

_COLOURS = {"succeeded": "green", "failed": "red", "running": "yellow", "COMPLETE": "green", "CACHED": "cyan"}


def _cfg(profile: str, output: Path | None):  # -> PipelineConfig
    from pipeline.cli import _config

    return _config(profile, None, output)


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def _verdict(run: RunInfo) -> str:
    if run.blessed is None:
        return "-"
    return "blessed" if run.blessed else "not blessed"


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(1)


@app.command("list")
def runs_list(
    profile: str = typer.Option("local", "--profile", help="Config profile: pipeline/profiles/<name>.yaml."),
    output: Path | None = typer.Option(None, "--output", help="Output directory (default: the profile's)."),
    limit: int = typer.Option(20, "--limit", help="How many runs, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Recent runs, newest first: id, start, duration, status, blessing, pushed version."""
    cfg = _cfg(profile, output)
    try:
        runs = list_runs(cfg.metadata_path, cfg.name, limit)
    except RunNotFound as exc:
        _fail(str(exc))
    if not runs:
        _fail(f"no runs of {cfg.name} recorded in {cfg.metadata_path}: run `tfxp run` first")
    if as_json:
        print(json.dumps([_run_json(r, with_components=False) for r in runs], indent=2))
        return
    console.print(f"{'run id':<28} {'started':<19} {'took':>7}  {'status':<10} {'verdict':<12} pushed")
    for r in runs:
        colour = _COLOURS.get(r.status, "white")
        pushed = Path(r.pushed).name if r.pushed else "-"
        console.print(
            f"{r.run_id:<28} {_when(r.started):<19} {r.seconds:6.1f}s  [{colour}]{r.status:<10}[/]"
            f" {_verdict(r):<12} {pushed}"
        )


@app.command("show")
def runs_show(
    run: str = typer.Argument("latest", help="A run id from `tfxp runs list`, or 'latest'."),
    profile: str = typer.Option("local", "--profile", help="Config profile: pipeline/profiles/<name>.yaml."),
    output: Path | None = typer.Option(None, "--output", help="Output directory (default: the profile's)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Every component's state, time and outputs; what cached ones reused; the lineage of the result."""
    cfg = _cfg(profile, output)
    try:
        info, lineage = show_run(cfg.metadata_path, cfg.name, run)
    except RunNotFound as exc:
        _fail(str(exc))
    if as_json:
        out = _run_json(info, with_components=True)
        out["lineage"] = dataclasses.asdict(lineage) if lineage else None
        print(json.dumps(out, indent=2))
        return
    console.print(
        f"Run {info.run_id}: [{_COLOURS.get(info.status, 'white')}]{info.status}[/], started {_when(info.started)},"
        f" {info.seconds:.1f}s, {_verdict(info)}, pushed {info.pushed or 'nothing'}"
    )
    for c in info.components:
        colour = _COLOURS.get(c.state, "red" if c.state == "FAILED" else "white")
        reused = f"  (reused execution {c.reused_execution} of run {c.reused_run})" if c.reused_execution else ""
        console.print(f"  {c.node_id:<28} [{colour}]{c.state:<9}[/] {c.seconds:6.1f}s{reused}")
        for o in c.outputs:
            console.print(f"      {o.key}: {o.type} {escape(o.uri)}")
    if lineage is not None:
        console.print("Lineage (each artifact <- what it was made from):")
        _print_lineage(lineage, 1)


@app.command("export")
def runs_export(
    run: str = typer.Argument("latest", help="A run id from `tfxp runs list`, or 'latest'."),
    uri: str = typer.Option(
        "", "--mlflow", help="MLflow tracking URI, e.g. sqlite:////abs/path/mlflow.db (default: tracking.mlflow_uri)."
    ),
    profile: str = typer.Option("local", "--profile", help="Config profile: pipeline/profiles/<name>.yaml."),
    output: Path | None = typer.Option(None, "--output", help="Output directory (default: the profile's)."),
) -> None:
    """Log a recorded run to MLflow: params, TFMA metrics per slice, verdict tags, the report. Again: updates it."""
    from pipeline.cli import _quiet_environment
    from tracking.export import TrackingError, export_run, quiet_logs

    _quiet_environment()
    quiet_logs()
    cfg = _cfg(profile, output)
    try:
        done = export_run(cfg, run, uri or None)
    except (RunNotFound, TrackingError) as exc:
        _fail(f"MLflow export failed: {exc}")
    verb = "Logged" if done.created else "Updated"
    console.print(
        f"{verb} MLflow run {done.mlflow_run_id} (experiment {escape(done.experiment)}, {escape(done.uri)})"
        f" from run {done.mlmd_run_id}: {done.metrics} metrics"
    )
    if done.kept_params:
        console.print(
            f"Kept the values an earlier export recorded for {len(done.kept_params)} params (MLflow params cannot"
            f" change): {escape(', '.join(done.kept_params))}"
        )


def _print_lineage(node: LineageNode, depth: int) -> None:
    details = ", ".join(f"{k}={v}" for k, v in node.details.items())
    console.print(
        f"{'  ' * depth}{'<- ' if depth > 1 else ''}{node.type} by {node.producer} (run {node.run_id})"
        f" {escape(node.uri)}" + (f"  ({escape(details)})" if details else "")
    )
    for child in node.inputs:
        _print_lineage(child, depth + 1)


def _run_json(run: RunInfo, with_components: bool) -> dict:
    out = dataclasses.asdict(run)
    out["started"] = _when(run.started)
    if not with_components:
        out.pop("components")
    else:
        for c in out["components"]:
            c.pop("properties")  # large recorded configs; `tfxp report` shows what matters
    return out
