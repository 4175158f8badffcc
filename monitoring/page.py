"""The HTML page of one monitored window: every distance against its threshold, self-contained."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from monitoring.monitor import MonitorResult, _iso
from validation.drift import Distance


def _chart(title: str, distances: list[Distance]) -> str:
    """Horizontal bars: each feature's distance as a share of its threshold (1.0 = the threshold)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    ordered = sorted(distances, key=lambda d: d.distance / d.threshold if d.threshold else 0)
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(ordered) + 1.2))
    ratios = [d.distance / d.threshold if d.threshold else 0 for d in ordered]
    ax.barh([f"{d.feature} ({d.comparator})" for d in ordered], ratios,
            color=["#c0392b" if d.exceeded else "#2e86c1" for d in ordered])
    ax.axvline(1.0, color="black", linestyle="--", label="threshold")
    ax.set_xlabel("distance / threshold")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return f"<img alt='{html.escape(title)}' src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'>"


def _table(distances: list[Distance], word: str) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(d.feature)}</td><td>{d.comparator}</td><td>{d.distance:.4f}</td>"
        f"<td>{d.threshold:.4f}</td>"
        f"<td class='{'bad' if d.exceeded else 'ok'}'>{word if d.exceeded else 'ok'}</td></tr>"
        for d in sorted(distances, key=lambda d: d.feature)
    )
    return (
        "<table><tr><th>feature</th><th>comparator</th><th>distance</th><th>threshold</th><th>verdict</th></tr>"
        f"{rows}</table>"
    )


def write_page(result: MonitorResult, out: Path) -> Path:
    parts = [
        f"<h1>Monitor: {html.escape(result.verdict.upper())}</h1>",
        f"<p>{result.rows} rows from <code>{html.escape(result.log_dir)}</code>"
        + (f", {_iso(result.start)} to {_iso(result.end)}" if result.start and result.end else "")
        + f"; versions {html.escape(str(result.versions))}.</p>",
    ]
    if result.alerts:
        parts.append("<ul>" + "".join(f"<li class='bad'>{html.escape(a)}</li>" for a in result.alerts) + "</ul>")
    parts += [f"<p class='note'>{html.escape(n)}</p>" for n in result.notes]
    for s in result.skew:
        parts.append(f"<h2>Skew: version {s.version} ({s.rows} rows) against its training data</h2>")
        if s.distances:
            parts += [_chart(f"skew, version {s.version}", s.distances), _table(s.distances, "SKEW")]
        else:
            parts.append(f"<p>{html.escape(s.note)}</p>")
    if result.drift is not None:
        parts += [
            f"<h2>Drift against the previous {result.previous_rows} rows</h2>",
            _chart("drift", result.drift),
            _table(result.drift, "DRIFT"),
        ]
    for p in result.predictions:
        parts.append(
            f"<h2>Predictions, version {p.version}</h2><p>mean {p.window_mean:.4f} against {p.reference_mean:.4f} "
            f"on the eval split ({p.reference_rows} rows); shift {p.mean_shift:+.4f} (bound {p.max_mean_shift}); "
            f"JSD {p.distance:.4f} (bound {p.max_distance}).</p>"
        )
    style = (
        "body{font-family:sans-serif;max-width:960px;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 8px}.bad{color:#c0392b;font-weight:bold}.ok{color:#1e8449}"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>tfxp monitor</title>"
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )
    return out
