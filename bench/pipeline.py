"""``make bench``: our pipeline against the stock TFX taxi template, side by side in one session.

1. The reference: the installed wheel's taxi template, every step enabled
   (``bench/reference.py``), on the same CSV.
2. Our cold run: ``tfxp run --no-cache`` into a fresh output directory.
3. Run as A B B A (reference, ours, ours, reference); both pairs are reported.
4. Our warm re-run: the second cold run's directory again, cache on, nothing changed.
5. Scaling: our cold run on 4x and 10x the data (``bench/data.py``).
6. Per-component seconds for every run, from its MLMD.

Each run is a whole process, timed wall to wall, with the peak RSS of its
process tree. The JSON goes to ``--out``; the table with the ratios against
the goals is printed. ``--quick`` does the same on a small cut with few
training steps (what CI runs): its numbers say nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from bench import reference
from bench.data import scaled_csv
from bench.measure import Measured, component_seconds, overall_metrics, run_measured

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_CSV = PROJECT_ROOT / "data" / "data.csv"
SCALES = (4, 10)
QUICK_ROWS = 1000
QUICK_TRAIN_STEPS = 100
# Exit codes of a run that completed: pushed, or not blessed (pipeline/run.py).
COMPLETED = (0, 3)
# The goals of issue #14; each is met when value <= target (>= for quality).
GOALS = {
    "cold_over_reference": ("our cold run / the reference's, mean of both pairs", 0.5, "<="),
    "warm_over_reference": ("our warm re-run / the reference's cold run", 0.2, "<="),
    "time_10x_over_1x": ("our cold run on 10x the data / on 1x", 4.0, "<="),
    "peak_rss_10x_mib": ("peak RSS at 10x, MiB", 2560.0, "<="),
    "auc": ("our AUC on the test split", 0.95, ">="),
    "accuracy": ("our accuracy on the test split", 0.895, ">="),
}


def _environment() -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}


def _record(measured: Measured, metadata: Path, evaluation: Path | None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "wall_seconds": measured.wall_seconds,
        "peak_rss_mib": measured.peak_rss_mib,
        "exit_code": measured.returncode,
        "components": component_seconds(metadata),
        "log": measured.log,
    }
    if evaluation is not None:
        record.update(overall_metrics(evaluation))
    return record


def run_reference(template: Path, logs: Path, label: str) -> dict[str, Any]:
    reference.clean(template)
    measured = run_measured(reference.command(template), logs / f"{label}.log", cwd=template, env=_environment())
    if measured.returncode != 0:
        raise RuntimeError(f"the reference run {label} failed (exit {measured.returncode}); see {measured.log}")
    return _record(measured, reference.metadata_path(template), reference.evaluation_dir(template))


def run_ours(
    data_dir: Path, out_dir: Path, logs: Path, label: str, cold: bool = True, train_steps: int | None = None
) -> dict[str, Any]:
    from pipeline.config import load_config

    cmd = [str(Path(sys.executable).with_name("tfxp")), "run", "--data", str(data_dir), "--output", str(out_dir)]
    if cold:
        cmd.append("--no-cache")
    if train_steps is not None:
        cmd += ["--train-steps", str(train_steps)]
    measured = run_measured(cmd, logs / f"{label}.log", env=_environment())
    if measured.returncode not in COMPLETED:
        raise RuntimeError(f"our run {label} failed (exit {measured.returncode}); see {measured.log}")
    cfg = load_config("local", {"output_dir": str(out_dir)})
    evaluations = sorted(Path(cfg.pipeline_root, "Evaluator", "evaluation").glob("*"), key=lambda p: int(p.name))
    # A warm run evaluates nothing new: its metrics are the cached evaluation's.
    return _record(measured, Path(cfg.metadata_path), evaluations[-1] if evaluations else None)


def _ratio(a: float, b: float) -> float:
    return round(a / b, 4)


def goals(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal's value in this report, against its target (a goal without its runs is left out)."""
    ten = report["scaling"].get("10x", {})
    values = {
        "cold_over_reference": statistics.mean(p["ratio"] for p in report["pairs"]),
        "warm_over_reference": report["warm"]["over_reference"],
        "time_10x_over_1x": ten.get("time_over_1x"),
        "peak_rss_10x_mib": ten.get("peak_rss_mib"),
        "auc": min(r["auc"] for r in report["ours_cold"]),
        "accuracy": min(r["accuracy"] for r in report["ours_cold"]),
    }
    out = []
    for key, (what, target, op) in GOALS.items():
        if values[key] is None:
            continue
        value = round(values[key], 4)
        met = value <= target if op == "<=" else value >= target
        out.append({"goal": key, "what": what, "value": value, "target": target, "op": op, "met": met})
    return out


