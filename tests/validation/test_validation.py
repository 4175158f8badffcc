"""`tfxp data spans|drift` and `tfxp schema diff|validate`: real data, real TFDV, no pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import PROJECT_ROOT
from pipeline.data_check import DataError
from tests.conftest import DATA_CSV, read_rows, write_csv
from validation.drift import read_schema
from validation.schema_diff import diff_schemas
from validation.spans import cut_spans, span_periods

SCHEMA = PROJECT_ROOT / "schema" / "schema.pbtxt"


@pytest.fixture(scope="module")
def years(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("years")
    result = CliRunner().invoke(app, ["data", "spans", str(DATA_CSV), "--out", str(out), "--by", "year"])
    assert result.exit_code == 0, result.output
    return out


def test_spans_cut_by_year_keeps_every_row_as_it_was(years):
    assert span_periods(years) == {1: "2013", 2: "2014", 3: "2015", 4: "2016"}
    header, rows = read_rows()
    cut = []
    for n in range(1, 5):
        h, r = read_rows(years / f"span-{n}" / "data.csv")
        assert h == header
        cut += r
    assert len(cut) == len(rows) == 15002
    assert sorted(map(tuple, cut)) == sorted(map(tuple, rows))
    assert [len(read_rows(years / f"span-{n}" / "data.csv")[1]) for n in range(1, 5)] == [
        4388,
        5145,
        4636,
        833,
    ]


def test_spans_refuse_to_overwrite(years):
    with pytest.raises(DataError, match="already holds spans"):
        cut_spans(DATA_CSV, years)


def test_spans_by_quarter_and_a_bad_timestamp_names_the_line(tmp_path):
    header, rows = read_rows()
    spans = cut_spans(DATA_CSV, tmp_path / "q", "quarter")
    assert [s.period for s in spans[:2]] == ["2013-Q1", "2013-Q2"] and len(spans) == 16
    rows[3][header.index("trip_start_timestamp")] = "yesterday"
    bad = write_csv(tmp_path / "bad" / "data.csv", header, rows)
    with pytest.raises(
        DataError, match=r"data.csv line 5: trip_start_timestamp='yesterday' is not a Unix time"
    ):
        cut_spans(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_drift_between_two_years_names_the_real_change(years):
    result = CliRunner().invoke(
        app, ["data", "drift", str(years / "span-1"), str(years / "span-2"), "--json"]
    )
    assert result.exit_code == 1, result.output
    report = json.loads(result.output[result.output.index("{") :])
    by_feature = {f["feature"]: f for f in report["features"]}
    assert len(by_feature) == 15
    assert report["exceeded"] == ["payment_type"]
    assert by_feature["payment_type"]["comparator"] == "L-inf"
    assert by_feature["payment_type"]["distance"] == pytest.approx(0.069, abs=0.001)
    assert by_feature["payment_type"]["threshold"] == pytest.approx(0.05)
    assert by_feature["trip_miles"]["comparator"] == "JSD"
    assert 0 < by_feature["trip_miles"]["distance"] < 0.75


def test_drift_of_a_dataset_with_itself_is_zero(years):
    result = CliRunner().invoke(app, ["data", "drift", str(years / "span-2"), str(years / "span-2")])
    assert result.exit_code == 0, result.output
    assert "0 of 15 features beyond threshold" in result.output


def test_drift_of_a_missing_directory_is_one_line(tmp_path, years):
    result = CliRunner().invoke(app, ["data", "drift", str(tmp_path / "nope"), str(years / "span-2")])
    assert result.exit_code == 1
    assert "does not exist" in result.output and "Traceback" not in result.output


def test_schema_validate_serving_data_without_the_label_source(tmp_path):
    header, rows = read_rows()
    tips = header.index("tips")
    serving = write_csv(
        tmp_path / "serving.csv",
        [c for c in header if c != "tips"],
        [[v for i, v in enumerate(r) if i != tips] for r in rows[:2000]],
    )
    ok = CliRunner().invoke(app, ["schema", "validate", str(serving), "--environment", "SERVING"])
    assert ok.exit_code == 0, ok.output
    assert "No anomalies" in ok.output
    as_training = CliRunner().invoke(app, ["schema", "validate", str(serving)])
    assert as_training.exit_code == 1
    assert "tips" in as_training.output


def test_schema_validate_names_a_required_feature_missing_from_serving_data(tmp_path):
    header, rows = read_rows()
    drop = {header.index("tips"), header.index("fare")}
    serving = write_csv(
        tmp_path / "serving.csv",
        [c for i, c in enumerate(header) if i not in drop],
        [[v for i, v in enumerate(r) if i not in drop] for r in rows[:2000]],
    )
    result = CliRunner().invoke(
        app, ["schema", "validate", str(serving), "--environment", "SERVING", "--json"]
    )
    assert result.exit_code == 1
    found = json.loads(result.output[result.output.index("{") :])["anomalies"]
    assert [(a["feature"], a["kind"]) for a in found] == [("fare", "SCHEMA_MISSING_COLUMN")]


def test_schema_validate_reads_the_servers_request_log(tmp_path):
    import tensorflow as tf

    header, rows = read_rows()
    numeric = {
        "fare",
        "trip_miles",
        "pickup_latitude",
        "pickup_longitude",
        "dropoff_latitude",
        "dropoff_longitude",
    }
    with tf.io.TFRecordWriter(str(tmp_path / "requests-0.tfrecord")) as writer:
        for row in rows[:500]:
            ex = tf.train.Example()
            for name, value in zip(header, row, strict=True):
                if name == "tips" or value == "":
                    continue
                f = ex.features.feature[name]
                if name in numeric:
                    f.float_list.value.append(float(value))
                elif name in ("payment_type", "company"):
                    f.bytes_list.value.append(value.encode())
                else:
                    f.int64_list.value.append(int(float(value)))
            ex.features.feature["output.probabilities"].float_list.value.append(0.3)
            ex.features.feature["serving.model_version"].int64_list.value.append(7)
            writer.write(ex.SerializeToString())
    result = CliRunner().invoke(
        app, ["schema", "validate", str(tmp_path), "--environment", "SERVING", "--json"]
    )
    found = json.loads(result.output[result.output.index("{") :])["anomalies"]
    # Empty CSV cells were left out of the examples: TFDV sees those features missing there.
    assert "output.probabilities" not in {a["feature"] for a in found}
    assert "serving.model_version" not in {a["feature"] for a in found}
    assert "tips" not in {a["feature"] for a in found}


def test_schema_validate_an_unknown_environment_is_one_line(tmp_path):
    result = CliRunner().invoke(app, ["schema", "validate", str(DATA_CSV), "--environment", "STAGING"])
    assert result.exit_code == 1
    assert "environment 'STAGING' is not in the schema; its environments: TRAINING, SERVING" in " ".join(
        result.output.split()
    )


def test_schema_diff_says_what_a_proposal_would_loosen(tmp_path):
    text = SCHEMA.read_text()
    proposed = text.replace('  value: "Dispute"\n', "").replace("max: 23", "max: 30")
    proposed = proposed.replace(
        '''feature {
  name: "company"''',
        '''feature {
  name: "tolls"
  type: FLOAT
}
feature {
  name: "company"''',
    )
    path = tmp_path / "proposed.pbtxt"
    path.write_text(proposed)
    lines = diff_schemas(read_schema(SCHEMA), read_schema(path))
    assert "+ feature tolls: added (FLOAT)" in lines
    assert "~ feature payment_type: string_domain.value drops Dispute" in lines
    assert "~ feature trip_start_hour: int_domain.max 23 -> 30" in lines
    assert len(lines) == 3
    result = CliRunner().invoke(app, ["schema", "diff", str(path)])
    assert result.exit_code == 1 and "3 difference(s)" in result.output
    same = CliRunner().invoke(app, ["schema", "diff", str(SCHEMA)])
    assert same.exit_code == 0 and "No differences" in same.output


def test_skew_between_training_and_serving_uses_the_skew_comparators(tmp_path):
    header, rows = read_rows()
    tips = header.index("tips")
    training = write_csv(tmp_path / "train" / "data.csv", header, rows[:4000])
    served = [[v for i, v in enumerate(r) if i != tips] for r in rows[4000:8000]]
    serving = write_csv(tmp_path / "serving" / "data.csv", [c for c in header if c != "tips"], served)
    result = CliRunner().invoke(app, ["data", "drift", str(training.parent), str(serving.parent), "--skew", "--json"])
    report = json.loads(result.output[result.output.index("{") :])
    by_feature = {f["feature"]: f for f in report["features"]}
    # Every skew_comparator of the schema; tips has none (absent in SERVING).
    assert len(by_feature) == 14 and "tips" not in by_feature
    assert by_feature["payment_type"]["comparator"] == "L-inf"
    # The same days' rides, split in two: all within thresholds.
    assert report["kind"] == "skew" and result.exit_code == (1 if report["exceeded"] else 0)
    # Cash turned to card in serving: the skew comparator flags it.
    pay = header.index("payment_type") - (1 if header.index("payment_type") > tips else 0)
    shifted = [r[:pay] + ["Credit Card" if r[pay] == "Cash" else r[pay]] + r[pay + 1 :] for r in served]
    write_csv(serving, [c for c in header if c != "tips"], shifted)
    result = CliRunner().invoke(app, ["data", "drift", str(training.parent), str(serving.parent), "--skew", "--json"])
    report = json.loads(result.output[result.output.index("{") :])
    assert result.exit_code == 1 and "payment_type" in report["exceeded"]


def test_schema_update_adds_only_the_new_column(tmp_path):
    header, rows = read_rows()
    tolls = [r + [f"{i % 3}.5"] for i, r in enumerate(rows)]
    data = write_csv(tmp_path / "data" / "data.csv", header + ["tolls"], tolls)
    out = tmp_path / "updated.pbtxt"
    before = SCHEMA.read_bytes()
    result = CliRunner().invoke(app, ["schema", "update", "--data", str(data.parent), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 change(s)" in result.output and "+ feature tolls: added (FLOAT)" in result.output
    assert diff_schemas(read_schema(SCHEMA), read_schema(out)) == ["+ feature tolls: added (FLOAT)"]
    assert out.read_text().startswith("# The curated schema")  # the curated comments kept
    assert SCHEMA.read_bytes() == before
    refused = CliRunner().invoke(app, ["schema", "update", "--data", str(data.parent), "--out", str(SCHEMA)])
    assert refused.exit_code == 1 and "is the schema in use" in refused.output


def test_schema_update_opens_a_closed_vocabulary_for_a_new_value(tmp_path):
    header, rows = read_rows()
    pay = header.index("payment_type")
    rows = [r[:pay] + ["Bitcoin" if i % 50 == 0 else r[pay]] + r[pay + 1 :] for i, r in enumerate(rows)]
    data = write_csv(tmp_path / "data" / "data.csv", header, rows)
    out = tmp_path / "updated.pbtxt"
    result = CliRunner().invoke(app, ["schema", "update", "--data", str(data.parent), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert diff_schemas(read_schema(SCHEMA), read_schema(out)) == [
        "~ feature payment_type: string_domain.value adds Bitcoin"
    ]
