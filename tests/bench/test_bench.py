"""``make bench``'s harness (bench/): the data it scales, the reference it builds, and a quick run end to end.

Nothing here asserts a speed: the quick run checks that every field of the
JSON is there and positive.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import reference
from bench.data import scaled_csv
from tests.conftest import DATA_CSV, REPO_ROOT, read_rows, write_csv


def test_scaled_csv_keeps_the_sample_and_adds_jittered_copies(tmp_path: Path) -> None:
    header, rows = read_rows()
    source = write_csv(tmp_path / "in" / "data.csv", header, rows[:200])
    out = scaled_csv(source, 4, tmp_path / "out")
    with open(out, newline="") as f:
        got = list(csv.reader(f))
    assert got[0] == header
    assert len(got) - 1 == 800
    assert got[1:201] == rows[:200]  # the sample itself, unchanged
    fare = header.index("fare")
    stamp = header.index("trip_start_timestamp")
    company = header.index("company")
    originals = {r[company] for r in rows[:200]}
    sample_fares = [float(r[fare]) for r in rows[:200] if r[fare]]
    fares = [float(r[fare]) for r in got[201:] if r[fare]]
    assert min(sample_fares) <= min(fares) and max(fares) <= max(sample_fares)  # the schema's domains hold
    assert len(set(fares) - set(sample_fares)) > 300  # jittered
    assert {r[company] for r in got[201:]} <= originals  # categories are resampled, never invented
    assert len({r[stamp] for r in got[1:]}) > 600  # copies are new rows, not duplicates


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return reference.prepare(tmp_path_factory.mktemp("ref") / "template", DATA_CSV, train_steps=7)


def test_reference_is_the_stock_template_with_every_step_on(template: Path) -> None:
    source = (template / "pipeline" / "pipeline.py").read_text()
    enabled = [line.strip() for line in source.splitlines() if line.strip().startswith("components.append(")]
    assert sorted(enabled) == sorted(
        f"components.append({c})"
        for c in [
            "example_gen", "statistics_gen", "schema_gen", "schema_gen", "example_validator",
            "transform", "trainer", "model_resolver", "evaluator", "pusher",
        ]
    )
    assert "# components.append(" not in source
    assert "class_name='AUC'" in source
    assert "TRAIN_NUM_STEPS = 7" in (template / "pipeline" / "configs.py").read_text()
    assert (template / "data" / "data.csv").read_bytes() == DATA_CSV.read_bytes()


def test_a_changed_template_is_refused(template: Path) -> None:
    pipeline_py = template / "pipeline" / "pipeline.py"
    pipeline_py.write_text(pipeline_py.read_text() + "\n  # components.append(extra)\n")
    with pytest.raises(RuntimeError, match="has changed"):
        reference.enable_all_steps(template, DATA_CSV)


@pytest.mark.e2e
def test_quick_benchmark_writes_every_field(tmp_path: Path) -> None:
    out = tmp_path / "bench" / "pipeline.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.pipeline", "--quick", "--out", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=1500,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    runs = [*report["reference"], *report["ours_cold"], report["warm"],
            *(v for k, v in report["scaling"].items() if k != "1x")]
    assert len(runs) == 7
    for run in runs:
        assert run["wall_seconds"] > 0 and run["peak_rss_mib"] > 0
        assert run["exit_code"] in (0, 3)
        assert run["components"] and all(s >= 0 for s in run["components"].values())
        assert 0 < run["auc"] <= 1 and 0 < run["accuracy"] <= 1
    for ref in report["reference"]:
        assert {"CsvExampleGen", "Transform", "Trainer", "Evaluator", "Pusher"} <= set(ref["components"])
    for ours in report["ours_cold"]:
        assert {"CsvExampleGen", "DriftValidator", "Transform", "Trainer", "Evaluator", "Pusher"} <= set(
            ours["components"]
        )
        assert ours["components"]["Trainer"] > 0
    # The warm run re-ran nothing: every component came from the cache in well under a second.
    assert report["warm"]["components"] and max(report["warm"]["components"].values()) < 1.0
    assert [s for s in report["scaling"]] == ["1x", "4x", "10x"]
    assert report["scaling"]["10x"]["rows"] == 10 * report["scaling"]["1x"]["rows"] > 0
    assert all(p["ratio"] > 0 and p["ours"] > 0 and p["reference"] > 0 for p in report["pairs"])
    assert {g["goal"] for g in report["goals"]} == {
        "cold_over_reference",
        "warm_over_reference",
        "time_10x_over_1x",
        "peak_rss_10x_mib",
        "auc",
        "accuracy",
    }
    assert all(g["value"] > 0 for g in report["goals"])
    assert "ours-1" in done.stdout and "goal" in done.stdout  # the printed table
