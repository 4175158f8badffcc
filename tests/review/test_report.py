"""``tfxp report --out``: one self-contained HTML page, parsed, then rendered by headless Chromium."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from review.runs import list_runs
from tests.review.browser import ink, screenshot

pytestmark = pytest.mark.e2e


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.headings: list[str] = []
        self._in_heading = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_heading = tag in ("h2", "h3")

    def handle_data(self, data):
        if self._in_heading and data.strip():
            self.headings.append(data.strip())
            self._in_heading = False


@pytest.fixture(scope="module")
def report(trained_run, tmp_path_factory):
    cfg = trained_run.cfg
    [run] = [r for r in list_runs(cfg.metadata_path, cfg.name, 100) if r.pushed == str(trained_run.version_dir)]
    out = tmp_path_factory.mktemp("report") / "report.html"
    result = CliRunner().invoke(app, ["report", "--output", cfg.output_dir, "--run", run.run_id, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"Report: {out}"
    text = out.read_text()
    page = _Page()
    page.feed(text)
    return trained_run, text, page, out


def test_the_page_is_self_contained(report):
    _, text, page, _ = report
    assert not [t for t, _ in page.tags if t in ("script", "link", "img", "iframe")]
    assert not re.search(r"""(src|href)=["']?https?:""", text)
    assert "@import" not in text
    assert not re.search(r"url\((?!#)", text)  # only the SVGs' own #clip-path and #hatch references


def test_one_chart_per_slice_feature_plus_the_comparison(report):
    trained_run, text, page, _ = report
    svgs = text.count("<svg")
    features = ["trip_start_hour", "payment_type", "company", "payment_type x trip_start_hour"]  # eval.slices
    assert [h for h in page.headings if h in features] == features
    assert svgs == len(features) + 2  # + the candidate/baseline/rule comparison and the component times
    for feature in features:
        assert f"AUC by {feature}: model bars" in text


def test_the_verdict_rule_baseline_and_push_are_on_the_page(report):
    trained_run, text, _, _ = report
    ev = trained_run.summary.evaluation
    assert "<span class='badge ok'>BLESSED</span>" in text
    assert "Every threshold met (no baseline: the first blessed model)" in text
    assert f"Pushed <code>{trained_run.version_dir}</code>" in text
    assert f"{ev.overall.metrics['auc']:.4f}" in text and f"{ev.overall.rule['auc']:.4f}" in text
    card = ev.slice("payment_type=Credit Card")
    row = re.search(r"<tr><td>payment_type=Credit Card</td>(.*?)</tr>", text).group(1)
    assert f"{card.metrics['auc']:.4f}" in row and f"{card.rule['auc']:.4f}" in row and "pass" in row
    assert "input_base" in text and str(trained_run.cfg.data.root) in text
    assert "JudgedMetric(auc) trip_start_hour, payment_type, company, payment_type x trip_start_hour: &ge; 0.6" in text


def test_chromium_renders_it_with_ink_and_no_console_errors(report, tmp_path):
    _, text, _, out = report
    image, errors = screenshot(out.as_uri(), tmp_path / "report.png", height=9000)
    assert errors == []
    assert ink(image) > 0.05
    # Each chart on its own: none may be blank.
    for i, chart in enumerate(re.findall(r"<svg.*?</svg>", text, flags=re.S)):
        page = tmp_path / f"chart{i}.html"
        page.write_text(f"<!DOCTYPE html><html><body style='margin:0'>{chart}</body></html>")
        shot, errors = screenshot(page.as_uri(), tmp_path / f"chart{i}.png", width=900, height=700)
        assert errors == []
        assert ink(shot) > 0.02, f"chart {i} is blank"


def test_a_directory_that_does_not_exist_is_one_line(report, tmp_path):
    trained_run, *_ = report
    target = tmp_path / "missing" / "report.html"
    result = CliRunner().invoke(app, ["report", "--output", trained_run.cfg.output_dir, "--out", str(target)])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"error: cannot write {target}: directory {target.parent} does not exist; create it or pick another --out"
    )
    assert not target.parent.exists()


def test_the_push_sentence_keeps_the_paths_case():
    from types import SimpleNamespace

    from review.report import _push_sentence

    cached = SimpleNamespace(
        pushed_path=None, push_note="nothing new pushed: inputs unchanged, /Data/Taxi/1 still serves"
    )
    assert _push_sentence(cached) == "Nothing new pushed: inputs unchanged, /Data/Taxi/1 still serves."
