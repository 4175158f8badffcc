"""``tfxp report --out report.html``: one self-contained HTML page about a run.

Everything comes from MLMD and the run's own artifacts (statistics, anomalies,
TFMA results), so the page describes the run as it happened, whatever the
profile says now. Charts are matplotlib SVG inlined in the page: no script,
stylesheet, font or image is fetched from anywhere.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipeline.config import PipelineConfig
from review import charts
from review.runs import LineageNode, RunInfo, show_run


class ReportError(ValueError):
    """The report cannot be written; the message says why and what to do."""


@dataclasses.dataclass
class ReportData:
    cfg: PipelineConfig
    run: RunInfo
    lineage: LineageNode | None
    summary: Any  # pipeline.run.RunSummary
    statistics: dict[str, Any]  # split -> DatasetFeatureStatistics



def _rule_feature(configured: str, trainer: Any) -> str:
    """The configured rule feature, and the one chosen when it is ``auto``."""
    from pipeline.results import chosen_rule

    run = next((o.uri for o in trainer.outputs if o.key == "model_run"), None)
    chosen = chosen_rule(run) if run else None
    return f"{configured}: {chosen}" if chosen and chosen != configured else configured

def collect(cfg: PipelineConfig, run_id: str = "latest") -> ReportData:
    """Read one run back: RunNotFound (a LookupError) names the recent runs if ``run_id`` is unknown."""
    from pipeline.run import summarize_run

    run, lineage = show_run(cfg.metadata_path, cfg.name, run_id)
    summary = summarize_run(cfg, run.run_id)
    return ReportData(cfg, run, lineage, summary, _statistics(run))


def _statistics(run: RunInfo) -> dict[str, Any]:
    import tensorflow_data_validation as tfdv

    gen = run.component("StatisticsGen")
    if gen is None or not gen.outputs:
        return {}
    uri = gen.outputs[0].uri
    out = {}
    for split in ("train", "eval", "test"):
        path = Path(uri) / f"Split-{split}" / "FeatureStats.pb"
        if path.exists():
            out[split] = tfdv.load_stats_binary(str(path)).datasets[0]
    return out


def write_report(cfg: PipelineConfig, out: Path, run_id: str = "latest") -> Path:
    """Write the report for ``run_id``; ReportError if ``out`` cannot be written."""
    parent = out.parent
    if not parent.is_dir():
        raise ReportError(f"cannot write {out}: directory {parent} does not exist; create it or pick another --out")
    page = render(collect(cfg, run_id))
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write {out}: {exc.strerror}; pick another --out") from None
    return out


# --- rendering -------------------------------------------------------------

_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px auto;max-width:1000px;color:#222}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
h3{font-size:15px}table{border-collapse:collapse;margin:8px 0;font-size:13px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}th{background:#f4f4f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#17692c;font-weight:bold}.bad{color:#b00020;font-weight:bold}.muted{color:#777}
.badge{display:inline-block;padding:3px 10px;border-radius:4px;color:#fff;font-weight:bold}
.badge.ok{background:#17692c;color:#fff}.badge.bad{background:#b00020;color:#fff}
figure{margin:12px 0}svg{max-width:100%;height:auto}code{font-size:12px}
ul.tree{font-size:13px}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else f"{value}"


def _table(
    header: Iterable[str] | None, rows: Iterable[Iterable[Any]], numeric: frozenset[int] | set[int] = frozenset()
) -> str:
    head = "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>" if header else ""
    body = "".join(
        "<tr>"
        + "".join(f"<td class='num'>{cell}</td>" if i in numeric else f"<td>{cell}</td>" for i, cell in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table>{head}{body}</table>"


def _figure(fig: Any, caption: str) -> str:
    return f"<figure>{charts.svg(fig)}<figcaption class='muted'>{_e(caption)}</figcaption></figure>"


def render(data: ReportData) -> str:
    """The report page as a string."""
    run, summary = data.run, data.summary
    ev = summary.evaluation if summary else None
    blessed = ev.blessed if ev else None
    badge = (
        "<span class='badge ok'>BLESSED</span>"
        if blessed
        else "<span class='badge bad'>NOT BLESSED</span>"
        if blessed is False
        else "<span class='badge bad'>NO EVALUATION</span>"
    )
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(data.cfg.name)} run {_e(run.run_id)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(data.cfg.name)}: run {_e(run.run_id)} {badge}</h1>",
        f"<p>Status <b>{_e(run.status)}</b>, "
        f"started {_e(time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(run.started)))},"
        f" {run.seconds:.1f} s. {_push_sentence(summary)}</p>",
        _verdict_section(data),
        _slices_section(data),
        _data_section(data),
        _run_section(data),
        "</body></html>",
    ]
    return "\n".join(parts)


def _push_sentence(summary: Any) -> str:
    if summary is None:
        return ""
    if summary.pushed_path:
        return f"Pushed <code>{_e(summary.pushed_path)}</code>."
    note = (summary.push_note or "nothing pushed").rstrip(".")
    return _e(note[:1].upper() + note[1:] + ".")  # not str.capitalize: it lowercases the path


def _verdict_section(data: ReportData) -> str:
    ev = data.summary.evaluation if data.summary else None
    if ev is None:
        error = data.summary.error if data.summary else None
        return f"<h2>Verdict</h2><p class='bad'>No evaluation in this run{': ' + _e(error) if error else ''}.</p>"
    baseline = (
        f"against the baseline <code>{_e(ev.baseline_uri)}</code>"
        if ev.baseline_uri
        else "no baseline: the first blessed model"
    )
    if ev.blessed:
        reasons = f"<p class='ok'>Every threshold met ({baseline}).</p>"
    else:
        items = "".join(f"<li>{_e(f)}</li>" for f in ev.failures) or "<li>see the Evaluator's log</li>"
        reasons = f"<p class='bad'>Not blessed ({baseline}). Failed thresholds:</p><ul>{items}</ul>"
    m, rule, base = ev.overall.metrics, ev.overall.rule, ev.overall.baseline
    table = _table(
        ["metric (whole test split)", "candidate", "baseline", "rule", "floor"],
        [
            [
                _e(name),
                _num(m.get(name)),
                _num(base.get(name)),
                _num(rule.get(name)),
                _num(data.cfg.eval.floors.get(name)),
            ]
            for name in charts.COMPARED
        ],
        numeric={1, 2, 3, 4},
    )
    e = data.cfg.eval
    margins = [f"the rule's {k} by {v}" for k, v in sorted(e.min_lift_over_rule.items())]
    majority = ev.overall.majority_accuracy
    if majority is not None and "binary_accuracy" in e.min_lift_over_majority:
        margins.insert(
            0, f"the majority class's accuracy ({majority:.4f}) by {e.min_lift_over_majority['binary_accuracy']}"
        )
    relative = f" The candidate must beat {' and '.join(margins)}." if margins else ""
    return (
        f"<h2>Verdict</h2>{reasons}"
        f"<h3>Candidate, baseline and rule</h3><p>{ev.overall.example_count} test rows.{_e(relative)}</p>{table}"
        + _figure(charts.comparison_chart(ev, data.cfg.eval), "Overall metrics; dashed: the floors.")
    )


def _slices_section(data: ReportData) -> str:
    ev = data.summary.evaluation if data.summary else None
    if ev is None:
        return ""
    e = data.cfg.eval
    failed = ev.failed_slices()
    out = [
        "<h2>Slices</h2>",
        f"<p>A slice is judged with at least {e.slice_min_examples} test rows and {e.slice_min_class_examples} of each "
        f"class; judged slices must reach AUC {_num(e.slice_floors.get('auc'))} and lose at most "
        f"{_num(e.slice_max_drops.get('auc'))} against the baseline. "
        "Smaller slices are drawn hatched and never decide.</p>",
    ]
    for feature, slices in charts.slices_by_feature(ev, e).items():
        judged = [s for s in slices if s.judged(e.slice_min_examples, e.slice_min_class_examples)]
        out.append(f"<h3>{_e(feature)}</h3>")
        out.append(
            _figure(
                charts.slice_chart(feature, slices, e), f"AUC by {feature}: model bars, rule diamonds, baseline ticks."
            )
        )
        if judged:
            out.append(
                _table(
                    ["judged slice", "rows", "AUC", "rule AUC", "baseline AUC", "lift over rule", "verdict"],
                    [
                        [
                            _e(s.slice),
                            s.example_count,
                            _num(s.metrics.get("auc")),
                            _num(s.rule.get("auc")),
                            _num(s.baseline.get("auc")),
                            _num(s.metrics.get("auc_lift_over_rule")),
                            "<span class='bad'>FAIL</span>" if s.slice in failed else "<span class='ok'>pass</span>",
                        ]
                        for s in sorted(judged, key=lambda s: -s.example_count)
                    ],
                    numeric={1, 2, 3, 4, 5},
                )
            )
        else:
            out.append(f"<p class='muted'>No {_e(feature)} slice is big enough to judge.</p>")
    return "\n".join(out)


def _data_section(data: ReportData) -> str:
    gen = data.run.component("CsvExampleGen") or data.run.component("BigQueryExampleGen")
    props = gen.properties if gen else {}
    rows = [
        [_e(k), f"<code>{_e(props[k])}</code>"]
        for k in ("input_base", "query", "span", "input_fingerprint")
        if k in props
    ]
    out = ["<h2>Data</h2>", _table(None, rows) if rows else ""]
    if data.statistics:
        out.append(
            _table(
                ["split", "rows"], [[_e(split), stats.num_examples] for split, stats in data.statistics.items()], {1}
            )
        )
        out.append("<h3>Statistics (train split)</h3>")
        out.append(_stats_table(data.statistics.get("train") or next(iter(data.statistics.values()))))
    anomalies = data.summary.anomalies if data.summary else []
    if anomalies:
        out.append(
            "<h3 class='bad'>Anomalies</h3><ul>"
            + "".join(f"<li>{_e(a.source)}: {_e(a)}</li>" for a in anomalies)
            + "</ul>"
        )
    elif data.run.component("ExampleValidator"):
        out.append("<p class='ok'>No anomalies against the curated schema, and no drift beyond threshold.</p>")
    out.append(_drift_section(data))
    return "\n".join(out)


def _drift_section(data: ReportData) -> str:
    """This run's distance per feature, and every span's so far, from MLMD."""
    from validation import charts as drift_charts
    from validation.history import drift_history

    drift = data.summary.drift if data.summary else None
    if drift is None:
        return ""
    if drift.baseline_span is None:
        return (
            f"<h3>Drift</h3><p>Span {drift.span} is the first span: no earlier span's statistics to compare with.</p>"
        )
    rows = [
        [
            _e(f),
            _e(d["comparator"]),
            _num(d["distance"]),
            _num(d["threshold"]),
            "<span class='bad'>beyond threshold</span>" if d["distance"] > d["threshold"] else "ok",
        ]
        for f, d in sorted(drift.features.items())
    ]
    out = [
        f"<h3>Drift: span {drift.span} against span {drift.baseline_span} (train splits)</h3>",
        _table(["feature", "comparator", "distance", "threshold", "verdict"], rows, {2, 3}),
        _figure(drift_charts.latest_drift_chart(drift), "Each feature's distance; the tick is its threshold."),
    ]
    history = drift_history(data.cfg.metadata_path, data.cfg.name)
    over_time = drift_charts.drift_chart(history)
    if over_time is not None and sum(r.baseline_span is not None for r in history) > 1:
        out.append(_figure(over_time, "Every comparison so far, as a share of each feature's threshold."))
    return "\n".join(out)


def _stats_table(stats: Any) -> str:
    rows = []
    for feature in stats.features:
        name = feature.path.step[0] if feature.path.step else feature.name
        if feature.HasField("num_stats"):
            n = feature.num_stats
            common = n.common_stats
            summary = f"mean {n.mean:.4g}, std {n.std_dev:.4g}, min {n.min:.4g}, max {n.max:.4g}"
        else:
            s = feature.string_stats
            common = s.common_stats
            top = s.top_values[0].value if s.top_values else "-"
            summary = f"{s.unique} distinct, most common {top!r}"
        # An empty CSV cell is a feature with no value, not a missing feature:
        # count the rows without a value.
        total = common.num_non_missing + common.num_missing
        empty = 100 * (1 - common.tot_num_values / total) if total else 0.0
        rows.append([_e(name), f"{empty:.1f}%", _e(summary)])
    return _table(["feature", "empty", "summary"], sorted(rows), numeric={1})


def _run_section(data: ReportData) -> str:
    run = data.run
    components = [c for c in run.components if c.node_id != "?"]
    table = _table(
        ["component", "state", "seconds", "reused"],
        [
            [
                _e(c.node_id),
                _e(c.state),
                f"{c.seconds:.1f}",
                _e(f"execution {c.reused_execution} of run {c.reused_run}") if c.reused_execution else "",
            ]
            for c in components
        ],
        numeric={2},
    )
    trainer = run.component("Trainer")
    config_rows = []
    if trainer:
        custom = json.loads(trainer.properties.get("custom_config") or "{}")
        config_rows += [
            ["hyperparameters", f"<code>{_e(json.dumps(custom.get('hparams', {})))}</code>"],
            ["rule feature", _e(_rule_feature(custom.get("rule_feature", "-"), trainer))],
            ["model code fingerprint", f"<code>{_e(custom.get('code_fingerprint', '-'))}</code>"],
            ["train args", f"<code>{_e(trainer.properties.get('train_args', '-'))}</code>"],
        ]
    evaluator = run.component("Evaluator")
    if evaluator and evaluator.properties.get("eval_config"):
        config_rows.append(["gate", _thresholds(evaluator.properties["eval_config"])])
    out = [
        "<h2>Run</h2>",
        table,
        _figure(
            charts.component_chart([c.node_id for c in components], [c.seconds for c in components]),
            "Seconds per component (cached ones take ~0).",
        ),
        "<h3>Config, as recorded for this run</h3>",
        _table(None, config_rows) if config_rows else "<p class='muted'>No trainer in this run.</p>",
    ]
    if data.lineage is not None:
        out.append("<h3>Lineage</h3><ul class='tree'>" + _lineage(data.lineage) + "</ul>")
    return "\n".join(out)


def _thresholds(eval_config_json: str) -> str:
    """The recorded TFMA thresholds, one line each."""
    config = json.loads(eval_config_json)
    lines = []
    for spec in config.get("metrics_specs", []):
        for metric in spec.get("metrics", []):
            name = json.loads(metric.get("config") or "{}").get("metric")
            label = metric["class_name"] + (f"({name})" if name else "")
            for per_slice in metric.get("per_slice_thresholds", []):
                specs = per_slice.get("slicing_specs", [{}])
                where = ", ".join(" x ".join(spec.get("feature_keys", [])) or "overall" for spec in specs)
                t = per_slice.get("threshold", {})
                bits = []
                if "value_threshold" in t:
                    bits.append(f"&ge; {t['value_threshold']['lower_bound']}")
                if "change_threshold" in t:
                    bits.append(f"change &ge; {t['change_threshold']['absolute']}")
                lines.append(f"{_e(label)} {where}: {' and '.join(bits)}")
    return "<br>".join(lines) or "none"


def _lineage(node: LineageNode) -> str:
    details = ", ".join(f"{k}={v}" for k, v in node.details.items() if v is not None)
    children = "".join(_lineage(child) for child in node.inputs)
    return (
        f"<li><b>{_e(node.type)}</b> by {_e(node.producer)} <code>{_e(node.uri)}</code>"
        + (f" <span class='muted'>({_e(details)})</span>" if details else "")
        + (f"<ul>{children}</ul>" if children else "")
        + "</li>"
    )
