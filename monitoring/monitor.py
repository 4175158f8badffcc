"""``tfxp monitor``: served traffic against what the model was trained on, and against itself over time.

For a window of the request log:
- **skew**: each served version's rows against that version's training
  data (found through MLMD), with the schema's ``skew_comparator``s, over the
  features of its ``SERVING`` environment;
- **drift**: the window against the window before it, with the schema's
  ``drift_comparator``s (distances: ``monitoring/distance.py``);
- **predictions**: the served scores against the same model's scores on its
  own eval split: the mean's shift and the Jensen-Shannon divergence of the
  two histograms, each with a bound in ``monitoring:``.
Every distance is reported, below threshold too, and appended to the history.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monitoring.distance import distances, drop_missing_encodings, values_by_feature
from monitoring.lineage import Trained, trained_version
from monitoring.window import LoggedRow, read_request_log, select_windows
from pipeline.config import PipelineConfig
from pipeline.data_check import DataError
from validation.drift import Distance, read_schema

# Exit codes of `tfxp monitor` (0: every distance within its bound).
EXIT_ALERT = 5  # a threshold was exceeded
EXIT_NO_VERDICT = 6  # the window is smaller than monitoring.min_window_rows
EXIT_NO_DATA = 4  # no request log, or an empty window
EVAL_ROWS = 2000  # eval-split rows the served model scores for the reference distribution
REFERENCE_ROWS = 20000  # train-split rows read as the skew reference
BINS = 10


@dataclasses.dataclass(frozen=True)
class VersionSkew:
    version: int
    rows: int
    distances: list[Distance]  # empty with a note when not computed
    note: str = ""


@dataclasses.dataclass(frozen=True)
class PredictionShift:
    version: int
    window_mean: float
    reference_mean: float
    distance: float  # Jensen-Shannon divergence of the score histograms, in bits
    max_mean_shift: float
    max_distance: float
    reference_rows: int

    @property
    def mean_shift(self) -> float:
        return self.window_mean - self.reference_mean

    @property
    def exceeded(self) -> list[str]:
        out = []
        if abs(self.mean_shift) > self.max_mean_shift:
            out.append(f"mean score {self.window_mean:.4f} vs {self.reference_mean:.4f} on the eval split "
                       f"(shift {self.mean_shift:+.4f}; monitoring.max_prediction_mean_shift={self.max_mean_shift})")
        if self.distance > self.max_distance:
            out.append(f"score distribution JSD {self.distance:.4f} from the eval split's "
                       f"(monitoring.max_prediction_distance={self.max_distance})")
        return out


@dataclasses.dataclass(frozen=True)
class MonitorResult:
    log_dir: str
    rows: int
    previous_rows: int
    skipped: int
    start: float | None
    end: float | None
    versions: dict[int, int]
    skew: list[VersionSkew]
    drift: list[Distance] | None  # None: no previous window large enough
    predictions: list[PredictionShift]
    notes: list[str]
    min_rows: int
    window: list[LoggedRow] = dataclasses.field(default_factory=list, repr=False)  # the judged rows (not serialized)

    @property
    def alerts(self) -> list[str]:
        out = [f"skew v{s.version}: {d.feature} {d.comparator} {d.distance:.4f} > {d.threshold}"
               for s in self.skew for d in s.distances if d.exceeded]
        out += [
            f"drift: {d.feature} {d.comparator} {d.distance:.4f} > {d.threshold}"
            for d in self.drift or []
            if d.exceeded
        ]
        out += [f"predictions v{p.version}: {reason}" for p in self.predictions for reason in p.exceeded]
        return out

    @property
    def verdict(self) -> str:
        if self.rows < self.min_rows:
            return "no verdict"
        return "alert" if self.alerts else "ok"

    @property
    def exit_code(self) -> int:
        return {"ok": 0, "alert": EXIT_ALERT, "no verdict": EXIT_NO_VERDICT}[self.verdict]

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked_at": time.time(),
            "log_dir": self.log_dir,
            "window": {
                "rows": self.rows,
                "start": self.start,
                "end": self.end,
                "versions": self.versions,
                "previous_rows": self.previous_rows,
                "skipped_records": self.skipped,
            },
            "verdict": self.verdict,
            "alerts": self.alerts,
            "skew": [
                {"version": s.version, "rows": s.rows, "note": s.note, "features": [d.to_dict() for d in s.distances]}
                for s in self.skew
            ],
            "drift": None if self.drift is None else [d.to_dict() for d in self.drift],
            "predictions": [
                {**dataclasses.asdict(p), "mean_shift": p.mean_shift, "exceeded": p.exceeded} for p in self.predictions
            ],
            "notes": self.notes,
        }


def _split_records(trained: Trained, split: str, limit: int) -> list[bytes]:
    """Up to ``limit`` serialized examples of one split of the version's training Examples."""
    import tensorflow as tf

    files = sorted(glob.glob(os.path.join(trained.examples_uri, f"Split-{split}", "*")))
    return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP").take(limit)]


