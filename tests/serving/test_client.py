"""The typed client, ``tfxp predict``/``tfxp serve`` and the ``make demo`` query."""

from __future__ import annotations

import csv
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from serving.client import read_rows
from serving.commands import predict, register
from serving.demo import demo_query
from tests.conftest import DATA_CSV, REPO_ROOT
from tests.serving.conftest import in_process_predictions


def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


@pytest.fixture
def data_head(tmp_path: Path) -> Path:
    """The first 5 rows of the real CSV, every column included (the client picks the inputs)."""
    with open(DATA_CSV, newline="") as f:
        lines = [next(f) for _ in range(6)]
    path = tmp_path / "head.csv"
    path.write_text("".join(lines))
    return path


def test_predict_over_rest_and_grpc_from_csv_and_json(
    taxi_server: Any, pushed_model_dir: Path, data_head: Path, tmp_path: Path
) -> None:
    rows, rest = predict(data_head, url=taxi_server.rest_url, model_name="taxi")
    from models.features import load_spec

    FEATURES = load_spec().features

    assert len(rows) == 5 and set(rows[0]) == {f.name for f in FEATURES}  # tips etc. are not sent
    assert rest.model_version == int(pushed_model_dir.name)
    expected = in_process_predictions(pushed_model_dir, rows)
    assert rest.predictions == pytest.approx(expected, abs=1e-6)
    _, over_grpc = predict(data_head, url=f"grpc://{taxi_server.grpc_target}", model_name="taxi")
    assert over_grpc.predictions == pytest.approx(expected, abs=1e-6)
    assert over_grpc.model_version == int(pushed_model_dir.name)
    as_json = tmp_path / "rows.json"
    as_json.write_text(json.dumps({"instances": [dict(r, extra="ignored") for r in rows]}))
    _, from_json = predict(as_json, url=taxi_server.rest_url, model_name="taxi", limit=2)
    assert from_json.predictions == pytest.approx(expected[:2], abs=1e-6)


def test_csv_conversion_and_errors(tmp_path: Path) -> None:
    dtypes = {"fare": "DT_FLOAT", "trip_seconds": "DT_INT64", "company": "DT_STRING"}
    path = tmp_path / "rows.csv"
    path.write_text("fare,trip_seconds,company,tips\n,60.0,,1\n12.5,,Acme,0\n")
    first, second = read_rows(path, dtypes)
    assert first["trip_seconds"] == 60 and first["company"] == "" and first["fare"] != first["fare"]  # NaN
    assert second == {"fare": 12.5, "trip_seconds": 0, "company": "Acme"}
    path.write_text("fare,trip_seconds,company\ntwelve,1,a\n")
    with pytest.raises(ValueError, match=r"rows.csv:2 column 'fare': 'twelve' is not a number"):
        read_rows(path, dtypes)
    path.write_text("fare,company\n1,a\n")
    with pytest.raises(ValueError, match="no column trip_seconds"):
        read_rows(path, dtypes)


def test_cli_predict_prints_a_table(taxi_server: Any, data_head: Path) -> None:
    result = CliRunner().invoke(
        cli(), ["predict", str(data_head), "--url", taxi_server.rest_url, "--limit", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "prediction" in result.output and result.output.count("0.") >= 3
    bad = CliRunner().invoke(
        cli(), ["predict", str(data_head), "--url", taxi_server.rest_url, "--model_name", "nope"]
    )
    assert bad.exit_code == 1 and "404" in bad.output


def test_cli_serve_flags_and_errors() -> None:
    help_text = (
        CliRunner().invoke(cli(), ["serve", "--help"], env={"COLUMNS": "250", "TERMINAL_WIDTH": "250"}).output
    )
    flags = (
        "--model_base_path",
        "--model_config_file",
        "--port",
        "--rest_api_port",
        "--enable_batching",
        "--file_system_poll_wait_seconds",
        "--rest_api_timeout_in_ms",
        "--max_batch_size",
        "--request_log_dir",
    )
    for flag in flags:
        assert flag in help_text
    missing = CliRunner().invoke(cli(), ["serve", "--model_name", "taxi"])
    assert missing.exit_code == 2 and "--model_base_path is required" in missing.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_command_runs_as_a_process_and_stops_on_sigterm(pushed_model_dir: Path) -> None:
    rest, grpc_port = _free_port(), _free_port()
    code = "import typer; from serving.commands import register; app = typer.Typer(); register(app); app()"
    args = [
        "serve",
        "--model_base_path",
        str(pushed_model_dir.parent),
        "--port",
        str(grpc_port),
        "--rest_api_port",
        str(rest),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 90
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = httpx.get(
                    f"http://127.0.0.1:{rest}/v1/models/{pushed_model_dir.parent.name}", timeout=2
                )
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert status is not None and status.status_code == 200, (
            proc.stdout.read().decode() if proc.poll() is not None else "no answer"
        )
        assert status.json()["model_version_status"][0]["state"] == "AVAILABLE"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()


def test_demo_query_prints_the_request_and_predictions(
    pushed_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    demo_query(str(pushed_model_dir.parent), str(DATA_CSV), rows=3)
    out = capsys.readouterr().out
    assert f"/v1/models/{pushed_model_dir.parent.name}:predict" in out and '"instances"' in out
    assert f"Predictions from version {pushed_model_dir.name}:" in out
    with open(DATA_CSV, newline="") as f:
        payment = [r["payment_type"] for _, r in zip(range(3), csv.DictReader(f), strict=False)]
    lines = [line for line in out.splitlines() if line.strip().startswith("row ")]
    assert len(lines) == 3 and all(repr(p) in line for p, line in zip(payment, lines, strict=True))
    assert all(0.0 <= float(line.rsplit("-> ", 1)[1]) <= 1.0 for line in lines)
