"""``tfxp``: the project's command line. Commands only parse arguments and print.

The work is done by plain functions (``pipeline.run.run_local``,
``pipeline.schema.infer_schema``...), which tests call directly. Heavy
imports (TensorFlow, TFX) happen inside commands, so ``tfxp --help`` is fast.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from pipeline.config import PipelineConfig
    from pipeline.results import Evaluation
    from pipeline.run import ComponentProgress, RunSummary
    from validation.history import DriftRecord

app = typer.Typer(
    help="tfx-production-pipeline: run, inspect and serve the taxi TFX pipeline.",
    no_args_is_help=True,
    add_completion=False,
    # Plain help: rich's panels cut long flag names (--model_config_file_poll_wait_seconds)
    # at 80 columns and show bool flags as "<bool>".
    rich_markup_mode=None,
)
schema_app = typer.Typer(
    help="Work with the curated schema (schema/schema.pbtxt).", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(schema_app, name="schema")
console = Console(highlight=False, soft_wrap=True)

ProfileOpt = typer.Option("local", "--profile", help="Config profile: pipeline/profiles/<name>.yaml.")
DataOpt = typer.Option(None, "--data", help="Directory of CSV files (default: the profile's data.root).")
OutputOpt = typer.Option(None, "--output", help="Output directory (default: the profile's output_dir).")


def _quiet_environment() -> None:
    """Keep TensorFlow's C++ and Google's deprecation chatter off the console."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def _config(
    profile: str, data: Path | None, output: Path | None, code: int = 2, **extra: Any
) -> PipelineConfig:
    from pipeline.config import load_config

    overrides: dict[str, Any] = dict(extra)
    if data is not None:
        overrides["data.root"] = str(data.resolve())
    if output is not None:
        overrides["output_dir"] = str(output.resolve())
    try:
        return load_config(profile, overrides)
    except ValueError as exc:
        _fail(str(exc), code)
        raise  # unreachable; keeps type checkers happy


def _fail(message: str, code: int = 1) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


@app.command()
def run(
    profile: str = ProfileOpt,
    data: Path | None = DataOpt,
    output: Path | None = OutputOpt,
    no_cache: bool = typer.Option(False, "--no-cache", help="Re-run every component."),
    verbose: bool = typer.Option(False, "--verbose", help="Show TFX's logs on the console."),
    train_steps: int | None = typer.Option(None, "--train-steps", help="Override training.train_steps."),
    span: int | None = typer.Option(None, "--span", help="The span to ingest (default: the latest)."),
    span_pattern: str | None = typer.Option(
        None, "--span-pattern", help="Spans under --data, e.g. 'span-{SPAN}/*.csv' (data.span_pattern)."
    ),
    gate_policy: str | None = typer.Option(
        None,
        "--gate-policy",
        help="fail or warn: what the data gate does with anomalies and drift (validation.on_anomaly).",
    ),
) -> None:
    """Run the whole pipeline locally (LocalDagRunner) and print a summary."""
    _quiet_environment()
    extra: dict[str, Any] = {}
    if no_cache:
        extra["enable_cache"] = False
    if train_steps is not None:
        extra["training.train_steps"] = train_steps
    if span is not None:
        extra["data.span"] = span
    if span_pattern is not None:
        extra["data.span_pattern"] = span_pattern
    if gate_policy is not None:
        # The flag decides for every kind, overriding the profile's per-kind choices.
        extra["validation.on_anomaly"] = gate_policy
        extra["validation.on_kind"] = {}
    from pipeline.run import run_local

    cfg = _config(profile, data, output, **extra)

    console.print(f"Running [bold]{cfg.name}[/] on {cfg.data.root} -> {cfg.output_dir}")
    # The run sends stray prints to its log file; progress goes to this terminal.
    progress = _ProgressLines(Console(file=sys.stdout, highlight=False, soft_wrap=True))
    try:
        summary = run_local(
            cfg,
            verbose=verbose,
            on_progress=progress,
            on_warning=lambda w: console.print(f"[yellow]warning:[/] {escape(w)}"),
        )
    finally:
        progress.close()
    print_summary(summary, cfg, profile)
    raise typer.Exit(summary.exit_code)


