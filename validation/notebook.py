"""Helpers for ``notebooks/data_validation.ipynb``: the latest run's data, found through MLMD.

Tables are pandas DataFrames, charts matplotlib figures: both render offline.
TFDV's Facets view (``tfdv.visualize_statistics``) loads its scripts from the
internet, so the notebook offers it last, as an extra.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from pipeline.components.gate import Anomaly
from pipeline.config import PipelineConfig, load_config
from pipeline.results import NodeResult, latest_run
from validation import charts
from validation.history import DriftRecord, drift_history


@dataclasses.dataclass
class DataReview:
    cfg: PipelineConfig
    nodes: dict[str, NodeResult]
    anomalies: list[Anomaly]
    drift: list[DriftRecord]
    run_id: str = "latest"

    @property
    def span(self) -> int | None:
        gen = self.nodes.get("CsvExampleGen")
        return gen.output_property("examples", "span") if gen and gen.outputs.get("examples") else None


def load(output_dir: str | None = None, profile: str = "local", run_id: str = "latest") -> DataReview | None:
    """A run's data review (the latest by default), or None (printing why) when there is no run."""
    output_dir = output_dir or os.environ.get("TFXP_OUTPUT_DIR")
    cfg = load_config(profile, {"output_dir": os.path.abspath(output_dir)} if output_dir else {})
    nodes = {}
    if os.path.exists(cfg.metadata_path):
        if run_id == "latest":
            from review.runs import list_runs

            newest = list_runs(cfg.metadata_path, cfg.name, 1)
            run_id = newest[0].run_id if newest else run_id
        nodes = latest_run(cfg.metadata_path, cfg.name, None if run_id == "latest" else run_id)
    if not nodes:
        print(f"Nothing to review: no run {run_id!r} of {cfg.name} recorded in {cfg.metadata_path}.")
        print("Run `make demo` (or `tfxp run`) first, then run this notebook again.")
        return None
    from pipeline.run import run_findings

    return DataReview(cfg, nodes, run_findings(nodes), drift_history(cfg.metadata_path, cfg.name), run_id)


def statistics(review: DataReview | None) -> Any:
    """The latest run's statistics (a DatasetFeatureStatisticsList per split), or None."""
    if review is None or "StatisticsGen" not in review.nodes:
        return None
    from tensorflow_metadata.proto.v0 import statistics_pb2
    from tfx.types import artifact_utils, standard_artifacts
    from tfx.utils import io_utils

    node = review.nodes["StatisticsGen"]
    artifact = standard_artifacts.ExampleStatistics()
    artifact.uri = node.output_uri("statistics")
    artifact.split_names = node.output_property("statistics", "split_names")
    out = {}
    for split in artifact_utils.decode_split_names(artifact.split_names):
        stats = statistics_pb2.DatasetFeatureStatisticsList()
        path = os.path.join(artifact_utils.get_split_uri([artifact], split), "FeatureStats.pb")
        stats.ParseFromString(io_utils.read_bytes_file(path))
        out[split] = stats
    return out


def statistics_table(review: DataReview | None, split: str = "train") -> Any:
    """One row per feature of ``split``: type, rows, missing share, and numbers or top value (a styled table)."""
    import pandas as pd

    stats = (statistics(review) or {}).get(split)
    if stats is None:
        return pd.DataFrame()
    rows = []
    dataset = stats.datasets[0]
    for f in dataset.features:
        kind = f.WhichOneof("stats")
        common = getattr(f, kind).common_stats
        row = {
            "feature": ".".join(f.path.step),
            "type": {0: "INT", 1: "FLOAT", 2: "STRING", 3: "BYTES", 4: "STRUCT"}.get(f.type, str(f.type)),
            "present": int(common.num_non_missing),
            "missing %": round(100 * common.num_missing / max(1, dataset.num_examples), 1),
        }
        if kind == "num_stats":
            s = f.num_stats
            row.update(
                {
                    "mean": round(s.mean, 3),
                    "std": round(s.std_dev, 3),
                    "min": s.min,
                    "max": s.max,
                    "zeros %": round(100 * s.num_zeros / max(1, common.num_non_missing), 1),
                }
            )
        else:
            s = f.string_stats
            row.update({"unique": s.unique, "top": s.top_values[0].value if s.top_values else ""})
        rows.append(row)
    table = pd.DataFrame(rows).set_index("feature")
    numbers = [c for c in table.columns if c not in ("type", "top")]
    return table.style.format("{:.4g}", subset=numbers, na_rep="-").format(na_rep="-", subset=["type", "top"])


def anomalies_table(review: DataReview | None) -> Any:
    import pandas as pd

    if review is None or not review.anomalies:
        return pd.DataFrame(columns=["source", "split", "feature", "kind", "description"])
    return pd.DataFrame([dataclasses.asdict(a) for a in review.anomalies])[
        ["source", "split", "feature", "kind", "description"]
    ]


def drift_table(review: DataReview | None) -> Any:
    """Feature x span: each span's distance from the span before it."""
    return charts.drift_frame(review.drift if review else [])


def show_drift(review: DataReview | None) -> None:
    """Both drift charts, drawn inline."""
    from IPython.display import display

    if review is None:
        return
    compared = [r for r in review.drift if r.baseline_span is not None]
    if not compared:
        print("No drift to plot: the runs so far compared no span with an earlier one.")
        return
    # This run's own comparison, if it made one; else the newest.
    own = next((r for r in compared if r.span == review.span), compared[-1])
    for fig in (charts.drift_chart(review.drift), charts.latest_drift_chart(own)):
        if fig is not None:
            display(fig)
