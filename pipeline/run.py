"""Run the pipeline locally with progress lines, a log file and a summary.

``run_local`` is what ``tfxp run`` calls: it checks the data, runs
``create_pipeline(cfg)`` with LocalDagRunner, and returns a :class:`RunSummary`
read back from MLMD. TFX's verbose absl logs go to a file unless ``verbose``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from pipeline.components.csv_example_gen import ROWS_WITHOUT_LABEL
from pipeline.components.drift import DRIFT_PROPERTY
from pipeline.components.gate import DRIFT, SCHEMA, Anomaly, read_anomalies
from pipeline.config import PipelineConfig
from pipeline.results import (
    Evaluation,
    NodeResult,
    chosen_rule,
    latest_run,
    load_evaluation,
    newest_run_id,
    only_json_in_dir,
    open_store,
    trained_hparams,
)
from validation.history import DriftRecord, drift_record

logger = logging.getLogger(__name__)



@dataclasses.dataclass
class ComponentProgress:
    node_id: str
    status: str  # running, done, cached, resolved (resolver nodes), failed
    seconds: float = 0.0


# `tfxp run`'s exit codes: a script can tell a refused model or refused input
# from a broken run. 2 is a usage error: a bad flag, or a bad config value.
EXIT_OK = 0  # succeeded: the candidate was pushed, or nothing changed
EXIT_FAILED = 1  # anything else went wrong
EXIT_NOT_BLESSED = 3  # the run completed, but the model was not blessed: nothing pushed
EXIT_REFUSED = 4  # the data was refused (the CSV checks, the data gate)
EXIT_MEANINGS = {
    EXIT_OK: "succeeded",
    EXIT_FAILED: "the run failed",
    EXIT_NOT_BLESSED: "completed, model not blessed",
    EXIT_REFUSED: "data refused",
}


@dataclasses.dataclass
class RunSummary:
    """What a run did; ``ok`` is False only when the run failed."""

    ok: bool
    seconds: float
    log_file: str | None
    components: list[ComponentProgress]
    error: str | None = None
    anomalies: list[Anomaly] = dataclasses.field(default_factory=list)
    span: int | None = None
    rows_without_label: int = 0  # left out by ExampleGen: no label to train or grade on
    rule_feature: str | None = None  # the feature of the rule graded beside the model
    hparams: dict | None = None  # what the Trainer trained with (the best trial's values, when tuning)
    trials: list[dict] = dataclasses.field(default_factory=list)  # the Tuner's completed trials, best first
    drift: DriftRecord | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)
    evaluation: Evaluation | None = None
    pushed_path: str | None = None
    push_note: str = ""
    nodes: dict[str, NodeResult] = dataclasses.field(default_factory=dict)
    tracking_note: str = ""  # the MLflow export's one line (tracking.mlflow_uri), if any

    refused: bool = False  # the data or config was refused, not a crash

    @property
    def exit_code(self) -> int:
        if not self.ok:
            return EXIT_REFUSED if self.refused else EXIT_FAILED
        if self.evaluation is not None and not self.evaluation.blessed:
            return EXIT_NOT_BLESSED
        return EXIT_OK

    @property
    def run_ids(self) -> list[str]:
        return [c.node_id for c in self.components if c.status == "done"]

    @property
    def cached_ids(self) -> list[str]:
        return [c.node_id for c in self.components if c.status == "cached"]


ProgressCallback = Callable[[ComponentProgress], None]


_STATUS = {"COMPLETE": "done", "CACHED": "cached", "FAILED": "failed", "NEW": "running", "RUNNING": "running"}


def component_progress(node: NodeResult) -> ComponentProgress:
    """A node's progress as MLMD records it; resolver nodes show as resolved once they ran."""
    status = _STATUS.get(node.state, node.state.lower())
    if node.execution_type.endswith(".Resolver") and status in ("done", "cached"):
        status = "resolved"
    return ComponentProgress(node.node_id, status, node.seconds)


