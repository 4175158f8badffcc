"""``make demo-loop``: the whole production loop on the demo data, in one command.

1. Two spans of taxi rides (the demo data split at random in halves, under
   ``outputs/loop/data``: see ``split_spans``); the pipeline trains on span 1 and pushes.
2. The server serves that model with request logging on.
3. A normal batch of span 2's rides is replayed, then a batch with fares tripled.
4. ``tfxp monitor`` judges the shifted window: skew and drift on fare only.
5. It retrains on the newest labelled span (2) through the same gates, and pushes.
6. The running server moves to the new version while requests keep coming: none fail.
Every number printed comes from this run. Outputs under ``outputs/loop/``.
"""

from __future__ import annotations

import csv
import json
import math
import random
import time
import urllib.request
from pathlib import Path
from typing import Any

from pipeline.config import PROJECT_ROOT, PipelineConfig, load_config
from pipeline.data_check import is_number

BATCH = 1000  # rides per replayed batch (bounded)
REQUEST_ROWS = 50  # rides per request
OUT = PROJECT_ROOT / "outputs" / "loop"


def _say(step: str) -> None:
    print(f"\n== {step}", flush=True)


def loop_config(out: Path = OUT) -> PipelineConfig:
    return load_config("spans", {"output_dir": str(out), "data.root": str(out / "data")})


def split_spans(source: Path, root: Path, seed: int = 0) -> tuple[list[str], list[list[str]]]:
    """The demo data in two random halves, span-1 and span-2; returns span 2's rows.

    The rides holding each numeric column's smallest and largest value go into
    both spans. TFDV compares numbers by equal-width histograms between their
    min and max, so one far outlier (a $700 fare) in one half alone reads as
    drift between two halves of the same data; with the same extremes, both
    spans' histograms share their edges and only a real change shows.
    """
    with open(source, newline="") as f:
        reader = csv.reader(f)
        header, rows = next(reader), list(reader)
    extremes: set[int] = set()
    for column in range(len(header)):
        numbers = [(float(r[column]), i) for i, r in enumerate(rows) if is_number(r[column])]
        if len(numbers) == sum(1 for r in rows if r[column]):  # a numeric column
            extremes |= {min(numbers)[1], max(numbers)[1]} if numbers else set()
    rest = [r for i, r in enumerate(rows) if i not in extremes]
    random.Random(seed).shuffle(rest)
    shared = [rows[i] for i in sorted(extremes)]
    half = len(rest) // 2
    spans = {1: shared + rest[:half], 2: shared + rest[half:]}
    for number, part in spans.items():
        directory = root / f"span-{number}"
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / "data.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(part)
    return header, rest[half:]


def serving_instances(spec: Any, header: list[str], rows: list[list[str]], fare_factor: float = 1.0) -> list[dict]:
    """CSV rows as serving_default instances (a missing cell: NaN, "" or 0), fares scaled by ``fare_factor``."""
    from models.features import Dtype

    out = []
    for row in rows:
        record = dict(zip(header, row, strict=True))
        instance: dict[str, Any] = {}
        for f in spec.features:
            cell = record[f.name]
            if f.dtype is Dtype.FLOAT:
                instance[f.name] = (float(cell) if cell else math.nan) * (fare_factor if f.name == "fare" else 1)
            elif f.dtype is Dtype.INT:
                instance[f.name] = int(float(cell)) if cell else 0
            else:
                instance[f.name] = cell
        out.append(instance)
    return out


