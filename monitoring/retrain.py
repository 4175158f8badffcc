"""``tfxp monitor --retrain``: when a window exceeds a threshold, retrain through the same gates.

The run ingests the newest span that holds labelled data, or, with
``--feedback FILE``, a new span built from the judged window joined with the
ground truth that arrived later (request id -> the label's columns). Locally
it is ``tfxp run`` (``run_local``); with a cloud profile the pipeline is
compiled and submitted to Vertex AI (``--dry-run`` prints the request). The
decision and its reasons are appended to ``<output>/monitoring/decisions.jsonl``
with the run it started.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from monitoring.monitor import MonitorResult, monitoring_dir
from monitoring.window import LoggedRow
from pipeline.config import PipelineConfig
from pipeline.data_check import DataError, find_spans

FEEDBACK_KEY = "request_id"


@dataclasses.dataclass(frozen=True)
class Feedback:
    span: int
    path: Path
    rows: int  # written: logged rows with their ground truth
    without_label: int  # logged rows no feedback named
    unknown_ids: int  # feedback rows naming no logged request of the window
    duplicates: int  # feedback rows repeating an id (the first is kept)


@dataclasses.dataclass(frozen=True)
class Decision:
    triggered: bool
    reasons: list[str]
    span: int | None = None
    feedback: Feedback | None = None
    run_exit_code: int | None = None
    run_id: str | None = None
    submitted: dict[str, Any] | None = None  # the Vertex request (cloud profiles)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if self.feedback is not None:
            out["feedback"]["path"] = str(self.feedback.path)
        return out


def build_feedback_span(cfg: PipelineConfig, rows: list[LoggedRow], feedback: Path) -> Feedback:
    """Write the window's rows joined with ``feedback`` as the next span under ``data.root``.

    The feedback CSV has ``request_id`` and every column the training data
    needs that requests do not carry: the label's own columns, and e.g. the
    split key. Logged rows it does not name have no label and are left out.
    """
    from tensorflow.core.example import example_pb2

    if not cfg.data.span_pattern:
        raise DataError("--feedback builds a new span: the profile needs data.span_pattern (e.g. span-{SPAN}/*.csv)")
    if not feedback.is_file():
        raise DataError(f"feedback file {feedback} does not exist: give a CSV of request_id and the label's columns")
    with open(feedback, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        needed = [FEEDBACK_KEY, *cfg.features.label_only_columns]
        absent = [c for c in needed if c not in header]
        if absent:
            raise DataError(
                f"{feedback}: column(s) {', '.join(absent)} missing from the header; a feedback file has "
                f"{FEEDBACK_KEY} and the label's columns ({', '.join(cfg.features.label_only_columns)})"
            )
        truth: dict[str, dict[str, str]] = {}
        duplicates = 0
        for record in reader:
            rid = (record.get(FEEDBACK_KEY) or "").strip()
            if rid in truth:
                duplicates += 1
                continue
            truth[rid] = {k: v for k, v in record.items() if k != FEEDBACK_KEY}
    spec = cfg.features
    columns = [f.name for f in spec.features] + [
        c for c in header if c != FEEDBACK_KEY and c not in {f.name for f in spec.features}
    ]
    spans = find_spans(cfg.data.root, cfg.data.span_pattern)
    number = max(spans, default=0) + 1
    relative = cfg.data.span_pattern.replace("{SPAN}", str(number))
    path = Path(cfg.data.root) / relative.replace("*", "feedback")
    if path.parent.exists() and any(path.parent.iterdir()):
        raise DataError(f"span {number}'s directory {path.parent} exists and is not empty: nothing overwritten")
    window_ids = {r.request_id for r in rows}
    written = without = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            known = truth.get(row.request_id)
            if known is None:
                without += 1
                continue
            feature = example_pb2.Example.FromString(row.example).features.feature
            values = []
            for column in columns:
                if column in known:
                    values.append(known[column])
                    continue
                kind = feature[column].WhichOneof("kind") if column in feature else None
                cell = getattr(feature[column], kind).value[:1] if kind else []
                value = cell[0] if cell else ""
                values.append(value.decode() if isinstance(value, bytes) else ("" if value != value else value))
            writer.writerow(values)
            written += 1
    unknown = len(set(truth) - window_ids)
    return Feedback(number, path, written, without, unknown, duplicates)


def decide_and_retrain(
    cfg: PipelineConfig,
    result: MonitorResult,
    window_rows: list[LoggedRow],
    feedback: Path | None = None,
    dry_run: bool = False,
    on_progress: Any = None,
) -> tuple[Decision, Any]:
    """Retrain when the window exceeded a threshold; record the decision either way.

    Returns the decision and the local run's summary (None when no local run started).
    """
    if result.verdict != "alert":
        decision = Decision(False, [f"verdict {result.verdict}: no threshold exceeded, no retraining"])
        _record(cfg, decision)
        return decision, None
    reasons = list(result.alerts)
    built = build_feedback_span(cfg, window_rows, feedback) if feedback is not None else None
    span = (
        built.span
        if built
        else (max(find_spans(cfg.data.root, cfg.data.span_pattern), default=None) if cfg.data.span_pattern else None)
    )
    run_cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"span": span})}) if span is not None else cfg
    summary = None
    if not cfg.is_local:
        decision = Decision(True, reasons, span, built, submitted=_submit_vertex(run_cfg, dry_run))
    elif dry_run:
        decision = Decision(True, reasons + ["--dry-run: no run started"], span, built)
    else:
        from pipeline.run import run_local

        summary = run_local(run_cfg, on_progress=on_progress)
        decision = Decision(True, reasons, span, built, summary.exit_code, _run_id(run_cfg))
    _record(cfg, decision)
    return decision, summary


def _run_id(cfg: PipelineConfig) -> str | None:
    from review.runs import list_runs

    runs = list_runs(cfg.metadata_path, cfg.name, limit=1)
    return runs[0].run_id if runs else None


def _submit_vertex(cfg: PipelineConfig, dry_run: bool) -> dict[str, Any]:
    import tempfile

    from pipeline import vertex

    with tempfile.TemporaryDirectory(prefix="tfxp-retrain-") as tmp:
        template = vertex.compile_vertex(cfg, Path(tmp) / "pipeline.json")
        request = vertex.build_request(template, cfg.vertex.project, cfg.vertex.region)
        if dry_run:
            return vertex.dry_run(request)
        return {"name": vertex.submit(request)}


def _record(cfg: PipelineConfig, decision: Decision) -> Path:
    path = monitoring_dir(cfg) / "decisions.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps({"decided_at": time.time(), **decision.to_dict()}) + "\n")
    return path
