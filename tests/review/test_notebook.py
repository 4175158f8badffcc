"""notebooks/model_analysis.ipynb executed headless with nbclient, on the trained run and on an empty store."""

from __future__ import annotations

from pathlib import Path

import nbclient
import nbformat
import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.e2e

NOTEBOOK = REPO_ROOT / "notebooks" / "model_analysis.ipynb"


def execute(output_dir: Path, workdir: Path, run_id: str = "latest") -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    [parameters] = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert "OUTPUT_DIR = None" in parameters.source and 'RUN_ID = "latest"' in parameters.source
    parameters.source = parameters.source.replace("OUTPUT_DIR = None", f"OUTPUT_DIR = {str(output_dir)!r}")
    parameters.source = parameters.source.replace('RUN_ID = "latest"', f"RUN_ID = {run_id!r}")
    nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    ).execute()
    return nb


def _outputs(nb, kind: str) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if kind in o.get("data", {})]


def _text(nb) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_the_notebook_reviews_the_trained_run(trained_run, tmp_path):
    from review.runs import list_runs

    cfg = trained_run.cfg
    [run] = [r for r in list_runs(cfg.metadata_path, cfg.name, 100) if r.pushed == str(trained_run.version_dir)]
    nb = execute(Path(cfg.output_dir), tmp_path, run.run_id)  # raises CellExecutionError on any failing cell
    text = _text(nb)
    assert f"Reviewing run {run.run_id} of taxi-pipeline: BLESSED" in text
    assert "Evaluation: " in text and "/Evaluator/evaluation/" in text
    assert "validation_ok:" in text
    tables = [o["data"]["text/html"] for o in _outputs(nb, "text/html")]
    assert any("payment_type=Credit Card" in t and "rule auc" in t for t in tables)
    assert len(_outputs(nb, "image/png")) == 1 + len(trained_run.cfg.eval.slices)  # comparison + one per slice feature
    widgets = _outputs(nb, "application/vnd.jupyter.widget-view+json")
    assert len(widgets) == 3 + 1  # a slicing view per single slice feature, and the time series
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]


def test_on_an_empty_store_the_first_cell_says_so_and_nothing_fails(tmp_path):
    nb = execute(tmp_path / "nothing-here", tmp_path)
    text = _text(nb)
    assert "Nothing to review: no runs of taxi-pipeline recorded" in text
    assert "Run `make demo` (or `tfxp run`) first, then run this notebook again." in text
    assert not _outputs(nb, "image/png") and not _outputs(nb, "application/vnd.jupyter.widget-view+json")


def test_the_committed_notebook_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