def _predict(url: str, instances: list[dict]) -> int:
    body = json.dumps({"instances": instances}).encode()
    request = urllib.request.Request(
        f"{url}/v1/models/taxi:predict", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as r:
        json.load(r)
        return int(r.headers["X-Model-Version"])


def replay(url: str, instances: list[dict]) -> set[int]:
    versions = set()
    for i in range(0, len(instances), REQUEST_ROWS):
        versions.add(_predict(url, instances[i : i + REQUEST_ROWS]))
    return versions


def run_loop(out: Path = OUT) -> dict[str, Any]:
    """The loop; returns what happened, for the test and the console."""
    from monitoring.cli import print_result
    from monitoring.monitor import append_history, monitor
    from monitoring.retrain import decide_and_retrain
    from pipeline.cli import print_summary
    from pipeline.run import run_local
    from serving.config import RequestLogOptions, ServerOptions, single_model
    from serving.server import start_server

    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"error: {out} is not empty: `rm -rf {out}` to run the loop again from the start")
    cfg = loop_config(out)
    _say("1. Two spans of rides; train on span 1")
    header, span2 = split_spans(PROJECT_ROOT / "data" / "data.csv", Path(cfg.data.root))
    first = run_local(cfg.model_copy(update={"data": cfg.data.model_copy(update={"span": 1})}))
    print_summary(first, cfg, "spans")
    if not first.pushed_path:
        raise SystemExit("error: the first run pushed nothing; see its summary above")
    _say("2. Serve it, logging every request")
    log_dir = Path(cfg.request_log_dir)
    server = start_server(
        ServerOptions(
            models=single_model("taxi", cfg.model_base_path),
            port=0,
            rest_api_port=0,
            file_system_poll_wait_seconds=1.0,
            request_log=RequestLogOptions(str(log_dir), 1.0),
        )
    )
    try:
        print(f"REST on {server.rest_url}, request log in {log_dir}")
        sample = random.Random(1).sample(span2, 2 * BATCH)
        _say(f"3. Replay {BATCH} rides of span 2, then {BATCH} with fares tripled")
        before = replay(server.rest_url, serving_instances(cfg.features, header, sample[:BATCH], 1.0))
        replay(server.rest_url, serving_instances(cfg.features, header, sample[BATCH:], 3.0))
        server.core.request_log.flush()
        print(f"answered by version(s) {sorted(before)}")
        _say("4. Monitor the newest window")
        result = monitor(cfg, log_dir, last_rows=BATCH)
        append_history(cfg, result)
        print_result(result)
        _say("5. Retrain on the newest labelled span, through the same gates")
        decision, summary = decide_and_retrain(cfg, result, result.window)
        print(f"decision: retrain={decision.triggered}; reasons: {'; '.join(decision.reasons)}")
        if summary is not None:
            print_summary(summary, cfg, "spans")
        _say("6. The server moves to the new version while requests keep coming")
        moved = _watch_swap(
            server.rest_url, serving_instances(cfg.features, header, sample[:REQUEST_ROWS], 1.0), before
        )
        print(f"versions answering: {moved['versions']}; {moved['requests']} requests, {moved['failed']} failed")
    finally:
        server.stop()
    return {"first": first, "result": result, "decision": decision, "summary": summary, "swap": moved}


def _watch_swap(url: str, rows: list[dict], before: set[int], timeout: float = 60.0) -> dict[str, Any]:
    """Send requests until a version other than ``before`` answers (bounded in time and count)."""
    versions: list[int] = []
    failed = requests = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and requests < 2000:
        requests += 1
        try:
            version = _predict(url, rows[:5])
        except OSError:
            failed += 1
            continue
        if not versions or versions[-1] != version:
            versions.append(version)
        if version not in before:
            break
        time.sleep(0.05)
    return {"versions": versions, "requests": requests, "failed": failed}


def main() -> None:
    import os
    import warnings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=FutureWarning)
    outcome = run_loop()
    swap = outcome["swap"]
    ok = outcome["decision"].triggered and outcome["summary"] is not None and outcome["summary"].exit_code == 0
    ok = ok and len(swap["versions"]) == 2 and swap["failed"] == 0
    print(
        "\nLoop closed: drift found, retrained, gated, pushed and served."
        if ok
        else "\nThe loop did not close: see above."
    )
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
