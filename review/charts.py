"""Matplotlib charts of an evaluation, shared by the HTML report and the notebooks.

Each function returns a Figure; ``svg(fig)`` inlines it. Text is drawn as
paths, so the SVG needs no font and no network.
"""

from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")  # no display; before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from pipeline.config import EvalConfig  # noqa: E402
from pipeline.results import Evaluation, SliceMetrics  # noqa: E402

MODEL, RULE, BASELINE, FLOOR = "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"
COMPARED = ("auc", "auc_precision_recall", "binary_accuracy", "precision", "recall")


def svg(fig: Figure) -> str:
    """The figure as an inline <svg> element; the figure is closed."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path"}):
        fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def slice_feature(name: str) -> str:
    """"payment_type=Cash, trip_start_hour=3" -> "payment_type x trip_start_hour"."""
    return " x ".join(part.split("=", 1)[0] for part in name.split(", "))


def slices_by_feature(ev: Evaluation, cfg: EvalConfig) -> dict[str, list[SliceMetrics]]:
    """Slices grouped by the feature(s) they cut on, in the config's order (``eval.slices``)."""
    groups: dict[str, list[SliceMetrics]] = {" x ".join(keys): [] for keys in cfg.slices}
    for s in ev.slices:
        groups.setdefault(slice_feature(s.slice), []).append(s)
    return groups


def both_classes(s: SliceMetrics) -> bool:
    """AUC is defined only where the slice holds both classes."""
    return 0 < s.positives < s.example_count


def _value(metrics: dict[str, float], name: str) -> float:
    value = metrics.get(name, math.nan)
    return math.nan if value is None else value


def slice_chart(
    feature: str, slices: list[SliceMetrics], cfg: EvalConfig, metric: str = "auc", limit: int = 24
) -> Figure:
    """The model's ``metric`` per slice value, with the rule, the baseline and the slice floor.

    The ``limit`` largest slices holding both classes are drawn first, largest
    first; judged slices (those the gate decides on) are solid, the others pale
    and hatched. One-class slices have no AUC: they are labelled, not drawn.
    """
    shown = sorted(slices, key=lambda s: (not both_classes(s), -s.example_count))[:limit]
    labels = [s.slice.replace(", ", "\n") if " x " in feature else s.slice.split("=", 1)[1] or "(empty)" for s in shown]
    labels = [
        f"{label} (n={s.example_count}{'' if both_classes(s) else ', one class'})"
        for label, s in zip(labels, shown, strict=True)
    ]
    height = max(2.5, 0.32 * len(shown) + 1.2)
    fig, ax = plt.subplots(figsize=(8, height))
    y = range(len(shown))
    judged = [s.judged(cfg.slice_min_examples, cfg.slice_min_class_examples) for s in shown]
    defined = [both_classes(s) or not metric.startswith("auc") for s in shown]
    bars = ax.barh(
        list(y),
        [_value(s.metrics, metric) if ok else math.nan for s, ok in zip(shown, defined, strict=True)],
        color=[MODEL if j else "#aec7e8" for j in judged],
        label=f"model {metric}",
    )
    for bar, j in zip(bars, judged, strict=True):
        if not j:
            bar.set_hatch("//")
    ax.scatter(
        [_value(s.rule, metric) if ok else math.nan for s, ok in zip(shown, defined, strict=True)],
        list(y), color=RULE, marker="D", s=22, zorder=3, label="rule",
    )
    if any(s.baseline for s in shown):
        ax.scatter(
            [_value(s.baseline, metric) if ok else math.nan for s, ok in zip(shown, defined, strict=True)],
            list(y), color=BASELINE, marker="|", s=160, zorder=3, label="baseline",
        )
    floor = cfg.slice_floors.get(metric)
    if floor is not None:
        ax.axvline(floor, color=FLOOR, linestyle="--", label=f"slice floor {floor}")
    ax.set_yticks(list(y), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.0)
    ax.set_xlabel(metric)
    more = f", {len(slices) - len(shown)} smaller not shown" if len(slices) > len(shown) else ""
    ax.set_title(f"{metric} by {feature} (hatched: too small to judge{more})", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    return fig


def comparison_chart(ev: Evaluation, cfg: EvalConfig) -> Figure:
    """Overall metrics on the test split: candidate, baseline and rule side by side, floors marked."""
    fig, ax = plt.subplots(figsize=(8, 3.2))
    width = 0.27
    xs = range(len(COMPARED))
    series = [
        ("candidate", ev.overall.metrics, MODEL),
        ("baseline", ev.overall.baseline, BASELINE),
        ("rule", ev.overall.rule, RULE),
    ]
    for i, (name, metrics, colour) in enumerate(series):
        values = [_value(metrics, m) for m in COMPARED]
        label = name if metrics else f"{name} (none)"
        ax.bar([x + (i - 1) * width for x in xs], values, width, color=colour, label=label)
    for x, metric in zip(xs, COMPARED, strict=True):
        if metric in cfg.floors:
            ax.hlines(cfg.floors[metric], x - 1.5 * width, x + 1.5 * width, colors=FLOOR, linestyles="--")
    ax.plot([], [], color=FLOOR, linestyle="--", label="floor")
    ax.set_xticks(list(xs), COMPARED, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_title("Whole test split: candidate, baseline and rule", fontsize=9)
    ax.legend(fontsize=7, loc="lower right", ncol=4)
    return fig


def component_chart(names: list[str], seconds: list[float]) -> Figure:
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(names) + 1))
    ax.barh(names, seconds, color=MODEL)
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.tick_params(labelsize=7)
    ax.set_title("Time per component", fontsize=9)
    return fig
