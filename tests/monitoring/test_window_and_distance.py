"""Request-log windows and the monitor's distances, on rows and values we construct."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from models.features import load_spec
from monitoring.distance import drop_missing_encodings, jsd, linf, values_by_feature
from monitoring.monitor import MonitorResult, VersionSkew, prometheus_text
from monitoring.window import LoggedRow, parse_duration, parse_time, read_request_log, select_windows
from pipeline.data_check import DataError
from validation.drift import Distance


def _rows(n: int, start: float = 1000.0) -> list[LoggedRow]:
    return [LoggedRow(start + i, "taxi", 1, f"r{i}", 0.5, b"") for i in range(n)]


def test_windows_by_rows_duration_and_time():
    rows = _rows(10)
    w = select_windows(rows, last_rows=3)
    assert [r.request_id for r in w.current] == ["r7", "r8", "r9"]
    assert [r.request_id for r in w.previous] == ["r4", "r5", "r6"]
    w = select_windows(rows, duration=4, now=1009.5)  # (1005.5, 1009.5] and (1001.5, 1005.5]
    assert [r.request_id for r in w.current] == ["r6", "r7", "r8", "r9"]
    assert [r.request_id for r in w.previous] == ["r2", "r3", "r4", "r5"]
    w = select_windows(rows, since=1008)
    assert [r.request_id for r in w.current] == ["r8", "r9"] and [r.request_id for r in w.previous] == ["r6", "r7"]
    assert select_windows(rows, last_rows=20).previous == []
    with pytest.raises(ValueError, match="choose the window one way"):
        select_windows(rows, last_rows=3, since=1.0)


def test_durations_and_times_parse_or_say_how():
    assert parse_duration("90s") == 90 and parse_duration("15m") == 900 and parse_duration("2h") == 7200
    with pytest.raises(ValueError, match="write a number and a unit, e.g. 90s, 15m, 2h or 1d"):
        parse_duration("soon")
    assert parse_time("2026-12-01T00:00") == parse_time("2026-12-01T00:00+00:00") == 1796083200.0
    with pytest.raises(ValueError, match="give an ISO time"):
        parse_time("yesterday")


def test_linf_and_jsd_measure_what_they_should():
    assert linf([b"a"] * 50 + [b"b"] * 50, [b"a"] * 80 + [b"b"] * 20) == pytest.approx(0.3)
    rng = np.random.default_rng(0)
    reference = np.concatenate([rng.lognormal(2, 0.5, 10000), [700.0, 650.0]])  # far outliers, as fares have
    assert jsd(reference, rng.lognormal(2, 0.5, 600)) < 0.02  # a small unshifted sample is not skewed
    assert jsd(reference, 3 * rng.lognormal(2, 0.5, 600)) > 0.3  # tripled values are
    hours = rng.integers(0, 24, 5000)
    assert jsd(hours, rng.integers(0, 24, 600)) < 0.05  # few distinct integers: compared value by value
    assert jsd(hours, np.full(600, 3)) > 0.5


def test_missing_encodings_are_read_as_missing():
    spec = load_spec()
    reference = {"company": [b"Flash Cab"], "dropoff_community_area": [8, 32], "trip_start_hour": [0, 5], "fare": [1.0]}
    served = {
        "company": [b"", b"Flash Cab"],
        "dropoff_community_area": [0, 8],  # 0 fills a missing area; no area is 0 in training
        "trip_start_hour": [0, 5],  # 0 is a real hour
        "fare": [float("nan"), 2.0],
    }
    cleaned = drop_missing_encodings(served, spec, reference)
    assert cleaned == {
        "company": [b"Flash Cab"],
        "dropoff_community_area": [8],
        "trip_start_hour": [0, 5],
        "fare": [2.0],
    }


def test_values_come_from_serialized_examples():
    ex = tf.train.Example()
    ex.features.feature["fare"].float_list.value.append(3.5)
    ex.features.feature["company"].bytes_list.value.append(b"X")
    ex.features.feature["empty"].float_list.value[:] = []
    got = values_by_feature([ex.SerializeToString()] * 2, ["fare", "company", "empty", "absent"])
    assert got == {"fare": [3.5, 3.5], "company": [b"X", b"X"], "empty": [], "absent": []}


def test_a_truncated_or_malformed_record_is_skipped_and_counted(tmp_path):
    good = tf.train.Example()
    good.features.feature["serving.timestamp_micros"].int64_list.value.append(2_000_000)
    good.features.feature["serving.model_version"].int64_list.value.append(7)
    good.features.feature["serving.model_name"].bytes_list.value.append(b"taxi")
    good.features.feature["serving.request_id"].bytes_list.value.append(b"abc")
    good.features.feature["output.probabilities"].float_list.value.append(0.25)
    good.features.feature["fare"].float_list.value.append(9.0)
    path = tmp_path / "requests-1.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as w:
        w.write(good.SerializeToString())
        w.write(b"\xff not a proto")
        w.write(good.SerializeToString())
    data = path.read_bytes()
    path.write_bytes(data + data[:20])  # a torn write at the end, as a crash leaves it
    read = read_request_log(tmp_path)
    assert (len(read.rows), read.skipped, read.files) == (2, 2, 1)
    row = read.rows[0]
    assert (row.timestamp, row.version, row.model_name, row.request_id, row.prediction) == (2.0, 7, "taxi", "abc", 0.25)
    assert set(tf.train.Example.FromString(row.example).features.feature) == {"fare"}  # server fields stripped


def test_no_log_says_what_to_turn_on(tmp_path):
    with pytest.raises(DataError, match="does not exist: serve with `tfxp serve --request_log_dir"):
        read_request_log(tmp_path / "nope")
    with pytest.raises(DataError, match="holds no request log"):
        read_request_log(tmp_path)


def test_prometheus_textfile_names_every_distance():
    result = MonitorResult(
        "/log",
        200,
        200,
        0,
        1.0,
        2.0,
        {3: 200},
        skew=[VersionSkew(3, 200, [Distance("fare", "JSD", 0.5, 0.12)])],
        drift=[Distance("payment_type", "L-inf", 0.01, 0.05)],
        predictions=[],
        notes=[],
        min_rows=100,
    )
    text = prometheus_text(result, "taxi")
    assert 'tfxp_monitor_alert{model="taxi"} 1\n' in text
    assert 'tfxp_monitor_skew_distance{model="taxi",version="3",feature="fare",comparator="JSD"} 0.5\n' in text
    assert 'tfxp_monitor_drift_distance{model="taxi",feature="payment_type",comparator="L-inf"} 0.01\n' in text
    assert result.exit_code == 5 and result.alerts == ["skew v3: fare JSD 0.5000 > 0.12"]
