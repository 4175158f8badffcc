"""Wall time and peak RSS of a whole process tree, and per-component seconds from MLMD."""

from __future__ import annotations

import dataclasses
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

POLL_SECONDS = 0.1


@dataclasses.dataclass(frozen=True)
class Measured:
    wall_seconds: float
    peak_rss_mib: float  # the largest sum of RSS over the process and its descendants
    returncode: int
    log: str  # where stdout and stderr went


def _tree_rss(process: psutil.Process) -> int:
    total = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            pass  # ended between listing and reading
    return total


def run_measured(
    cmd: Sequence[str], log: Path, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> Measured:
    """Run ``cmd`` to completion, sampling the RSS of its process tree every 0.1 s."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd), cwd=cwd, env=dict(env) if env else None, stdout=out, stderr=subprocess.STDOUT
        )
        watched = psutil.Process(proc.pid)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _tree_rss(watched))
            time.sleep(POLL_SECONDS)
        wall = time.perf_counter() - started
    return Measured(round(wall, 2), round(peak / 2**20, 1), proc.returncode, str(log))


def component_seconds(metadata_path: Path) -> dict[str, float]:
    """Seconds per node of the newest pipeline run recorded in an MLMD SQLite file.

    An execution is registered when its node starts and updated when it ends,
    so the difference of the two timestamps is the node's time.
    """
    from pipeline.results import open_store

    store = open_store(str(metadata_path))
    runs = store.get_contexts_by_type("pipeline_run")
    if not runs:
        return {}
    newest = max(runs, key=lambda c: c.create_time_since_epoch)
    seconds: dict[str, float] = {}
    for execution in store.get_executions_by_context(newest.id):
        node = next((c.name for c in store.get_contexts_by_execution(execution.id) if c.type == "node"), None)
        if node is not None:
            elapsed = (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000
            seconds[node.split(".", 1)[-1]] = round(elapsed, 2)
    return seconds


def overall_metrics(evaluation_dir: Path) -> dict[str, float]:
    """The candidate's overall AUC and accuracy from a TFMA output directory (ours or the template's)."""
    from pipeline.results import load_evaluation

    metrics = load_evaluation(str(evaluation_dir)).overall.metrics
    return {
        name: round(metrics[key], 4)
        for key, name in (("auc", "auc"), ("binary_accuracy", "accuracy"))
        if key in metrics
    }