class _MlmdProgress(threading.Thread):
    """Watches this run's executions in MLMD and reports each node as it starts and ends.

    Every component's execution is registered in MLMD when it starts and
    updated when it ends (TFX's own record of the run, the one the summary
    reads), so progress does not depend on the wording of TFX's logs.
    """

    POLL_SECONDS = 0.5

    def __init__(self, cfg: PipelineConfig, callback: ProgressCallback | None) -> None:
        super().__init__(daemon=True)
        self.cfg, self.callback = cfg, callback
        self.previous_run = self._newest_run_id()
        self.run_id: str | None = None  # this run's, once its first execution is registered
        self.components: dict[str, ComponentProgress] = {}
        self._finished = threading.Event()

    def run(self) -> None:
        while not self._finished.wait(self.POLL_SECONDS):
            self.poll()

    def finish(self, failed: bool) -> list[ComponentProgress]:
        """Stop watching, take the final states, and mark a node left running as failed if the run failed."""
        self._finished.set()
        self.join()
        self.poll()
        for progress in self.components.values():
            if failed and progress.status == "running":
                progress.status = "failed"
                self._notify(progress)
        return list(self.components.values())

    def _newest_run_id(self) -> str | None:
        if not os.path.exists(self.cfg.metadata_path):
            return None
        return newest_run_id(open_store(self.cfg.metadata_path), self.cfg.name)

    def poll(self) -> None:
        try:
            if self.run_id is None and (newest := self._newest_run_id()) != self.previous_run:
                self.run_id = newest
            nodes = latest_run(self.cfg.metadata_path, self.cfg.name, self.run_id) if self.run_id else {}
        except Exception:  # noqa: BLE001 - the database is busy or not yet created: try at the next tick
            logger.debug("progress poll of %s failed", self.cfg.metadata_path, exc_info=True)
            return
        for node in nodes.values():
            progress = component_progress(node)
            if self.components.get(node.node_id) != progress:
                self.components[node.node_id] = progress
                self._notify(progress)

    def _notify(self, progress: ComponentProgress) -> None:
        if self.callback:
            self.callback(dataclasses.replace(progress))


@contextlib.contextmanager
def run_temp_dir(output_dir: str) -> Iterator[None]:
    """Make the run's temporary files under ``<output_dir>/tmp``, and remove them after the run.

    Beam 2.74's DirectRunner first tries Prism; offline its download fails and
    each Beam component leaves an empty ``beam-temp*`` and two ``tmp*``
    directories in the system temp dir. TMPDIR covers Beam's worker processes.
    """
    path = Path(output_dir) / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    saved_tempdir, saved_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir = os.environ["TMPDIR"] = str(path)
    try:
        yield
    finally:
        tempfile.tempdir = saved_tempdir
        if saved_env is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = saved_env
        shutil.rmtree(path)


@contextlib.contextmanager
def captured_logs(log_file: Path, verbose: bool) -> Iterator[None]:
    """Send absl/TFX/Beam logs and stray prints to ``log_file`` (and the console if verbose)."""
    from absl import logging as absl_logging

    root = logging.getLogger()
    absl_logger = logging.getLogger("absl")
    saved = (root.level, absl_logger.level, absl_logging.get_verbosity())
    file_handler = logging.FileHandler(log_file)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handlers: list[logging.Handler] = [file_handler]
    if verbose:
        handlers.append(logging.StreamHandler(sys.stderr))
    # Libraries install console handlers of their own (logging.basicConfig,
    # TensorFlow's logger); they are set aside so only the log file gets them.
    swapped = [logging.getLogger(name) for name in ("", "tensorflow")]
    saved_handlers = [(lg, lg.handlers[:]) for lg in swapped]
    for lg in swapped:
        lg.handlers = handlers
    root.setLevel(logging.INFO)
    absl_logging.set_verbosity(absl_logging.INFO)
    with open(log_file, "a") as stream, _redirect(stream, enabled=not verbose):
        try:
            yield
        finally:
            for lg, hs in saved_handlers:
                lg.handlers = hs
            file_handler.close()
            root.setLevel(saved[0])
            absl_logger.setLevel(saved[1])
            absl_logging.set_verbosity(saved[2])


