"""Serving benchmark: one run, JSON out, a table on the console (``make bench-serving``).

    python -m serving.bench --model_base_path outputs/serving_model/taxi --out bench.json [--soak-seconds 120]

Measured in the same run, on the same rows of the data:

- reference: the in-process ``signature(**tensors)`` call at batch 1 (latency and calls/s);
- REST latency at batch 1 (p50, p99), one keep-alive connection;
- REST throughput at concurrency 1, 8 and 32, with batching off and on;
- peak RSS of the server process over a soak at concurrency 8 (batching on);
- the first request's latency after a version swap, with the version's warm-up
  file (``assets.extra/tf_serving_warmup_requests``, replayed before the version
  serves) and without it, side by side.

The server runs in its own process (``tfxp serve``), so the client does not
share its interpreter. Goals: p50 <= reference + 1 ms; throughput at
concurrency 32 with batching >= the reference's batch-1 call rate; RSS flat.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT / "data" / "data.csv"
CONCURRENCY = (1, 8, 32)
_SERVE = "import typer; from serving.commands import register; app = typer.Typer(); register(app); app()"


@dataclasses.dataclass
class Throughput:
    concurrency: int
    requests_per_s: float
    errors: int
    p50_ms: float
    p99_ms: float


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _version_dir(base: Path) -> Path:
    versions = sorted((int(p.name), p) for p in base.iterdir() if p.name.isdigit() and p.is_dir())
    if not versions:
        raise SystemExit(f"no numeric version directory under {base}: run the pipeline (tfxp run) first")
    return versions[-1][1]


def _rows(data: Path, version_dir: Path, count: int) -> list[dict[str, Any]]:
    import tensorflow as tf

    from serving.client import read_rows

    fn = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    dtypes = {
        k: tf.dtypes.as_dtype(s.dtype).as_datatype_enum for k, s in fn.structured_input_signature[1].items()
    }
    from tensorflow.core.framework import types_pb2

    names = {k: types_pb2.DataType.Name(v) for k, v in dtypes.items()}
    return read_rows(data, names, limit=count)


def reference(version_dir: Path, rows: list[dict[str, Any]], seconds: float) -> dict[str, float]:
    """The in-process signature call at batch 1, on prebuilt tensors."""
    import numpy as np
    import tensorflow as tf

    fn = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    specs = fn.structured_input_signature[1]
    batches = []
    for row in rows:
        batch = {}
        for k, s in specs.items():
            if s.dtype == tf.string:
                batch[k] = tf.constant([row[k].encode()])
            else:
                batch[k] = tf.constant(np.array([row[k]], dtype=s.dtype.as_numpy_dtype))
        batches.append(batch)
    for b in batches[:50]:
        fn(**b)
    latencies = []
    end = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < end:
        t = time.perf_counter()
        fn(**batches[i % len(batches)])
        latencies.append(time.perf_counter() - t)
        i += 1
    return {
        "calls_per_s": len(latencies) / sum(latencies),
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * _percentile(latencies, 0.99),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    """``tfxp serve`` in a child process."""

    def __init__(self, base: Path, batching: bool, *extra: str) -> None:
        self.rest_port, grpc_port = _free_port(), _free_port()
        args = [
            "serve",
            "--model_base_path",
            str(base),
            "--port",
            str(grpc_port),
            "--rest_api_port",
            str(self.rest_port),
        ]
        if batching:
            args += ["--enable_batching", "--max_batch_size", "64", "--batch_timeout_micros", "0"]
        args += extra
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SERVE, *args],
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(
                    f"the server exited with {self.proc.returncode}; run `tfxp serve` by hand to see why"
                )
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.rest_port, timeout=2)
                conn.request("GET", f"/v1/models/{base.name}")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise SystemExit("the server did not start within 120 s")

    def rss(self) -> int:
        import psutil

        return psutil.Process(self.proc.pid).memory_info().rss

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _drive(port: int, path: str, bodies: list[bytes], concurrency: int, seconds: float) -> Throughput:
    """``concurrency`` clients, each on its own keep-alive connection, for ``seconds``."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    start = threading.Barrier(concurrency + 1)
    stop_at = [0.0]

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Content-Type": "application/json"}
        start.wait()
        n = i
        while time.perf_counter() < stop_at[0]:
            t = time.perf_counter()
            try:
                conn.request("POST", path, bodies[n % len(bodies)], headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            if ok:
                latencies[i].append(time.perf_counter() - t)
            else:
                errors[i] += 1
            n += concurrency
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + seconds
    began = time.perf_counter()
    start.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    flat = [x for lat in latencies for x in lat]
    return Throughput(
        concurrency,
        len(flat) / elapsed,
        sum(errors),
        1000 * statistics.median(flat),
        1000 * _percentile(flat, 0.99),
    )


def run(base: Path, out: Path, data: Path, seconds: float, soak_seconds: float) -> dict[str, Any]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    version_dir = _version_dir(base)
    rows = _rows(data, version_dir, 256)
    bodies = [json.dumps({"instances": [r]}).encode() for r in rows]
    path = f"/v1/models/{base.name}:predict"
    result: dict[str, Any] = {"model": str(version_dir), "rows": len(rows), "seconds_per_point": seconds}
    logger.info("reference: in-process signature calls")
    result["in_process_batch1"] = ref = reference(version_dir, rows, seconds)
    for batching in (False, True):
        key = "batching_on" if batching else "batching_off"
        logger.info("server with %s", key.replace("_", " "))
        server = _Server(base, batching)
        try:
            _drive(server.rest_port, path, bodies, 4, 2.0)  # warm up
            section: dict[str, Any] = {}
            if not batching:
                latency = _drive(server.rest_port, path, bodies, 1, seconds)
                section["latency_batch1"] = {"p50_ms": latency.p50_ms, "p99_ms": latency.p99_ms}
            section["throughput"] = [
                dataclasses.asdict(_drive(server.rest_port, path, bodies, c, seconds)) for c in CONCURRENCY
            ]
            if batching and soak_seconds > 0:
                section["soak"] = _soak(server, path, bodies, soak_seconds)
            result[key] = section
        finally:
            server.stop()
    p50 = result["batching_off"]["latency_batch1"]["p50_ms"]
    c32 = next(t for t in result["batching_on"]["throughput"] if t["concurrency"] == 32)["requests_per_s"]
    result["goals"] = {
        "p50_within_1ms_of_in_process": p50 <= ref["p50_ms"] + 1.0,
        "c32_batching_throughput_at_least_in_process_rate": c32 >= ref["calls_per_s"],
    }
    if "soak" in result["batching_on"]:
        result["goals"]["rss_flat"] = result["batching_on"]["soak"]["growth_pct"] <= 5.0
    logger.info("first request after a version swap, with and without warm-up")
    result["first_request_after_swap"] = first_request_after_swap(version_dir, bodies[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return result


def first_request_after_swap(version_dir: Path, body: bytes, repeats: int = 3) -> dict[str, Any]:
    """The first request's latency after each of ``repeats`` swaps to a version pushed without its warm-up
    file, and as many to one pushed with it (the median of each, and every run, in ms)."""
    from models.warmup import WARMUP_FILE

    if not (version_dir / WARMUP_FILE).is_file():
        raise SystemExit(f"{version_dir} has no {WARMUP_FILE}: re-run the pipeline (tfxp run) to write one")
    runs: dict[str, list[float]] = {"without_warmup": [], "with_warmup": []}
    with tempfile.TemporaryDirectory(prefix="bench-swap-") as tmp:
        base = Path(tmp) / version_dir.parent.name
        _push_copy(version_dir, base, 1, warm=True)
        server = _Server(base, False, "--file_system_poll_wait_seconds", "0.1")
        conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=60)
        predict = f"/v1/models/{base.name}:predict"
        try:
            _post(conn, predict, body, 1)
            version = 1
            for _ in range(repeats):
                for key in runs:
                    version += 1
                    _push_copy(version_dir, base, version, warm=key == "with_warmup")
                    _wait_available(server.rest_port, base.name, version)
                    t = time.perf_counter()
                    _post(conn, predict, body, version)
                    runs[key].append(1000 * (time.perf_counter() - t))
        finally:
            conn.close()
            server.stop()
    return {
        **{f"{key}_ms": statistics.median(values) for key, values in runs.items()},
        "runs_ms": runs,
    }


def _push_copy(version_dir: Path, base: Path, version: int, warm: bool) -> None:
    """Copy a version in place as the Pusher does (rename), with or without its warm-up file."""
    from serving.loading import WARMUP_FILE

    staging = base / f".tmp-{version}"
    shutil.copytree(version_dir, staging)
    if not warm:
        (staging / WARMUP_FILE).unlink()
    os.rename(staging, base / str(version))


def _wait_available(port: int, model: str, version: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", f"/v1/models/{model}/versions/{version}")
        response = conn.getresponse()
        doc = json.loads(response.read() or b"{}")
        conn.close()
        if response.status == 200 and doc["model_version_status"][0]["state"] == "AVAILABLE":
            return
        time.sleep(0.02)
    raise SystemExit(f"version {version} did not become AVAILABLE within {timeout:.0f} s")


def _post(conn: http.client.HTTPConnection, path: str, body: bytes, version: int) -> None:
    conn.request("POST", path, body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    served = response.getheader("x-model-version")
    if response.status != 200 or served != str(version):
        raise SystemExit(f"expected a 200 from version {version}, got {response.status} from {served}")


def _soak(server: _Server, path: str, bodies: list[bytes], seconds: float) -> dict[str, Any]:
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def sample() -> None:
        began = time.monotonic()
        while not done.wait(1.0):
            samples.append((time.monotonic() - began, server.rss()))

    sampler = threading.Thread(target=sample)
    sampler.start()
    load = _drive(server.rest_port, path, bodies, 8, seconds)
    done.set()
    sampler.join()
    half = len(samples) // 2
    first = max(r for _, r in samples[:half]) if half else 0
    second = max(r for _, r in samples[half:]) if samples else 0
    return {
        "seconds": seconds,
        "requests_per_s": load.requests_per_s,
        "errors": load.errors,
        "rss_peak_first_half_mb": first / 2**20,
        "rss_peak_second_half_mb": second / 2**20,
        "growth_pct": 100.0 * (second - first) / first if first else 0.0,
    }


def print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    ref = result["in_process_batch1"]
    table = Table(title="Serving benchmark (REST, taxi serving_default, batch 1 per request)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("in-process signature call p50 / p99", f"{ref['p50_ms']:.2f} / {ref['p99_ms']:.2f} ms")
    table.add_row("in-process batch-1 call rate", f"{ref['calls_per_s']:.0f} /s")
    lat = result["batching_off"]["latency_batch1"]
    table.add_row("REST p50 / p99 at batch 1", f"{lat['p50_ms']:.2f} / {lat['p99_ms']:.2f} ms")
    for key in ("batching_off", "batching_on"):
        for t in result[key]["throughput"]:
            table.add_row(
                f"throughput c={t['concurrency']}, {key.replace('_', ' ')}",
                f"{t['requests_per_s']:.0f} req/s (p99 {t['p99_ms']:.1f} ms, errors {t['errors']})",
            )
    soak = result["batching_on"].get("soak")
    if soak:
        table.add_row(
            f"soak {soak['seconds']:.0f}s c=8: peak RSS 1st / 2nd half",
            f"{soak['rss_peak_first_half_mb']:.0f} / {soak['rss_peak_second_half_mb']:.0f} MB"
            f" ({soak['growth_pct']:+.1f}%)",
        )
    swap = result.get("first_request_after_swap")
    if swap:
        table.add_row(
            "first request after a swap: without / with warm-up",
            f"{swap['without_warmup_ms']:.1f} / {swap['with_warmup_ms']:.1f} ms",
        )
    for goal, ok in result["goals"].items():
        table.add_row(f"goal: {goal}", "met" if ok else "NOT met")
    Console().print(table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_base_path", required=True, type=Path, help="<serving_dir>/<model_name>")
    parser.add_argument("--out", required=True, type=Path, help="where to write the JSON results")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CSV to take rows from")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each measurement")
    parser.add_argument("--soak-seconds", type=float, default=120.0, help="soak duration (0 skips the soak)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    result = run(args.model_base_path.resolve(), args.out, args.data, args.seconds, args.soak_seconds)
    print_table(result)
    print(f"results written to {args.out}")


if __name__ == "__main__":
    main()
