"""The feedback join: logged requests + later ground truth -> a new span, with every problem counted."""

from __future__ import annotations

import csv

import pytest
import tensorflow as tf

from monitoring.retrain import build_feedback_span
from monitoring.window import LoggedRow
from pipeline.config import load_config
from pipeline.data_check import DataError


def _row(rid: str, fare: float) -> LoggedRow:
    ex = tf.train.Example()
    ex.features.feature["fare"].float_list.value.append(fare)
    ex.features.feature["payment_type"].bytes_list.value.append(b"Cash")
    return LoggedRow(1.0, "taxi", 1, rid, 0.5, ex.SerializeToString())


@pytest.fixture
def cfg(tmp_path):
    (tmp_path / "data" / "span-1").mkdir(parents=True)
    return load_config("spans", {"output_dir": str(tmp_path / "out"), "data.root": str(tmp_path / "data")})


def test_the_window_joined_with_feedback_becomes_the_next_span(cfg, tmp_path):
    (tmp_path / "data" / "span-1" / "data.csv").write_text("x\n1\n")
    feedback = tmp_path / "feedback.csv"
    feedback.write_text("request_id,tips,trip_start_timestamp\na,1.5,100\nb,0,200\nb,9,300\nzzz,1,400\n")
    built = build_feedback_span(cfg, [_row("a", 10.0), _row("b", 5.0), _row("c", 7.0)], feedback)
    assert (built.span, built.rows, built.without_label, built.unknown_ids, built.duplicates) == (2, 2, 1, 1, 1)
    assert built.path == tmp_path / "data" / "span-2" / "feedback.csv"
    with open(built.path, newline="") as f:
        records = list(csv.DictReader(f))
    assert [(r["fare"], r["payment_type"], r["tips"], r["trip_start_timestamp"]) for r in records] == [
        ("10.0", "Cash", "1.5", "100"), ("5.0", "Cash", "0", "200")  # the first of b's two rows
    ]
    assert records[0]["company"] == ""  # not in the request: missing, as an empty CSV cell


def test_a_feedback_file_without_the_label_column_is_one_line(cfg, tmp_path):
    feedback = tmp_path / "feedback.csv"
    feedback.write_text("request_id,tip\na,1\n")
    with pytest.raises(DataError, match=r"column\(s\) tips missing from the header; a feedback file has request_id"):
        build_feedback_span(cfg, [_row("a", 1.0)], feedback)
    assert not (tmp_path / "data" / "span-2").exists()
