"""``tfxp monitor``: judge a window of served traffic. The command only parses and prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from monitoring.monitor import MonitorResult
    from pipeline.config import PipelineConfig

console = Console(highlight=False, soft_wrap=True)


def monitor_command(
    profile: str = typer.Option("local", "--profile", help="Config profile: a name or a .yaml path."),
    output: Path | None = typer.Option(None, "--output", help="Output directory (default: the profile's)."),
    request_log: Path | None = typer.Option(
        None, "--request-log", help="The server's --request_log_dir (default: <output>/request_log)."
    ),
    rows: int | None = typer.Option(
        None, "--rows", help="Judge the newest N rows (default: monitoring.window_rows)."
    ),
    window: str | None = typer.Option(None, "--window", help="Judge the last DURATION instead, e.g. 15m, 2h, 1d."),
    since: str | None = typer.Option(
        None, "--since", help="Judge every row since this time (ISO 8601 or unix seconds)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    html: Path | None = typer.Option(None, "--html", help="Also write an HTML page of every distance here."),
    metrics_file: Path | None = typer.Option(
        None, "--metrics-file", help="Also write Prometheus gauges here (node-exporter textfile format)."
    ),
    retrain: bool = typer.Option(
        False, "--retrain", help="On an alert, run the pipeline (same gates) on the newest span."
    ),
    feedback: Path | None = typer.Option(
        None,
        "--feedback",
        help="With --retrain: CSV of request_id and the label's columns; the window becomes a new span.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="With --retrain: decide and say what would run; run nothing."
    ),
) -> None:
    """Skew against training, drift against the previous window, and the served scores.

    One window of the request log.

    Exit codes: 0 all within bounds, 5 a threshold exceeded, 6 too few rows for a verdict, 4 no log or an empty window.
    """
    from pipeline.cli import _config, _quiet_environment
    from pipeline.data_check import DataError

    _quiet_environment()
    from monitoring.monitor import EXIT_NO_DATA, append_history, monitor, prometheus_text, write_metrics_file
    from monitoring.window import parse_duration, parse_time

    cfg = _config(profile, None, output)
    log_dir = (request_log or Path(cfg.request_log_dir)).resolve()
    try:
        result = monitor(
            cfg,
            log_dir,
            last_rows=rows,
            duration=parse_duration(window) if window else None,
            since=parse_time(since) if since else None,
        )
    except (DataError, ValueError) as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_NO_DATA) from None
    history = append_history(cfg, result)
    if metrics_file is not None:
        write_metrics_file(metrics_file, prometheus_text(result, cfg.serving.model_name))
    if html is not None:
        from monitoring.page import write_page

        write_page(result, html)
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print_result(result)
        console.print(f"History: {history}")
    if not retrain:
        raise typer.Exit(result.exit_code)
    raise typer.Exit(_retrain(cfg, profile, result, feedback, dry_run))


def _retrain(
    cfg: PipelineConfig, profile: str, result: MonitorResult, feedback: Path | None, dry_run: bool
) -> int:
    """Decide, retrain if needed, print what happened; the exit code: the run's if it did not succeed."""
    from monitoring.retrain import decide_and_retrain
    from pipeline.cli import _ProgressLines, print_summary
    from pipeline.data_check import DataError

    progress = _ProgressLines(console)
    try:
        decision, summary = decide_and_retrain(
            cfg,
            result,
            result.window,
            feedback.resolve() if feedback else None,
            dry_run,
            on_progress=progress,
        )
    except DataError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        return 4
    finally:
        progress.close()
    if not decision.triggered:
        console.print(f"Retrain: no ({escape(decision.reasons[0])})")
        return result.exit_code  # type: ignore[attr-defined]
    console.print(
        f"Retrain: yes, {len(decision.reasons)} reason(s); "
        f"span {decision.span if decision.span is not None else '(the data root)'}"
    )
    if decision.feedback is not None:
        fb = decision.feedback
        console.print(
            f"  feedback span {fb.span}: {fb.rows} rows written to {fb.path}; {fb.without_label} logged rows without "
            f"feedback left out; {fb.unknown_ids} unknown request ids and {fb.duplicates} duplicates ignored"
        )
    if decision.submitted is not None:
        console.print_json(json.dumps(decision.submitted))
    if summary is not None:
        print_summary(summary, cfg, profile)  # type: ignore[arg-type]
        return summary.exit_code or result.exit_code  # type: ignore[attr-defined]
    return result.exit_code  # type: ignore[attr-defined]


def print_result(result: object) -> None:
    from monitoring.monitor import MonitorResult
    from validation.cli import print_distances

    assert isinstance(result, MonitorResult)
    when = ""
    if result.start is not None and result.end is not None:
        from monitoring.monitor import _iso

        when = f", {_iso(result.start)} to {_iso(result.end)}"
    versions = ", ".join(f"v{v}: {n}" for v, n in result.versions.items())
    console.print(f"Window: {result.rows} rows from {result.log_dir}{when} ({versions})")
    for note in result.notes:
        console.print(f"  note: {escape(note)}")
    for s in result.skew:
        if s.distances:
            print_distances(
                s.distances, f"Skew: version {s.version}'s {s.rows} rows against its training data:", "SKEW"
            )
        else:
            console.print(f"Skew: version {s.version}: {escape(s.note)}")
    if result.drift is not None:
        print_distances(result.drift, f"Drift: this window against the previous {result.previous_rows} rows:")
    for p in result.predictions:
        flag = "[red]beyond[/]" if p.exceeded else "within"
        console.print(
            f"Predictions: version {p.version}: mean {p.window_mean:.4f} (eval split {p.reference_mean:.4f}, "
            f"shift {p.mean_shift:+.4f}, bound {p.max_mean_shift}); "
            f"JSD {p.distance:.4f} (bound {p.max_distance}): {flag}"
        )
    if result.verdict == "alert":
        console.print(f"Verdict: [red]ALERT[/]: {len(result.alerts)} threshold(s) exceeded")
        for alert in result.alerts:
            console.print(f"  - {escape(alert)}")
    elif result.verdict == "ok":
        console.print("Verdict: [green]OK[/]: every distance within its threshold")
    else:
        console.print("Verdict: none: too few rows to judge")
    console.print(f"(exit {result.exit_code})")
