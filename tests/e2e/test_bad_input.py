"""Bad input through `tfxp run`: non-zero exit, a message naming the problem, nothing lost."""

import os

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.pipeline import create_pipeline

pytestmark = pytest.mark.e2e


def _snapshot(cfg) -> dict:
    """Every file under the serving dir, with its size: what serving could see."""
    out = {}
    for root, _, files in os.walk(cfg.serving_dir):
        for name in files:
            path = os.path.join(root, name)
            out[path] = os.path.getsize(path)
    return out


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("wrong_column_count", "data.csv line 43: 17 values but the header has 18 columns"),
        ("empty_dir", "has no CSV files"),
        ("no_csv", "has no CSV files"),
        ("header_only", "data.csv has a header but no data rows"),
        ("label_missing", "column(s) 'tips' missing from the header"),
        ("string_in_numeric", "trip_miles: UNEXPECTED_DATA_TYPE: Expected data of type: FLOAT but got STRING"),
    ],
)
def test_bad_input_fails_clearly_and_keeps_the_served_model(trained_run, bad_data_dir, kind, message):
    cfg = trained_run.cfg
    before = _snapshot(cfg)
    assert before, "the trained run pushed a model"
    data = bad_data_dir(kind)
    data_before = sorted((p.name, p.stat().st_size) for p in data.iterdir())
    result = CliRunner().invoke(app, ["run", "--data", str(data), "--output", cfg.output_dir, "--train-steps", "300"])
    assert result.exit_code == 4, result.output  # data refused
    text = " ".join(result.output.split())
    assert text.endswith("(exit 4: data refused)")
    if kind != "string_in_numeric":
        assert str(data) in text
    assert message in text, result.output
    assert "Run failed" in text or "error" in text
    assert _snapshot(cfg) == before
    assert sorted((p.name, p.stat().st_size) for p in data.iterdir()) == data_before


def test_the_pipeline_itself_checks_csv_when_run_without_tfxp(trained_run, bad_data_dir):
    """The TFX CLI path has no pre-flight: CsvExampleGen's executor checks the CSV."""

    from tfx import v1 as tfx

    cfg = trained_run.cfg
    before = _snapshot(cfg)
    data = bad_data_dir("wrong_column_count")
    bad = cfg.model_copy(update={"data": cfg.data.model_copy(update={"root": str(data)})})
    with pytest.raises(Exception) as raised:
        tfx.orchestration.LocalDagRunner().run(create_pipeline(bad))
    chain, seen = [], raised.value
    while seen is not None:
        chain.append(str(seen))
        seen = seen.__cause__ or seen.__context__
    assert any(f"{data}/data.csv line 43: 17 values" in m for m in chain), chain
    assert _snapshot(cfg) == before
