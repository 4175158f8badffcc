"""The TFMA review in a browser: ``make notebook``'s server, headless Chromium, TFMA's views drawn.

The test starts the server exactly as ``make notebook`` does (the make target
itself), opens notebooks/model_analysis.ipynb on the trained run, runs every
cell from the page, and checks in the DOM that TFMA's slicing views and time
series are drawn: a table with the slices and their metric values, with a
non-zero size, and a drawn line chart.

One stand-in: TFMA draws its tables and charts with Google Charts, which the
browser loads from www.gstatic.com. That host is unreachable here, so the test
injects ``gcharts_stub.js``, a small offline double of the Google Charts API
TFMA uses. Everything else (the server, the kernel, the widget comms, TFMA's
web components and data, the compatibility shim) is the real thing.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.review.browser import DevTools, chromium, stop, wait_http

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent
TOKEN = "tfxp-notebook-test"
SCREENSHOTS = REPO_ROOT / "outputs" / "screenshots"  # kept for a person to look at (outputs/ is not in git)

# Every TFMA view on the page, looked into through its shadow DOM.
DRAWN = r"""
(() => {
  const deep = (root, sel, out = []) => {
    root.querySelectorAll(sel).forEach(e => out.push(e));
    root.querySelectorAll('*').forEach(e => e.shadowRoot && deep(e.shadowRoot, sel, out));
    return out;
  };
  const text = n => n.nodeType === 3 ? n.nodeValue : (n.nodeName === 'STYLE' ? '' :
      (n.shadowRoot ? text(n.shadowRoot) : '') + Array.from(n.childNodes).map(text).join(' '));
  const box = e => {
    const r = e ? e.getBoundingClientRect() : {width: 0, height: 0};
    return [Math.round(r.width), Math.round(r.height)];
  };
  const charts = (host, hostTag) => deep(host.shadowRoot, 'google-chart')
      .filter(g => g.getRootNode().host && g.getRootNode().host.localName === hostTag)
      .map(g => { const div = g.shadowRoot && g.shadowRoot.getElementById('chartdiv');
                  const t = div && div.querySelector('table'), s = div && div.querySelector('svg');
                  return {drawn: g.drawn === true, rows: t ? t.rows.length : 0, box: box(t || s),
                          text: div ? text(div).replace(/\s+/g, ' ').trim() : ''}; });
  const view = (el, lines) => {
    const tables = el.shadowRoot ? charts(el, 'tfma-metrics-table') : [];
    const plots = lines && el.shadowRoot ? charts(el, 'tfma-line-chart') : [];
    const t = tables[0] || {drawn: false, rows: 0, box: [0, 0], text: ''};
    return {box: box(el), drawn: t.drawn, rows: t.rows, tableBox: t.box, text: t.text.slice(0, 50000),
            lines: plots.map(p => ({drawn: p.drawn, box: p.box}))};
  };
  return {
    slicing: Array.from(document.querySelectorAll('tfma-nb-slicing-metrics')).map(e => view(e, false)),
    series: Array.from(document.querySelectorAll('tfma-nb-time-series')).map(e => view(e, true)),
  };
})()
"""


@pytest.fixture
def server(trained_run, tmp_path):
    """``make notebook`` on a free port, reviewing the trained run's output directory.

    A cached re-run first makes the trained run's results the latest run there,
    whatever other tests ran in that directory since.
    """
    from pipeline.run import run_local
    from tests.review.browser import free_port

    assert run_local(trained_run.cfg).ok
    port = free_port()
    env = dict(
        os.environ,
        TFXP_OUTPUT_DIR=trained_run.cfg.output_dir,
        # Keep the user's ~/.jupyter out of it; the venv's (sys-prefix) config still applies.
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
        IPYTHONDIR=str(tmp_path / "ipython"),
    )
    log = open(tmp_path / "notebook.log", "w")
    process = subprocess.Popen(
        ["make", "-s", "notebook", f"NOTEBOOK_PORT={port}", f"NOTEBOOK_TOKEN={TOKEN}"],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/api/status?token={TOKEN}", 90)
        yield port
    finally:
        stop(process)
        log.close()


def test_tfma_views_draw_in_the_notebook_that_make_notebook_serves(server, trained_run, tmp_path):
    chromium()  # skips outside CI when there is no browser
    browser = DevTools(tmp_path / "chromium-profile")
    try:
        browser("Page.addScriptToEvaluateOnNewDocument", source=(HERE / "gcharts_stub.js").read_text())
        browser(
            "Page.navigate", url=f"http://127.0.0.1:{server}/nbclassic/notebooks/model_analysis.ipynb?token={TOKEN}"
        )
        browser.wait(
            "!!(window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel && Jupyter.notebook.kernel.is_connected()"
            " && Jupyter.notebook.kernel.widget_manager)",
            120, "the kernel and the widget manager",
        )  # fmt: skip
        # The widget manager redraws widget outputs when its first sync with the
        # kernel ends; widgets shown before that are torn down. Let it finish.
        for _ in range(2):
            time.sleep(0.5)
            browser.js(
                "Promise.race([new Promise(r => Jupyter.notebook.kernel.kernel_info(() => r(true))),"
                " new Promise(r => setTimeout(r, 5000))])"
            )
        browser.js("Jupyter.notebook.execute_all_cells(), true")
        browser.wait(
            "Jupyter.notebook.get_cells().every(c => c.cell_type != 'code' || typeof c.input_prompt_number == 'number')"
            " && !Jupyter.notebook.kernel_busy",
            300, "every cell to run",
        )  # fmt: skip
        ok = (
            "(() => { const r = " + DRAWN + "; return r.slicing.length == 3 && r.series.length == 1"
            " && r.slicing.every(v => v.drawn && v.rows >= 3 && v.tableBox[1] > 0)"
            " && r.series.every(v => v.drawn && v.rows >= 2 && v.lines.length"
            " && v.lines.every(l => l.drawn && l.box[1] > 0))"
            " ? r : null; })()"
        )
        try:
            views = browser.wait(ok, 90, "TFMA's views to draw")
        finally:
            # Show the payment_type view's table (the second view) in the screenshot.
            browser.js(
                "(() => { const deep = (root, sel, out = []) => { root.querySelectorAll(sel).forEach(e => out.push(e));"
                " root.querySelectorAll('*').forEach(e => e.shadowRoot && deep(e.shadowRoot, sel, out)); return out; };"
                " const views = Array.from(document.querySelectorAll('tfma-nb-slicing-metrics'));"
                " const view = views[1] || views[0]; if (!view) return false;"
                " const table = view.shadowRoot ? deep(view.shadowRoot, 'tfma-metrics-table')[0] : null;"
                " (table || view).scrollIntoView(); return true; })()"
            )
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            print(f"screenshot: {browser.screenshot(SCREENSHOTS / 'notebook-review.png')}")
        errors = [e for e in browser.errors() if "gstatic" not in str(e) and "googleapis" not in str(e)]
        errors_in_cells = browser.js(
            "Jupyter.notebook.get_cells().flatMap(c => (c.output_area ? c.output_area.outputs : []))"
            ".filter(o => o.output_type == 'error').map(o => o.ename + ': ' + o.evalue)"
        )
    finally:
        browser.close()
    assert errors_in_cells == []
    assert errors == [], errors[:3]
    payment = [v for v in views["slicing"] if "payment_type:Credit Card" in v["text"]]
    assert payment, [v["text"][:120] for v in views["slicing"]]
    card = trained_run.summary.evaluation.slice("payment_type=Credit Card")
    assert str(card.example_count) in payment[0]["text"]
    assert f"{card.metrics['auc']:.5f}"[:6] in payment[0]["text"]  # the view shows the metric's value
