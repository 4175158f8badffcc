"""The slice gate end to end: a candidate at chance on one company's rides is refused.

The weakened data is the shipped data with the labels of one company's rides
shuffled among themselves (the tips rewritten to match), in every split. The
company is the smallest one the good run judged, chosen by that rule and not by
hand. Its rides keep their base rate, so the model can still look fine overall:
only the slice threshold can catch it.

Against the blessed model the same candidate is not caught by a slice's drop:
the baseline is graded on the same shuffled rows and is at chance there too.
The drop thresholds are exercised in tests/e2e/test_local_run.py, where a
crippled candidate meets the blessed model on the true labels.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.run import run_local
from tests.conftest import fast_config, read_rows, write_csv

pytestmark = pytest.mark.e2e


def _versions(base: str) -> list[str]:
    return sorted(os.listdir(base)) if os.path.isdir(base) else []


def _weakest_link(trained_run) -> str:
    """The smallest company slice the good run judged."""
    e = trained_run.cfg.eval
    judged = trained_run.summary.evaluation.judged_slices(e.slice_min_examples, e.slice_min_class_examples)
    companies = [s for s in judged if s.slice.startswith("company=")]
    assert companies, [s.slice for s in judged]
    return min(companies, key=lambda s: s.example_count).slice.split("=", 1)[1]


def _shuffle_labels(out: Path, company: str) -> Path:
    header, rows = read_rows()
    c, tips, fare = header.index("company"), header.index("tips"), header.index("fare")
    picked = [r for r in rows if r[c] == company]
    labels = [float(r[tips] or 0) - 0.2 * float(r[fare] or 0) > 1e-3 for r in picked]
    random.Random(0).shuffle(labels)
    for row, positive in zip(picked, labels, strict=True):
        row[tips] = f"{float(row[fare] or 0) * 0.5 + 1:.2f}" if positive else "0.0"
    return write_csv(out / "data.csv", header, rows).parent


@pytest.fixture(scope="module")
def weakened(trained_run, tmp_path_factory):
    company = _weakest_link(trained_run)
    return company, _shuffle_labels(tmp_path_factory.mktemp("weakened_data"), company)


def test_the_good_run_lists_every_judged_slice_with_its_verdict(trained_run):
    assert run_local(trained_run.cfg).ok  # cached: makes the trained run the latest again
    result = CliRunner().invoke(app, ["report", "--output", trained_run.cfg.output_dir])
    assert result.exit_code == 0, result.output
    ev, e = trained_run.summary.evaluation, trained_run.cfg.eval
    judged = ev.judged_slices(e.slice_min_examples, e.slice_min_class_examples)
    assert {"payment_type=Credit Card", "company=Taxi Affiliation Services"} <= {s.slice for s in judged}
    lines = result.output.splitlines()
    for s in judged:
        [line] = [ln for ln in lines if ln.strip().startswith(s.slice[:48])]
        assert line.split()[-1] == "pass", line
        assert f"{s.metrics['auc']:.4f}" in line and f"{s.rule['auc']:.4f}" in line
    assert f"Slices judged (>= 200 rows, >= 10 of each class): {len(judged)} of {len(ev.slices)}" in result.output
    assert "Blessing: BLESSED, every threshold met" in result.output


def test_a_candidate_at_chance_on_one_company_is_refused_by_that_slice(weakened, tmp_path):
    company, data = weakened
    cfg = fast_config(data, tmp_path / "out")  # a fresh store: no baseline, so only the floors decide
    summary = run_local(cfg)
    assert summary.ok, summary.error  # a refused model is not a failed run
    ev = summary.evaluation
    assert not ev.blessed
    weak = ev.slice(f"company={company}")
    assert weak.judged(cfg.eval.slice_min_examples, cfg.eval.slice_min_class_examples)
    assert weak.metrics["auc"] < cfg.eval.slice_floors["auc"]
    # Refused by the slice, not by the overall floors: the model still passes those.
    assert ev.overall.metrics["auc"] >= cfg.eval.floors["auc"], ev.failures
    assert [str(f) for f in ev.failures] == [
        f"company={company}: auc {weak.metrics['auc']:.4f} is below the floor 0.6000 [eval.slice_floors.auc]"
    ]
    assert summary.pushed_path is None and "not blessed" in summary.push_note
    assert _versions(cfg.model_base_path) == []