class _ProgressLines:
    """One line per component when it ends; a transient spinner while it runs."""

    _COLOURS = {"done": "green", "cached": "cyan", "resolved": "cyan", "failed": "red"}

    def __init__(self, terminal: Console) -> None:
        self.terminal = terminal
        self.status: Any = None

    def __call__(self, p: ComponentProgress) -> None:
        self.close()
        if p.status == "running":
            self.status = self.terminal.status(f"{p.node_id} running...")
            self.status.start()
        else:
            colour = self._COLOURS.get(p.status, "white")
            self.terminal.print(f"  {p.node_id:<28} [{colour}]{p.status:<8}[/] {p.seconds:6.1f}s")

    def close(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None


def print_summary(summary: RunSummary, cfg: PipelineConfig, profile: str = "local") -> None:
    """Print what a run did, what it found, and what it pushed; the last line gives the exit code."""
    from pipeline.run import EXIT_MEANINGS

    console.print()
    if summary.components:
        took = f" ({summary.seconds:.1f}s)" if summary.seconds else ""
        resolved = sum(c.status == "resolved" for c in summary.components)
        console.print(
            f"Components: {len(summary.run_ids)} run, {len(summary.cached_ids)} cached, {resolved} resolved{took}"
        )
    if summary.span is not None:
        console.print(f"Span: {summary.span}")
    if summary.rows_without_label:
        label = cfg.features.label
        console.print(
            f"Rows without a label: {summary.rows_without_label}, left out of training and evaluation"
            f" ({', '.join(label.source_columns)} missing; label {label.name}: {label.expr})"
        )
    if summary.anomalies:
        console.print(f"Anomalies: {len(summary.anomalies)}")
        policy = json.loads(cfg.validation.policy_json())
        for a in summary.anomalies:
            action = "[red]fail[/]" if a.action(policy) == "fail" else "[yellow]warn[/]"
            console.print(f"  - {action} {a.source}: {escape(str(a))}")
    elif "ExampleValidator" in summary.nodes:
        console.print("Anomalies: none")
    if summary.drift is not None:
        print_drift(summary.drift)
    if summary.trials:
        best = summary.trials[0]
        values = ", ".join(f"{k} {v:.4g}" for k, v in best.items() if k not in ("trial_id", "score"))
        console.print(
            f"Tuning: best of {len(summary.trials)} trials: {values} (eval AUC {best['score']:.4f}); "
            f"the Trainer trained with it"
        )
    if summary.evaluation is not None:
        print_evaluation(summary.evaluation, cfg, profile, summary.rule_feature)
    if summary.push_note:
        console.print(f"Push: {escape(summary.push_note)}")
    if summary.tracking_note:
        console.print(f"Tracking: {escape(summary.tracking_note)}")
    if summary.log_file:
        console.print(f"Log: {summary.log_file}")
    code = summary.exit_code
    exit_note = f" [dim](exit {code}: {EXIT_MEANINGS[code]})[/]"
    if summary.ok:
        verdict = "[green]Run succeeded[/]"
        if summary.evaluation is not None and not summary.evaluation.blessed:
            verdict += " [yellow](model not blessed, nothing pushed)[/]"
        console.print(verdict + exit_note)
    elif summary.anomalies and (summary.error or "").startswith("AnomaliesFound:"):
        # The findings are listed above; keep the advice, then the verdict.
        lines = (summary.error or "").splitlines()
        console.print(escape(lines[-1]))
        console.print(f"[bold red]Run failed:[/] {escape(lines[0].split(': ', 1)[1])} (listed above)" + exit_note)
    else:
        console.print(f"[bold red]Run failed:[/] {escape(summary.error or '')}" + exit_note)


def print_drift(drift: DriftRecord) -> None:
    """Every distance this run measured, or why it measured none."""
    if drift.baseline_span is None:
        console.print(f"Drift: span {drift.span} is the first span: no earlier span's statistics to compare with")
        return
    from validation.cli import print_distances
    from validation.drift import Distance

    rows = [Distance.from_record(f, d) for f, d in sorted(drift.features.items())]
    print_distances(rows, f"Drift: span {drift.span} against span {drift.baseline_span} (train splits):")


def _fmt(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.4f}"


def _with_source(failure: Any, cfg: PipelineConfig, profile: str) -> str:
    """A failed threshold, with the setting's value and where it was set."""
    from pipeline.config import setting_source

    text = str(failure)
    key = failure.config_key
    if not key.startswith("eval.") or not text.endswith("]"):
        return text
    section, field, *metric = key.split(".")
    value: Any = getattr(cfg.eval, field, None)
    if metric and isinstance(value, dict | Mapping):
        value = value.get(metric[0])
    try:
        source = setting_source(profile, key)
    except ValueError:
        source = "the profile"
    return f"{text[:-1]} = {value}, set in {source}]"


def print_evaluation(
    ev: Evaluation, cfg: PipelineConfig, profile: str = "local", rule_feature: str | None = None
) -> None:
    """The test-split metrics, every judged slice's verdict, and the blessing with its reasons."""
    e = cfg.eval
    m = ev.overall.metrics
    console.print(
        f"Overall (test split, {ev.overall.example_count} rows): AUC {_fmt(m.get('auc'))}"
        f" (rule {_fmt(ev.overall.rule.get('auc'))}, baseline {_fmt(ev.overall.baseline.get('auc'))}),"
        f" accuracy {_fmt(m.get('binary_accuracy'))} (rule {_fmt(ev.overall.rule.get('binary_accuracy'))},"
        f" majority class {_fmt(ev.overall.majority_accuracy)})"
    )
    if rule_feature:
        how = "chosen on the eval split" if e.rule_feature == "auto" else "eval.rule_feature"
        console.print(f"Rule: the train split's positive rate per {rule_feature} ({how})")
    judged = ev.judged_slices(e.slice_min_examples, e.slice_min_class_examples)
    failed = ev.failed_slices()
    console.print(
        f"Slices judged (>= {e.slice_min_examples} rows, >= {e.slice_min_class_examples} of each class):"
        f" {len(judged)} of {len(ev.slices)}; the others are too small to decide"
    )
    if judged:
        console.print(f"  {'slice':<48} {'rows':>5} {'AUC':>7} {'rule':>7} {'baseline':>8}  verdict")
        for s in judged:
            verdict = "[red]FAIL[/]" if s.slice in failed else "[green]pass[/]"
            console.print(
                f"  {escape(s.slice[:48]):<48} {s.example_count:>5} {_fmt(s.metrics.get('auc')):>7}"
                f" {_fmt(s.rule.get('auc')):>7} {_fmt(s.baseline.get('auc')):>8}  {verdict}"
            )
    baseline = f"baseline {ev.baseline_uri}" if ev.baseline_uri else "no baseline (first blessed model)"
    if ev.blessed:
        console.print(f"Blessing: [green]BLESSED[/], every threshold met ({baseline})")
    else:
        console.print(f"Blessing: [yellow]NOT BLESSED[/] ({baseline}); failed thresholds:")
        for failure in ev.failures:
            console.print(f"  - {escape(_with_source(failure, cfg, profile))}")


@app.command("init")
def init(
    data: Path = typer.Option(..., "--data", help="Directory of CSV files (one header row each)."),
    label: str = typer.Option(
        ...,
        "--label",
        help="The label: COLUMN (0/1), 'COLUMN == VALUE', 'COLUMN OP NUMBER' or 'COLUMN OP NUMBER * COLUMN'.",
    ),
    out: Path = typer.Option(..., "--out", help="The profile to write (.yaml); the schema goes beside it."),
    name: str = typer.Option("", "--name", help="Pipeline and served model name (default: the data directory's)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing profile and schema."),
) -> None:
    """Write a profile (feature spec, label, relative floors) and a curated schema for your own CSV."""
    _quiet_environment()
    from pipeline.data_check import DataError
    from pipeline.init import init_profile
    from pipeline.run import EXIT_REFUSED

    try:
        with _quiet_tfx():
            result = init_profile(data, label, out, name=name, force=force)
    except (DataError, ValueError) as exc:
        _fail(str(exc), EXIT_REFUSED)
    console.print(f"Read {result.rows} rows from {data.resolve()}")
    if result.rows_without_label:
        console.print(f"{result.rows_without_label} rows have no label: runs leave them out")
    for d in result.decisions:
        colour = {"feature": "green", "label": "cyan"}.get(d.verdict, "yellow")
        console.print(f"  {escape(d.column):<28} [{colour}]{d.verdict:<8}[/] {escape(d.why)}")
    console.print(f"Wrote the profile {result.profile}")
    console.print(f"Wrote the schema  {result.schema}")
    console.print("Review before the first run:")
    for item in result.review:
        console.print(f"  - {escape(item)}")
    console.print(f"Then: tfxp run --profile {result.profile}")


@contextlib.contextmanager
def _quiet_tfx() -> Iterator[None]:
    """Beam's and TF's INFO lines are not for this terminal."""
    previous = logging.getLogger().level
    logging.getLogger().setLevel(logging.WARNING)
    try:
        yield
    finally:
        logging.getLogger().setLevel(previous)


@schema_app.command("infer")
def schema_infer(
    profile: str = ProfileOpt,
    data: Path | None = DataOpt,
    out: Path = typer.Option(Path("schema/proposed_schema.pbtxt"), "--out", help="Where to write the proposal."),
) -> None:
    """Infer a fresh schema from the data with SchemaGen (a proposal, not a patch: see `tfxp schema update`)."""
    _quiet_environment()
    cfg = _config(profile, data, None)
    from pipeline.data_check import DataError
    from pipeline.run import captured_logs, new_log_file
    from pipeline.schema import infer_schema

    log_file = new_log_file(cfg, "schema")
    try:
        with captured_logs(log_file, verbose=False):
            result = infer_schema(cfg, out.resolve())
    except DataError as exc:
        _fail(str(exc))
    console.print(f"Proposed schema written to {result.path}")
    if result.diff:
        console.print(f"Differences from {cfg.data.schema_file}:")
        console.print(result.diff, markup=False)
        console.print(
            "This is a fresh proposal, not a patch: it has none of the curated ranges, environments or "
            f"drift comparators (`tfxp schema diff {result.path}` lists every difference). For the smallest "
            "change that makes new data valid, run `tfxp schema update --data DIR`."
        )
    else:
        console.print(f"No differences from {cfg.data.schema_file}.")


# Compile targets: the name shown, and the default spec file.
_TARGETS = {"vertex": ("Vertex AI", "taxi-pipeline.json"), "kubeflow": ("Kubeflow Pipelines", "taxi-pipeline.yaml")}
TargetOpt = typer.Option("vertex", "--target", help="vertex (Vertex AI PipelineJob JSON) or kubeflow (KFP 2.x YAML).")


def _target(target: str) -> tuple[str, str]:
    if target not in _TARGETS:
        _fail(f"--target {target!r} is not supported: use --target {' or --target '.join(_TARGETS)}", 2)
    return _TARGETS[target]


@app.command("compile")
def compile_(
    target: str = TargetOpt,
    out: Path | None = typer.Option(
        None, "--out", help="Where to write the spec (default: taxi-pipeline.json, or .yaml for kubeflow)."
    ),
    profile: str | None = typer.Option(None, "--profile", help="Config profile (default: the target's name)."),
) -> None:
    """Compile the pipeline for Vertex AI or Kubeflow Pipelines 2.x (KubeflowV2DagRunner)."""
    _quiet_environment()
    shown, default_out = _target(target)
    cfg = _config(profile or target, None, None)
    import yaml

    from pipeline.kubeflow import compile_kubeflow
    from pipeline.vertex import compile_vertex, runtime_parameters

    compile_for = {"vertex": compile_vertex, "kubeflow": compile_kubeflow}[target]
    try:
        path = compile_for(cfg, (out or Path(default_out)).resolve())
    except ValueError as exc:
        _fail(str(exc), 2)
    params = runtime_parameters(yaml.safe_load(path.read_text()))
    console.print(f"Compiled {cfg.name} for {shown} to {path}")
    console.print(f"Runtime parameters: {', '.join(sorted(params)) or 'none'}")


@app.command()
def submit(
    target: str = TargetOpt,
    template: Path | None = typer.Option(
        None, "--template", help="The compiled spec (default: taxi-pipeline.json, or .yaml for kubeflow)."
    ),
    project: str = typer.Option("", "--project", help="vertex: Google Cloud project."),
    region: str = typer.Option("", "--region", help="vertex: Vertex AI region, e.g. us-central1."),
    service_account: str | None = typer.Option(
        None, "--service-account", help="vertex: service account the run uses."
    ),
    network: str | None = typer.Option(None, "--network", help="vertex: VPC network to peer with."),
    enable_caching: bool = typer.Option(True, "--enable-caching/--no-enable-caching", help="vertex: step caching."),
    label: list[str] = typer.Option([], "--label", help="vertex: key=value label; repeatable."),
    parameter: list[str] = typer.Option([], "--parameter", help="name=value runtime parameter; repeatable."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the request; send nothing, need no credentials."),
    api_endpoint: str | None = typer.Option(
        None, "--api-endpoint", help="vertex: override the Vertex AI API endpoint (private endpoints; local fakes)."
    ),
    host: str | None = typer.Option(
        None, "--host", envvar="KF_PIPELINES_ENDPOINT", help="kubeflow: the KFP API URL (default: kubeflow.host)."
    ),
    experiment: str | None = typer.Option(
        None, "--experiment", help="kubeflow: experiment (default: kubeflow.experiment)."
    ),
    namespace: str | None = typer.Option(
        None, "--namespace", help="kubeflow: multi-user namespace (default: kubeflow.namespace)."
    ),
    token_file: str | None = typer.Option(
        None, "--token-file", envvar="KF_PIPELINES_SA_TOKEN_PATH", help="kubeflow: service-account token file."
    ),
    cookie: str | None = typer.Option(
        None, "--cookie", envvar="KF_PIPELINES_COOKIE", help="kubeflow: session cookie, e.g. 'authservice_session=...'."
    ),
    profile: str | None = typer.Option(
        None, "--profile", help="kubeflow: profile with the kubeflow.* defaults (default: kubeflow)."
    ),
) -> None:
    """Submit a compiled pipeline to Vertex AI Pipelines or to Kubeflow Pipelines 2.x."""
    _quiet_environment()
    _, default_template = _target(target)
    template = (template or Path(default_template)).resolve()
    if target == "kubeflow":
        kubeflow = _config(profile or target, None, None, code=2).kubeflow
        _submit_kubeflow(
            template,
            host=host or kubeflow.host,
            experiment=experiment or kubeflow.experiment,
            namespace=namespace if namespace is not None else kubeflow.namespace,
            parameter=parameter,
            token_file=token_file,
            cookie=cookie,
            dry_run=dry_run,
        )
        return
    from pipeline import vertex

    try:
        request = vertex.build_request(
            template,
            project,
            region,
            parameters=vertex.parse_assignments(parameter, "--parameter"),
            labels=vertex.parse_assignments(label, "--label"),
            enable_caching=enable_caching,
            service_account=service_account,
            network=network,
        )
        if dry_run:
            console.print_json(json.dumps(vertex.dry_run(request)))
            return
        name = vertex.submit(request, api_endpoint=api_endpoint)
    except vertex.SubmitError as exc:
        _fail(str(exc))
    console.print(f"Submitted {name}")
    console.print(f"Console: https://console.cloud.google.com/vertex-ai/pipelines/runs?project={request.project}")


def _submit_kubeflow(template: Path, *, parameter: list[str], dry_run: bool, **options: Any) -> None:
    """Upload the spec to Kubeflow Pipelines and start a run (kfp.Client); exit 2 on bad input."""
    from pipeline import kubeflow
    from pipeline.vertex import SubmitError, parse_assignments

    try:
        request = kubeflow.build_request(template, parameters=parse_assignments(parameter, "--parameter"), **options)
        if dry_run:
            console.print_json(json.dumps(kubeflow.dry_run(request)))
            return
        run = kubeflow.submit(request)
    except SubmitError as exc:
        _fail(str(exc), 2)
    console.print(
        f"Submitted run {run.run_id} of {request.pipeline_name} (version {run.version_id}) "
        f"to experiment {request.experiment!r} at {request.host}"
    )
    console.print(f"Run: {run.url}")


@app.command()
def report(
    profile: str = ProfileOpt,
    output: Path | None = OutputOpt,
    out: Path | None = typer.Option(
        None, "--out", help="Write a self-contained HTML report of the run here (no network needed to view it)."
    ),
    run: str = typer.Option("latest", "--run", help="A run id from `tfxp runs list`, or 'latest'."),
) -> None:
    """Print the summary of a run recorded in MLMD, or write its HTML report with --out."""
    _quiet_environment()
    cfg = _config(profile, None, output)
    from review.report import ReportError, write_report
    from review.runs import RunNotFound

    if out is not None:
        try:
            path = write_report(cfg, out.resolve(), run)
        except (RunNotFound, ReportError) as exc:
            _fail(str(exc))
        console.print(f"Report: {path}")
        return
    from pipeline.run import summarize_run
    from review.runs import show_run

    try:
        info, _ = show_run(cfg.metadata_path, cfg.name, run)
    except RunNotFound as exc:
        _fail(str(exc))
    summary = summarize_run(cfg, info.run_id)
    assert summary is not None
    import time

    gen = info.component("CsvExampleGen") or info.component("BigQueryExampleGen")
    source = (gen.properties.get("input_base") or gen.properties.get("query")) if gen else None
    console.print(
        f"Run {info.run_id} ({info.status}): "
        f"started {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(info.started))},"
        f" {info.seconds:.1f}s; data {source or '-'}"
    )
    print_summary(summary, cfg, profile)


def _quiet_tensorflow_teardown(unraisable: Any) -> None:
    """Drop TensorFlow's own teardown noise, pass everything else to Python's hook.

    Executors run in this process; TensorFlow functions that live until the
    interpreter exits are deleted after TensorFlow's modules are gone, and each
    prints "Exception ignored in: AtomicFunction.__del__ ... TypeError" (a
    known TensorFlow 2.15 teardown race) below the run's summary.
    """
    if getattr(unraisable.object, "__qualname__", "") == "AtomicFunction.__del__":
        return
    sys.__unraisablehook__(unraisable)


def main() -> None:
    sys.unraisablehook = _quiet_tensorflow_teardown
    app(prog_name="tfxp")


def _register_subcommands() -> None:
    from monitoring.cli import monitor_command
    from review.cli import app as runs_app
    from serving.commands import register
    from validation.cli import register as register_data

    app.add_typer(runs_app, name="runs")
    app.command("monitor")(monitor_command)
    register(app)
    register_data(app, schema_app)


_register_subcommands()


if __name__ == "__main__":
    main()