@contextlib.contextmanager
def _redirect(stream: TextIO, enabled: bool) -> Iterator[None]:
    # Keras and Beam print progress straight to stdout/stderr.
    if not enabled:
        yield
        return
    with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
        yield


def new_log_file(cfg: PipelineConfig, kind: str) -> Path:
    Path(cfg.log_dir).mkdir(parents=True, exist_ok=True)
    return Path(cfg.log_dir) / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}.log"


def judging_warnings(cfg: PipelineConfig, rows: int) -> list[str]:
    """Say up front when the test split is too small for any slice threshold to decide."""
    e = cfg.eval
    if not (e.slice_floors or e.slice_max_drops):
        return []
    test_rows = int(rows * cfg.data.test_fraction)
    if test_rows >= e.slice_min_examples:
        return []
    slices = ", ".join(" x ".join(keys) for keys in e.slices)
    return [
        f"eval.slice_min_examples={e.slice_min_examples} is more than the test split's ~{test_rows} rows "
        f"({rows} rows x {cfg.data.test_fraction:.2f}): no slice of {slices} can be judged, so only the "
        "overall thresholds decide; lower eval.slice_min_examples or add data"
    ]


def run_local(
    cfg: PipelineConfig,
    *,
    verbose: bool = False,
    on_progress: ProgressCallback | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> RunSummary:
    """Check the data, run the whole pipeline with LocalDagRunner, and summarise."""
    from tfx import v1 as tfx

    from pipeline.data_check import CSV_PATTERN, DataError, check_csv_dir, check_spec_schema, span_input
    from pipeline.pipeline import create_pipeline
    from tracking.export import track_run

    started, started_at = time.monotonic(), time.time()
    try:
        pattern = CSV_PATTERN
        if cfg.data.span_pattern:
            _, pattern = span_input(cfg.data.root, cfg.data.span_pattern, cfg.data.span)
        check_spec_schema(cfg.features, cfg.data.schema_file)
        report = check_csv_dir(
            cfg.data.root,
            partition_column=cfg.data.partition_feature,
            pattern=pattern,
            spec=cfg.features,
            missing_values=cfg.data.missing_values,
        )
    except DataError as exc:
        return RunSummary(False, time.monotonic() - started, None, [], error=str(exc), refused=True)
    warnings = judging_warnings(cfg, report.rows)
    for warning in warnings:
        logger.warning("%s", warning)
        if on_warning:
            on_warning(warning)

    log_file = new_log_file(cfg, "run")
    pipeline = create_pipeline(cfg)
    progress = _MlmdProgress(cfg, on_progress)
    error, refused = None, False
    with captured_logs(log_file, verbose), run_temp_dir(cfg.output_dir):
        progress.start()
        try:
            tfx.orchestration.LocalDagRunner().run(pipeline)
        except Exception as exc:  # noqa: BLE001 - reported to the user, run marked failed
            logger.exception("pipeline run failed")
            error = _user_message(exc)
            refused = _innermost(exc).__class__.__name__ in _REFUSALS
        summary = RunSummary(
            ok=error is None,
            seconds=time.monotonic() - started,
            log_file=str(log_file),
            components=progress.finish(failed=error is not None),
            error=error,
            warnings=warnings,
            refused=refused,
        )
        _fill_results(summary, cfg)
        # Last, once the push is done: a failed export only adds a line to the summary.
        summary.tracking_note = track_run(cfg, started_at)
    return summary


# Errors that refuse the input rather than break: the data gate, and the CSV
# check CsvExampleGen repeats (for runs through the TFX CLI).
_REFUSALS = {"AnomaliesFound", "DataError"}


def _innermost(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _user_message(exc: BaseException) -> str:
    """The innermost meaningful message of an exception chain."""
    seen = _innermost(exc)
    return f"{type(seen).__name__}: {seen}"


def run_findings(nodes: dict[str, NodeResult]) -> list[Anomaly]:
    """A run's schema anomalies (ExampleValidator) and drift findings (DriftValidator)."""
    from tfx.types import standard_artifacts

    found: list[Anomaly] = []
    for node_id, source in (("ExampleValidator", SCHEMA), ("DriftValidator", DRIFT)):
        validator = nodes.get(node_id)
        if validator and validator.outputs.get("anomalies"):
            artifact = standard_artifacts.ExampleAnomalies()
            artifact.uri = validator.output_uri("anomalies")
            artifact.split_names = validator.output_property("anomalies", "split_names") or ""
            found += read_anomalies(artifact, source)
    return found


def _fill_results(summary: RunSummary, cfg: PipelineConfig, run_id: str | None = None) -> None:
    if not os.path.exists(cfg.metadata_path):
        return
    nodes = latest_run(cfg.metadata_path, cfg.name, run_id)
    summary.nodes = nodes
    gen = nodes.get("CsvExampleGen")
    if gen and gen.outputs.get("examples"):
        summary.span = gen.output_property("examples", "span")
        summary.rows_without_label = int(gen.output_property("examples", ROWS_WITHOUT_LABEL) or 0)
    summary.anomalies = run_findings(nodes)
    drift = nodes.get("DriftValidator")
    if drift and drift.outputs.get("anomalies"):
        value = drift.output_property("anomalies", DRIFT_PROPERTY)
        summary.drift = drift_record(value) if value else None
    trainer = nodes.get("Trainer")
    if trainer and trainer.outputs.get("model_run"):
        summary.rule_feature = chosen_rule(trainer.output_uri("model_run"))
        summary.hparams = trained_hparams(trainer.output_uri("model_run"))
    tuner = nodes.get("Tuner")
    if tuner and tuner.outputs.get("tuner_results"):
        summary.trials = only_json_in_dir(tuner.output_uri("tuner_results"))
    evaluator = nodes.get("Evaluator")
    if evaluator and evaluator.outputs.get("evaluation"):
        summary.evaluation = load_evaluation(evaluator.output_uri("evaluation"), evaluator)
    pusher = nodes.get("Pusher")
    if pusher and pusher.outputs.get("pushed_model"):
        destination = pusher.output_property("pushed_model", "pushed_destination")
        if pusher.output_property("pushed_model", "pushed"):
            if pusher.state == "CACHED":
                summary.push_note = f"nothing new pushed: inputs unchanged, {destination} still serves"
            else:
                summary.pushed_path = destination
                summary.push_note = f"pushed {destination}"
        else:
            summary.push_note = "nothing pushed: the model was not blessed"
    elif not summary.ok:
        summary.push_note = f"nothing pushed: the run failed; {cfg.model_base_path} is unchanged"


def summarize_run(cfg: PipelineConfig, run_id: str | None = None) -> RunSummary | None:
    """The summary of a run recorded in MLMD (the newest by default), or None if there is none."""
    if not os.path.exists(cfg.metadata_path):
        return None
    nodes = latest_run(cfg.metadata_path, cfg.name, run_id)
    if not nodes:
        return None
    components = [component_progress(n) for n in nodes.values()]
    failed = [c.node_id for c in components if c.status == "failed"]
    summary = RunSummary(
        ok=not failed,
        seconds=0.0,
        log_file=None,
        components=components,
        error=f"{', '.join(failed)} failed (see the run's log under {cfg.log_dir})" if failed else None,
    )
    _fill_results(summary, cfg, run_id)
    return summary