def _reference_values(trained: Trained, names: Sequence[str]) -> dict[str, list[Any]]:
    """The training data's values (its train split, up to REFERENCE_ROWS rows)."""
    return values_by_feature(_split_records(trained, "train", REFERENCE_ROWS), names)


def _eval_scores(trained: Trained) -> np.ndarray:
    """The served model's scores on (up to EVAL_ROWS of) its own eval split."""
    import tensorflow as tf

    records = _split_records(trained, "eval", EVAL_ROWS)
    model = tf.saved_model.load(os.path.join(trained.model_uri, "Format-Serving"))
    scores = model.signatures["serving_tf_example"](examples=tf.constant(records))["probabilities"]
    return np.asarray(scores).reshape(-1)


def js_divergence(a: np.ndarray, b: np.ndarray) -> float:
    """Jensen-Shannon divergence (bits) of two score samples' histograms on [0, 1]."""
    from scipy.spatial.distance import jensenshannon

    p, _ = np.histogram(np.clip(a, 0, 1), bins=BINS, range=(0, 1))
    q, _ = np.histogram(np.clip(b, 0, 1), bins=BINS, range=(0, 1))
    return float(jensenshannon(p + 1e-12, q + 1e-12, base=2) ** 2)


def monitor(
    cfg: PipelineConfig,
    log_dir: Path,
    *,
    last_rows: int | None = None,
    duration: float | None = None,
    since: float | None = None,
) -> MonitorResult:
    """Judge a window of the request log; DataError when there is nothing to judge."""
    m = cfg.monitoring
    if last_rows is None and duration is None and since is None:
        last_rows = m.window_rows
    read = read_request_log(log_dir)
    windows = select_windows(read.rows, last_rows=last_rows, duration=duration, since=since)
    current = windows.current
    if not current:
        raise DataError(
            f"the window holds no requests ({len(read.rows)} logged in {log_dir}, the newest at "
            f"{_iso(read.rows[-1].timestamp) if read.rows else '-'}): widen --window or --since, or send traffic"
        )
    notes = [f"{read.skipped} truncated or malformed log records skipped"] if read.skipped else []
    versions = dict(sorted(Counter(r.version for r in current).items()))
    base: dict[str, Any] = dict(
        rows=len(current),
        previous_rows=len(windows.previous),
        skipped=read.skipped,
        start=current[0].timestamp,
        end=current[-1].timestamp,
        versions=versions,
        min_rows=m.min_window_rows,
    )
    if len(current) < m.min_window_rows:
        notes.append(
            f"{len(current)} rows in the window, fewer than monitoring.min_window_rows={m.min_window_rows}: no verdict"
        )
        return MonitorResult(str(log_dir), skew=[], drift=None, predictions=[], notes=notes, window=current, **base)
    schema = read_schema(cfg.data.schema_file)
    names = [f.name for f in schema.feature if "SERVING" not in f.not_in_environment]
    skew: list[VersionSkew] = []
    predictions: list[PredictionShift] = []
    reference: dict[str, list[Any]] = {}
    for version, count in versions.items():
        rows = [r for r in current if r.version == version]
        if count < m.min_window_rows:
            skew.append(VersionSkew(version, count, [], f"{count} rows: fewer than monitoring.min_window_rows"))
            continue
        trained = trained_version(cfg.metadata_path, version)
        if trained is None:
            skew.append(
                VersionSkew(
                    version,
                    count,
                    [],
                    f"version {version} is not in ML Metadata at {cfg.metadata_path} "
                    "(pushed by another pipeline or output directory): no skew computed",
                )
            )
            continue
        reference = _reference_values(trained, names)
        served = drop_missing_encodings(values_by_feature((r.example for r in rows), names), cfg.features, reference)
        skew.append(VersionSkew(version, count, distances(reference, served, schema, "skew")))
        predictions.append(_prediction_shift(version, rows, trained, m))
    drift = None
    if len(windows.previous) >= m.min_window_rows:

        def window_values(window: list[LoggedRow]) -> dict[str, list[Any]]:
            return drop_missing_encodings(
                values_by_feature((r.example for r in window), names), cfg.features, reference
            )

        drift = distances(window_values(windows.previous), window_values(current), schema, "drift")
    else:
        notes.append(
            f"the previous window has {len(windows.previous)} rows, "
            "fewer than monitoring.min_window_rows: no drift computed"
        )
    return MonitorResult(
        str(log_dir), skew=skew, drift=drift, predictions=predictions, notes=notes, window=current, **base
    )


