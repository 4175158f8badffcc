"""`make demo-loop`'s loop, run here as the Makefile runs it (into a temporary directory)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    from monitoring.demo import run_loop

    out = tmp_path_factory.mktemp("loop")
    return out, run_loop(out)


def test_the_shift_is_found_on_fare_only(loop):
    _, outcome = loop
    result = outcome["result"]
    assert result.verdict == "alert"
    flagged = {
        (kind, d.feature)
        for kind, ds in (("skew", result.skew[0].distances), ("drift", result.drift))
        for d in ds
        if d.exceeded
    }
    assert flagged == {("skew", "fare"), ("drift", "fare")}


def test_the_retrain_passes_the_gates_and_the_server_moves_without_a_failure(loop):
    out, outcome = loop
    first, decision, summary, swap = outcome["first"], outcome["decision"], outcome["summary"], outcome["swap"]
    assert first.exit_code == 0 and first.span == 1
    assert decision.triggered and decision.span == 2 and decision.run_exit_code == 0
    assert summary.span == 2 and summary.anomalies == [] and summary.evaluation.blessed
    assert summary.evaluation.baseline_uri  # judged against the model it replaces
    old, new = swap["versions"]
    assert new > old and str(new) in summary.pushed_path
    assert swap["failed"] == 0 and swap["requests"] <= 2000
    recorded = [json.loads(line) for line in (out / "monitoring" / "decisions.jsonl").read_text().splitlines()]
    assert recorded[-1]["triggered"] and recorded[-1]["span"] == 2 and recorded[-1]["run_id"] == decision.run_id
