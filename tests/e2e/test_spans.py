"""Data over time through `tfxp run --profile spans`: spans, the drift gate, the window, bad input.

Real runs on spans cut from the taxi data: 2013, then 2014 split in two halves
(a real change, then a clean next span), then spans built to break the gate.
Every failing case must exit 1 with a message naming the file, feature or
distance, and lose nothing: the input files, the served model and the cache.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from tests.conftest import read_rows, write_csv
from validation.history import drift_history
from validation.spans import cut_spans

pytestmark = pytest.mark.e2e

STEPS = "100"


def _tree(path: Path) -> dict[str, str]:
    """Every file under ``path`` with its content hash."""
    out = {}
    for root, _, files in os.walk(path):
        for name in files:
            p = Path(root) / name
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _with(rows: list[list[str]], header: list[str], column: str, change) -> list[list[str]]:
    i = header.index(column)
    out = []
    for n, row in enumerate(rows):
        row = list(row)
        row[i] = change(n, row[i])
        out.append(row)
    return out


@pytest.fixture(scope="module")
def spans(tmp_path_factory):
    """span-1: 2013; span-2, span-3: the two halves of 2014; span-4: span-3 with drift injected."""
    root = tmp_path_factory.mktemp("spans")
    years = cut_spans(Path(__file__).resolve().parents[2] / "data" / "data.csv", root / "years", "year")
    assert [s.period for s in years] == ["2013", "2014", "2015", "2016"]
    header, y2013 = read_rows(years[0].path / "data.csv")
    _, y2014 = read_rows(years[1].path / "data.csv")
    data = root / "data"
    write_csv(data / "span-1" / "data.csv", header, y2013)
    write_csv(data / "span-2" / "data.csv", header, y2014[0::2])
    write_csv(data / "span-3" / "data.csv", header, y2014[1::2])
    # Fares tripled, and a third of the cash rides paid by card.
    shifted = _with(y2014[1::2], header, "fare", lambda n, v: f"{float(v) * 3:.2f}" if v else v)
    shifted = _with(
        shifted, header, "payment_type", lambda n, v: "Credit Card" if v == "Cash" and n % 3 == 0 else v
    )
    write_csv(data / "span-4" / "data.csv", header, shifted)
    return data, header, y2014[1::2]


def _run(spans_dir: Path, out: Path, span: int | str, *extra: str):
    args = [
        "run",
        "--profile",
        "spans",
        "--data",
        str(spans_dir),
        "--output",
        str(out),
        "--train-steps",
        STEPS,
    ]
    return CliRunner().invoke(app, [*args, "--span", str(span), *extra])


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def history(spans, tmp_path_factory):
    """The runs in order; each test reads the one it is about."""
    data, _, _ = spans
    out = tmp_path_factory.mktemp("out")
    results = {}
    inputs = _tree(data)
    results["first"] = _run(data, out, 1)
    served = _tree(out / "serving_model")
    results["drift"] = _run(data, out, 2)
    results["served_after_drift"] = _tree(out / "serving_model")
    results["warn"] = _run(data, out, 2, "--gate-policy", "warn")
    results["clean"] = _run(data, out, 3)
    served_clean = _tree(out / "serving_model")
    results["injected"] = _run(data, out, 4)
    results["served_after_injected"] = _tree(out / "serving_model")
    results["again"] = _run(data, out, 3)
    from review.runs import list_runs

    results["again_id"] = list_runs(str(out / "metadata.sqlite"), "taxi-pipeline", 1)[0].run_id
    return {
        "out": out,
        "inputs": inputs,
        "served": served,
        "served_clean": served_clean,
        "inputs_after": _tree(data),
        **results,
    }


def test_the_first_span_runs_and_says_it_has_no_baseline(history):
    result = history["first"]
    assert result.exit_code == 0, result.output
    assert "Drift: span 1 is the first span: no earlier span's statistics" in result.output
    assert history["served"], "the first span's model was pushed"


def test_a_real_change_between_years_stops_the_run_naming_the_feature_and_distance(history):
    result = history["drift"]
    assert result.exit_code == 4, result.output  # data refused
    text = _flat(result.output)
    # 2013 -> 2014: the card share rose from 25% to about 32%.
    assert "Drift: span 2 against span 1" in text
    assert "fail drift: [train_train] payment_type: COMPARATOR_L_INFTY_HIGH" in text
    assert "above the threshold 0.05" in text
    assert "Run failed: the data gate stopped the run" in text
    assert history["served_after_drift"] == history["served"]


def test_warn_mode_goes_on_and_lists_what_it_saw(history):
    result = history["warn"]
    assert result.exit_code == 0, result.output
    text = _flat(result.output)
    assert "warn drift: [train_train] payment_type" in text
    assert "Blessing:" in text


def test_a_clean_next_span_passes_with_its_distances_recorded(history):
    result = history["clean"]
    assert result.exit_code == 0, result.output
    records = {r.span: r for r in drift_history(str(history["out"] / "metadata.sqlite"), "taxi-pipeline")}
    assert records[1].baseline_span is None
    clean = records[3]
    assert clean.baseline_span == 2
    # Every compared feature is recorded, below threshold too.
    assert len(clean.features) == 15
    assert clean.exceeded == []
    assert 0 < clean.features["payment_type"]["distance"] < 0.05
    assert records[2].exceeded == ["payment_type"]


def test_the_trainer_trains_on_the_window_of_two_spans(history):
    from ml_metadata.proto import metadata_store_pb2

    from pipeline.results import open_store

    store = open_store(str(history["out"] / "metadata.sqlite"))
    trainer = max((e for e in store.get_executions() if e.type.endswith("Trainer")), key=lambda e: e.id)
    inputs = [
        ev.artifact_id
        for ev in store.get_events_by_execution_ids([trainer.id])
        if ev.type == metadata_store_pb2.Event.INPUT and ev.path.steps[0].key == "examples"
    ]
    spans = sorted(a.custom_properties["span"].int_value for a in store.get_artifacts_by_id(inputs))
    assert spans == [2, 3]


def test_injected_drift_is_stopped_and_nothing_is_lost(history):
    result = history["injected"]
    assert result.exit_code == 4, result.output
    text = _flat(result.output)
    assert "Drift: span 4 against span 3" in text
    assert "fail drift: [train_train] fare: COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH" in text
    assert "fail drift: [train_train] payment_type: COMPARATOR_L_INFTY_HIGH" in text
    assert history["served_after_injected"] == history["served_clean"]
    assert history["inputs_after"] == history["inputs"]


def test_a_later_good_run_is_served_from_cache(history):
    result = history["again"]
    assert result.exit_code == 0, result.output
    assert "Components: 0 run" in result.output
    assert "nothing new pushed: inputs unchanged" in result.output


def _ingested_examples(store) -> dict[int, object]:
    """Span number -> the newest Examples artifact CsvExampleGen made for it, as TFX artifacts."""
    from tfx.types import artifact_utils

    types = {t.id: t for t in store.get_artifact_types()}
    out = {}
    for a in store.get_artifacts_by_type("Examples"):
        if "input_fingerprint" in a.custom_properties:
            span = a.custom_properties["span"].int_value
            if span not in out or out[span].id < a.id:
                out[span] = artifact_utils.deserialize_artifact(types[a.type_id], a)
    return out


def test_a_span_the_gate_stopped_is_neither_baseline_nor_trained_on(history, spans):
    """Span 4 (injected drift) was stopped; span 5, a copy of it, compares with span 3 and trains without 4."""
    from pipeline.components.spans import PreviousSpanStrategy, SpanWindowStrategy, span_of
    from pipeline.results import open_store

    data = spans[0]
    (data / "span-5").mkdir()
    (data / "span-5" / "data.csv").write_bytes((data / "span-4" / "data.csv").read_bytes())
    try:
        result = _run(data, history["out"], 5)
        assert result.exit_code == 4, result.output
        assert "Drift: span 5 against span 3" in _flat(result.output)
        store = open_store(str(history["out"] / "metadata.sqlite"))
        examples = _ingested_examples(store)
        assert {1, 2, 3, 4, 5} <= set(examples)
        every = list(examples.values())
        window = SpanWindowStrategy(num_spans=3).resolve_artifacts(
            store, {"current": [examples[5]], "examples": every}
        )
        assert [span_of(a) for a in window["examples"]] == [2, 3, 5]
        statistics = [a for a in store.get_artifacts_by_type("ExampleStatistics")]
        from tfx.types import artifact_utils

        types = {t.id: t for t in store.get_artifact_types()}
        previous = PreviousSpanStrategy().resolve_artifacts(
            store,
            {
                "current": [examples[5]],
                "examples": every,
                "statistics": [artifact_utils.deserialize_artifact(types[s.type_id], s) for s in statistics],
            },
        )
        assert [span_of(a) for a in previous["examples"]] == [3]
    finally:
        (data / "span-5" / "data.csv").unlink()
        (data / "span-5").rmdir()


# -- Bad input: each a span of its own after the good ones; checked before any TFX work or by the gate.


def _bad_span(spans, number: int, kind: str) -> Path:
    data, header, rows = spans
    directory = data / f"span-{number}"
    directory.mkdir()
    rows = [list(r) for r in rows[:800]]
    if kind == "different_headers":
        write_csv(directory / "a.csv", header, rows[:400])
        write_csv(directory / "b.csv", header[::-1], [r[::-1] for r in rows[400:]])
    elif kind == "non_utf8":
        path = write_csv(directory / "data.csv", header, rows)
        lines = path.read_bytes().split(b"\n")
        lines[7] = lines[7].replace(b"Cash", b"Caf\xe9", 1).replace(b"Credit Card", b"Cr\xe9dit Card", 1)
        path.write_bytes(b"\n".join(lines))
    elif kind == "long_line":
        rows[5][header.index("company")] = "x" * 200_000
        write_csv(directory / "data.csv", header, rows)
    elif kind == "empty_dir":
        pass
    elif kind == "all_null":
        write_csv(directory / "data.csv", header, _with(rows, header, "trip_seconds", lambda n, v: ""))
    elif kind == "out_of_range":
        write_csv(
            directory / "data.csv",
            header,
            _with(rows, header, "trip_start_hour", lambda n, v: "30" if n % 2 else v),
        )
    elif kind == "unseen_category":
        write_csv(
            directory / "data.csv",
            header,
            _with(rows, header, "payment_type", lambda n, v: "Bitcoin" if n % 5 < 2 else v),
        )
    return directory


@pytest.mark.parametrize(
    ("number", "kind", "message"),
    [
        (11, "different_headers", "b.csv: header differs from"),
        (12, "non_utf8", "data.csv line 8: bytes that are not UTF-8"),
        (13, "long_line", "data.csv line 7: field larger than field limit"),
        (14, "empty_dir", "span 14's directory"),
        (99, "missing", "span 99 does not exist under"),
        (15, "all_null", "fail schema: [train] trip_seconds: FEATURE_TYPE_NOT_PRESENT"),
        (
            16,
            "out_of_range",
            "fail schema: [train] trip_start_hour: INT_TYPE_BIG_INT: Unexpectedly large value: 30",
        ),
        (
            17,
            "unseen_category",
            "payment_type: ENUM_TYPE_UNEXPECTED_STRING_VALUES: "
            "Examples contain values missing from the schema: Bitcoin",
        ),
    ],
)
def test_bad_spans_fail_clearly_and_lose_nothing(history, spans, tmp_path, number, kind, message):
    data = spans[0]
    if kind != "missing":
        _bad_span(spans, number, kind)
    before = _tree(data)
    served = _tree(history["out"] / "serving_model")
    result = _run(data, history["out"], number)
    assert result.exit_code == 4, result.output
    text = _flat(result.output)
    assert message in text, result.output
    assert "Traceback" not in result.output
    assert _tree(data) == before
    assert _tree(history["out"] / "serving_model") == served
    if kind in ("all_null", "out_of_range", "unseen_category"):
        # A span the gate stopped is no baseline: each is compared with span 3, the last good one.
        assert f"Drift: span {number} against span 3" in text
    if kind != "missing":
        for path in (data / f"span-{number}").iterdir():
            path.unlink()
        (data / f"span-{number}").rmdir()


# -- The data review: the notebook and the report read the runs above from MLMD.

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "data_validation.ipynb"


def _execute(output_dir: Path, workdir: Path, run_id: str):
    import nbclient
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    [parameters] = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert "OUTPUT_DIR = None" in parameters.source and 'PROFILE = "local"' in parameters.source
    parameters.source = parameters.source.replace("OUTPUT_DIR = None", f"OUTPUT_DIR = {str(output_dir)!r}")
    parameters.source = parameters.source.replace('PROFILE = "local"', 'PROFILE = "spans"')
    parameters.source = parameters.source.replace('RUN_ID = "latest"', f"RUN_ID = {run_id!r}")
    nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    ).execute()
    return nb


def _outputs(nb, kind: str) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if kind in o.get("data", {})]


def test_the_data_notebook_shows_statistics_anomalies_and_drift_over_spans(history, tmp_path):
    import base64

    import nbconvert
    from PIL import Image

    from tests.review.browser import ink, screenshot

    nb = _execute(history["out"], tmp_path, history["again_id"])
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    # The cached re-run of span 3 (the clean one).
    assert f"Reviewing run {history['again_id']} of taxi-pipeline" in text and "span 3" in text
    assert "No anomalies." in text
    tables = [o["data"]["text/html"] for o in _outputs(nb, "text/html")]
    assert any("trip_miles" in t and "missing %" in t for t in tables)  # statistics
    assert any("span 2 vs 1" in t and "span 3 vs 2" in t and "span 4 vs 3" in t and "threshold" in t for t in tables)
    images = _outputs(nb, "image/png")
    assert len(images) == 2  # drift over spans, and the latest comparison
    for i, out in enumerate(images):
        path = tmp_path / f"chart{i}.png"
        path.write_bytes(base64.b64decode(out["data"]["image/png"]))
        assert ink(Image.open(path).convert("RGB")) > 0.02
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    # As a person would see it: rendered to HTML, in Chromium.
    html, _ = nbconvert.HTMLExporter().from_notebook_node(nb)
    page = tmp_path / "data_validation.html"
    page.write_text(html)
    shots = Path(__file__).resolve().parents[2] / "outputs" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    image, _ = screenshot(page.as_uri(), shots / "data-validation.png", width=1200, height=3300)
    assert ink(image) > 0.05


def test_the_report_shows_this_runs_drift_and_every_span_so_far(history, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "report",
            "--profile",
            "spans",
            "--output",
            str(history["out"]),
            "--run",
            history["again_id"],
            "--out",
            str(tmp_path / "r.html"),
        ],
    )
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r.html").read_text()
    assert "Drift: span 3 against span 2 (train splits)" in page
    assert page.count("<svg") >= 3  # this run's distances and the series, beside the evaluation charts
    assert "Every comparison so far" in page