def bench(work: Path, logs: Path, quick: bool = False, scales: tuple[int, ...] = SCALES) -> dict[str, Any]:
    """Every run of the benchmark, in order, into ``work`` (each run's output in ``logs``); returns the report."""
    train_steps = QUICK_TRAIN_STEPS if quick else None
    data_dir = work / "data-1x"
    if quick:
        with open(DATA_CSV) as f:
            head = [next(f) for _ in range(QUICK_ROWS + 1)]
        data_dir.mkdir(parents=True)
        (data_dir / "data.csv").write_text("".join(head))
    else:
        data_dir.mkdir(parents=True)
        shutil.copyfile(DATA_CSV, data_dir / "data.csv")
    with open(data_dir / "data.csv") as f:
        rows = sum(1 for _ in f) - 1
    template = reference.prepare(work / "template", data_dir / "data.csv", train_steps)

    ref_a = run_reference(template, logs, "reference-1")
    ours_b = run_ours(data_dir, work / "ours-1", logs, "ours-1", train_steps=train_steps)
    ours_b2 = run_ours(data_dir, work / "ours-2", logs, "ours-2", train_steps=train_steps)
    ref_a2 = run_reference(template, logs, "reference-2")
    warm = run_ours(data_dir, work / "ours-2", logs, "ours-warm", cold=False, train_steps=train_steps)

    reference_mean = statistics.mean([ref_a["wall_seconds"], ref_a2["wall_seconds"]])
    ours_mean = statistics.mean([ours_b["wall_seconds"], ours_b2["wall_seconds"]])
    scaling: dict[str, Any] = {
        "1x": {"rows": rows, "wall_seconds": round(ours_mean, 2),
               "peak_rss_mib": max(ours_b["peak_rss_mib"], ours_b2["peak_rss_mib"]), "time_over_1x": 1.0},
    }
    for factor in scales:
        scaled = scaled_csv(data_dir / "data.csv", factor, work / f"data-{factor}x")
        run = run_ours(scaled.parent, work / f"ours-{factor}x", logs, f"ours-{factor}x", train_steps=train_steps)
        scaling[f"{factor}x"] = {
            "rows": rows * factor,
            **run,
            "time_over_1x": _ratio(run["wall_seconds"], ours_mean),
        }
    report: dict[str, Any] = {
        "benchmark": "pipeline_vs_tfx_taxi_template",
        "quick": quick,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "data": {"rows": rows, "train_steps": train_steps},
        "order": ["reference-1", "ours-1", "ours-2", "reference-2", "ours-warm", *(f"ours-{f}x" for f in scales)],
        "reference": [ref_a, ref_a2],
        "ours_cold": [ours_b, ours_b2],
        "pairs": [
            {"reference": ref_a["wall_seconds"], "ours": ours_b["wall_seconds"],
             "ratio": _ratio(ours_b["wall_seconds"], ref_a["wall_seconds"])},
            {"reference": ref_a2["wall_seconds"], "ours": ours_b2["wall_seconds"],
             "ratio": _ratio(ours_b2["wall_seconds"], ref_a2["wall_seconds"])},
        ],
        "warm": {**warm, "over_reference": _ratio(warm["wall_seconds"], reference_mean)},
        "scaling": scaling,
    }
    report["goals"] = goals(report)
    return report


def table(report: dict[str, Any]) -> str:
    lines = [f"{'run':<14}{'wall s':>9}{'peak MiB':>10}{'AUC':>8}{'acc':>8}"]
    named = [("reference-1", report["reference"][0]), ("ours-1", report["ours_cold"][0]),
             ("ours-2", report["ours_cold"][1]), ("reference-2", report["reference"][1]),
             ("ours-warm", report["warm"])]
    named += [(f"ours-{k}", v) for k, v in report["scaling"].items() if k != "1x"]
    for name, r in named:
        auc, acc = r.get("auc"), r.get("accuracy")
        lines.append(
            f"{name:<14}{r['wall_seconds']:>9.1f}{r['peak_rss_mib']:>10.0f}"
            f"{auc if auc is None else format(auc, '.4f'):>8}{acc if acc is None else format(acc, '.4f'):>8}"
        )
    lines.append("")
    components = sorted({c for r in [*report["reference"], *report["ours_cold"]] for c in r["components"]})
    lines.append(f"{'component (s)':<30}{'ref-1':>8}{'ours-1':>8}{'ours-2':>8}{'ref-2':>8}")
    for c in components:
        cells = [r["components"].get(c) for r in (report["reference"][0], *report["ours_cold"], report["reference"][1])]
        lines.append(f"{c:<30}" + "".join(f"{'-' if v is None else format(v, '.1f'):>8}" for v in cells))
    lines.append("")
    for p, pair in enumerate(report["pairs"], 1):
        lines.append(f"pair {p}: ours {pair['ours']:.1f} s / reference {pair['reference']:.1f} s = {pair['ratio']:.3f}")
    lines.append("")
    lines.append(f"{'goal':<56}{'value':>10}{'target':>10}  met")
    for g in report["goals"]:
        lines.append(f"{g['what']:<56}{g['value']:>10}{g['op'] + str(g['target']):>10}  {'yes' if g['met'] else 'NO'}")
    if report["quick"]:
        lines.append("(quick mode: a small cut and few steps; these numbers say nothing about speed)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="outputs/bench/pipeline.json")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS} rows and {QUICK_TRAIN_STEPS} steps")
    parser.add_argument("--keep", action="store_true", help="keep the runs' directories (printed)")
    parser.add_argument(
        "--scales",
        default=",".join(map(str, SCALES)),
        help="data multiples for the scaling runs, e.g. 4,10; '' for none",
    )
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=FutureWarning)
    out = Path(args.out)
    logs = out.parent / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix="tfxp-bench-"))
    started = time.perf_counter()
    try:
        report = bench(work, logs, quick=args.quick, scales=tuple(int(f) for f in args.scales.split(",") if f))
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report["bench_seconds"] = round(time.perf_counter() - started, 1)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    print(f"\nwritten to {out}, each run's output in {logs}/" + (f"; runs kept in {work}" if args.keep else ""))


if __name__ == "__main__":
    main()