def _prediction_shift(version: int, rows: list[LoggedRow], trained: Trained, m: Any) -> PredictionShift:
    served = np.array([r.prediction for r in rows if r.prediction is not None])
    reference = _eval_scores(trained)
    return PredictionShift(
        version,
        float(served.mean()) if served.size else float("nan"),
        float(reference.mean()),
        js_divergence(served, reference) if served.size else float("nan"),
        m.max_prediction_mean_shift,
        m.max_prediction_distance,
        int(reference.size),
    )


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def monitoring_dir(cfg: PipelineConfig) -> Path:
    """Where the history and the decisions are kept: a local directory even for a cloud profile."""
    from pipeline.config import project_root

    return Path(cfg.output_dir) / "monitoring" if cfg.is_local else project_root() / "outputs" / "monitoring" / cfg.name


def history_path(cfg: PipelineConfig) -> Path:
    return monitoring_dir(cfg) / "history.jsonl"


def append_history(cfg: PipelineConfig, result: MonitorResult) -> Path:
    """Keep every window's distances (one JSON line each), for plotting the history."""
    path = history_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(result.to_dict()) + "\n")
    return path


def read_history(cfg: PipelineConfig) -> list[dict[str, Any]]:
    path = history_path(cfg)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def prometheus_text(result: MonitorResult, model_name: str) -> str:
    """The latest window as node-exporter textfile metrics."""

    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace('"', '\\"')

    lines = [
        "# HELP tfxp_monitor_alert 1 when the latest window exceeded a threshold.",
        "# TYPE tfxp_monitor_alert gauge",
        f'tfxp_monitor_alert{{model="{esc(model_name)}"}} {int(result.verdict == "alert")}',
        "# HELP tfxp_monitor_window_rows Rows in the latest window.",
        "# TYPE tfxp_monitor_window_rows gauge",
        f'tfxp_monitor_window_rows{{model="{esc(model_name)}"}} {result.rows}',
        "# HELP tfxp_monitor_skew_distance Training/serving skew per feature (schema skew comparator).",
        "# TYPE tfxp_monitor_skew_distance gauge",
    ]
    for s in result.skew:
        for d in s.distances:
            lines.append(
                f'tfxp_monitor_skew_distance{{model="{esc(model_name)}",version="{s.version}",'
                f'feature="{esc(d.feature)}",comparator="{d.comparator}"}} {d.distance:.6g}'
            )
    lines += [
        "# HELP tfxp_monitor_drift_distance Drift against the previous window per feature.",
        "# TYPE tfxp_monitor_drift_distance gauge",
    ]
    for d in result.drift or []:
        lines.append(
            f'tfxp_monitor_drift_distance{{model="{esc(model_name)}",feature="{esc(d.feature)}",'
            f'comparator="{d.comparator}"}} {d.distance:.6g}'
        )
    lines += [
        "# HELP tfxp_monitor_prediction_mean_shift Mean served score minus the eval split's.",
        "# TYPE tfxp_monitor_prediction_mean_shift gauge",
    ]
    for p in result.predictions:
        lines.append(
            f'tfxp_monitor_prediction_mean_shift{{model="{esc(model_name)}",version="{p.version}"}} {p.mean_shift:.6g}'
        )
    return "\n".join(lines) + "\n"


def write_metrics_file(path: Path, text: str) -> None:
    """Atomically, as node-exporter's textfile collector requires (write, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
