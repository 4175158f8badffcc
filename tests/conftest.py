"""Shared fixtures: a copy of the taxi data, and one real pipeline run.

The trained run is session-scoped: the e2e, model and serving tests all use the
same LocalDagRunner run instead of each training their own. It runs on all
15,002 rows with the demo's 1,000 steps: the slice gate judges slices of >= 200
test rows, which a smaller cut would not have, and a pipeline run's time is
mostly fixed start-up cost (5,000 rows and 300 steps took 91 s, this 93 s).
"""

from __future__ import annotations

import csv
import dataclasses
import os
import tempfile
from pathlib import Path

import pytest

# Keep TensorFlow's C++ start-up chatter out of the test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config: pytest.Config) -> None:
    """Pipelines run in the test process: drop TensorFlow's teardown tracebacks at exit, as tfxp does."""
    import sys

    from pipeline.cli import _quiet_tensorflow_teardown

    sys.unraisablehook = _quiet_tensorflow_teardown

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_CSV = REPO_ROOT / "data" / "data.csv"
FIXTURE_TRAIN_STEPS = 1000


# Fixtures that run a real TFX pipeline (LocalDagRunner): every test that uses
# one, directly or through another fixture, gets the e2e marker.
PIPELINE_FIXTURES = ("trained_run", "proposal")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark what the ``e2e`` marker says: each test whose fixtures run a real pipeline."""
    for item in items:
        if set(PIPELINE_FIXTURES) & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


def read_rows(path: Path = DATA_CSV) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        return header, list(reader)


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def fixture_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with one CSV: a copy of data/data.csv."""
    header, rows = read_rows()
    out = tmp_path_factory.mktemp("fixture_data")
    write_csv(out / "data.csv", header, rows)
    return out


@dataclasses.dataclass
class TrainedRun:
    cfg: object  # pipeline.config.PipelineConfig
    summary: object  # pipeline.run.RunSummary
    version_dir: Path  # the pushed <serving_dir>/<model_name>/<version>
    left_in_temp: list[str] = dataclasses.field(default_factory=list)  # what the run left in the system temp dir


def fast_config(data_dir: Path, output_dir: Path, **overrides: object):
    from pipeline.config import load_config

    return load_config(
        "local",
        {
            "data.root": str(data_dir),
            "output_dir": str(output_dir),
            "training.train_steps": FIXTURE_TRAIN_STEPS,
            **overrides,
        },
    )


def closed_port() -> int:
    """A loopback port nothing listens on (just bound and released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def trained_run(fixture_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """One real LocalDagRunner run of the whole pipeline on the fixture data.

    Its MLflow tracking server is unreachable: the run must succeed and push
    all the same (tests/tracking checks the one line it prints instead).
    """
    from pipeline.run import run_local

    cfg = fast_config(
        fixture_data_dir,
        tmp_path_factory.mktemp("trained_run"),
        **{"tracking.mlflow_uri": f"http://127.0.0.1:{closed_port()}"},
    )
    # The system temp dir as a process started with TMPDIR set sees it: an empty one of our own.
    system_temp = tmp_path_factory.mktemp("system_temp")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(system_temp))
        patch.setattr(tempfile, "tempdir", None)
        summary = run_local(cfg)
    assert summary.ok, f"fixture pipeline run failed: {summary.error} (log: {summary.log_file})"
    assert summary.pushed_path, f"fixture run pushed nothing: {summary.push_note}"
    return TrainedRun(cfg, summary, Path(summary.pushed_path), sorted(os.listdir(system_temp)))


@pytest.fixture(scope="session")
def pushed_model_dir(trained_run: TrainedRun) -> Path:
    """The SavedModel directory the pipeline pushed: <model_base_path>/<version>."""
    return trained_run.version_dir


BAD_INPUTS = ("wrong_column_count", "empty_dir", "no_csv", "header_only", "string_in_numeric", "label_missing")


@pytest.fixture
def bad_data_dir(tmp_path: Path):
    """A factory: ``bad_data_dir(kind)`` writes a data directory with that defect."""

    def make(kind: str) -> Path:
        header, rows = read_rows()
        rows = rows[:600]
        out = tmp_path / kind
        out.mkdir()
        if kind == "wrong_column_count":
            rows[41] = rows[41][:-1]  # line 43 of the file, after the header
            write_csv(out / "data.csv", header, rows)
        elif kind == "empty_dir":
            pass
        elif kind == "no_csv":
            (out / "notes.txt").write_text("the data went elsewhere\n")
        elif kind == "header_only":
            write_csv(out / "data.csv", header, [])
        elif kind == "string_in_numeric":
            rows[10][header.index("trip_miles")] = "twelve"
            write_csv(out / "data.csv", header, rows)
        elif kind == "label_missing":
            tips = header.index("tips")
            write_csv(
                out / "data.csv",
                [c for i, c in enumerate(header) if i != tips],
                [[c for i, c in enumerate(r) if i != tips] for r in rows],
            )
        else:
            raise ValueError(kind)
        return out

    return make
