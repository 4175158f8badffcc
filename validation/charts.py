"""Drift charts and tables over spans, for the data notebook and the HTML report (matplotlib, offline)."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402

from validation.history import DriftRecord  # noqa: E402


def _compared(records: list[DriftRecord]) -> list[DriftRecord]:
    return [r for r in records if r.baseline_span is not None]


def drift_frame(records: list[DriftRecord]) -> Any:
    """Feature x comparison: each span's distance from the span before it, after a threshold column."""
    import pandas as pd

    compared = _compared(records)
    if not compared:
        return pd.DataFrame()
    table = pd.DataFrame(
        {
            f"span {r.span} vs {r.baseline_span}": {f: d["distance"] for f, d in r.features.items()}
            for r in compared
        }
    )
    thresholds = {f: d["threshold"] for r in compared for f, d in r.features.items()}
    table.insert(0, "threshold", pd.Series(thresholds))
    return table.sort_index()


def drift_chart(records: list[DriftRecord]) -> Any:
    """Each feature's distance over spans as a share of its threshold (1.0 = the gate's line), or None."""
    table = drift_frame(records)
    if table.empty:
        return None
    ratios = table.drop(columns="threshold").div(table["threshold"], axis=0)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    spans = list(ratios.columns)
    for feature, values in ratios.iterrows():
        line = ax.plot(spans, values.values, marker="o", label=feature)
        if (values > 1).any():
            ax.annotate(
                feature,
                (len(spans) - 1, values.values[-1]),
                textcoords="offset points",
                xytext=(6, 0),
                color=line[0].get_color(),
                fontsize=9,
            )
    ax.axhline(1.0, color="crimson", linestyle="--", linewidth=1)
    ax.text(0.01, 1.02, "threshold", color="crimson", fontsize=9, transform=ax.get_yaxis_transform())
    ax.set_ylabel("distance / threshold")
    ax.set_title("Drift between consecutive spans (L-inf or JSD, as the schema says)")
    ax.legend(fontsize=7, ncol=1, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def latest_drift_chart(record: DriftRecord) -> Any:
    """One comparison: every feature's distance beside its threshold, or None if nothing was compared."""
    if record.baseline_span is None or not record.features:
        return None
    names = sorted(record.features, reverse=True)
    distances = [record.features[n]["distance"] for n in names]
    thresholds = [record.features[n]["threshold"] for n in names]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    colours = ["crimson" if d > t else "steelblue" for d, t in zip(distances, thresholds, strict=True)]
    ax.barh(names, distances, color=colours, label="distance")
    ax.scatter(thresholds, names, marker="|", s=300, color="black", label="threshold", zorder=3)
    ax.set_xlabel("distance")
    ax.set_title(f"Span {record.span} against span {record.baseline_span}: red bars cross their threshold")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig
