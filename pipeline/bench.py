"""``make bench``: measure the local pipeline's Beam DirectRunner modes side by side.

Runs the whole pipeline without cache once per mode, on the same data in the
same session, and writes wall times, per-component times and peak RSS to JSON.
The faster mode is the ``local`` profile's default; the other stays a config
switch (``beam.direct_running_mode``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

from pipeline.config import load_config
from pipeline.run import run_local

MODES = {
    "in_memory": {"beam.direct_running_mode": "in_memory", "beam.direct_num_workers": 1},
    "multi_processing": {"beam.direct_running_mode": "multi_processing", "beam.direct_num_workers": 0},
}


def bench_beam_modes(data_root: str | None = None, train_steps: int | None = None) -> dict:
    """Run the pipeline once per DirectRunner mode; return the measurements."""
    results = {}
    for mode, overrides in MODES.items():
        with tempfile.TemporaryDirectory(prefix=f"bench-{mode}-") as out:
            extra = {"output_dir": out, "enable_cache": False, **overrides}
            if data_root:
                extra["data.root"] = data_root
            if train_steps:
                extra["training.train_steps"] = train_steps
            cfg = load_config("local", extra)
            started = time.perf_counter()
            summary = run_local(cfg)
            wall = time.perf_counter() - started
            if not summary.ok:
                raise RuntimeError(f"benchmark run in mode {mode} failed: {summary.error}")
            results[mode] = {
                "wall_seconds": round(wall, 2),
                "components": {c.node_id: round(c.seconds, 2) for c in summary.components},
                "auc": summary.evaluation.overall.metrics.get("auc") if summary.evaluation else None,
            }
    fastest = min(results, key=lambda m: results[m]["wall_seconds"])
    return {
        "benchmark": "beam_direct_running_mode",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "data_root": data_root or load_config("local").data.root,
        "results": results,
        "fastest": fastest,
        "ratio_multi_processing_over_in_memory": round(
            results["multi_processing"]["wall_seconds"] / results["in_memory"]["wall_seconds"], 3
        ),
        # ru_maxrss is in KiB on Linux; children are the multi-processing workers.
        "peak_rss_mib": {
            "self": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "children": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="outputs/bench/pipeline.json")
    parser.add_argument("--data", default=None, help="CSV directory (default: the profile's)")
    parser.add_argument("--train-steps", type=int, default=None)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    report = bench_beam_modes(args.data, args.train_steps)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    for mode, r in report["results"].items():
        print(f"{mode:<18} {r['wall_seconds']:8.1f} s   AUC {r['auc']:.4f}")
    print(f"fastest: {report['fastest']}; multi_processing / in_memory = "
          f"{report['ratio_multi_processing_over_in_memory']}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
