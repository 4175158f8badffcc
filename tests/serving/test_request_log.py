"""Sampled request logging: tf.Examples of features in and predictions out, rotated by size, read by TFDV."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import tensorflow as tf

from serving.config import RequestLogOptions, single_model
from tests.serving.conftest import copy_version, in_process_predictions

MAX_FILE_BYTES = 4096


def read_examples(files: list[Path]) -> list[tf.train.Example]:
    return [
        tf.train.Example.FromString(r)
        for r in tf.data.TFRecordDataset([str(f) for f in files]).as_numpy_iterator()
    ]


def test_logged_requests_hold_features_predictions_and_version(
    start_server: Any, pushed_model_dir: Path, tmp_path: Path, taxi_rows: list[dict[str, Any]]
) -> None:
    base = tmp_path / "taxi"
    copy_version(pushed_model_dir, base, 7)
    log_dir = tmp_path / "request_log"
    server = start_server(
        models=single_model("taxi", str(base)),
        request_log=RequestLogOptions(str(log_dir), sampling_rate=1.0, max_file_bytes=MAX_FILE_BYTES),
    )
    started = time.time()
    rows = taxi_rows[:3]
    for _ in range(8):
        response = httpx.post(
            f"{server.rest_url}/v1/models/taxi:predict", content=json.dumps({"instances": rows}), timeout=30
        )
        assert response.status_code == 200
    server.core.request_log.flush()

    files = sorted(log_dir.glob("requests-*.tfrecord"))
    assert len(files) >= 2, "the log should have rotated at 4 KiB"
    assert all(f.stat().st_size <= MAX_FILE_BYTES + 2048 for f in files)
    examples = read_examples(files)
    assert len(examples) == 8 * len(rows)
    expected = in_process_predictions(pushed_model_dir, rows)
    for i, example in enumerate(examples[:3]):
        f = example.features.feature
        assert f["fare"].float_list.value[0] == pytest.approx(rows[i]["fare"])
        assert f["company"].bytes_list.value[0] == rows[i]["company"].encode()
        assert f["trip_seconds"].int64_list.value[0] == rows[i]["trip_seconds"]
        assert f["output.probabilities"].float_list.value[0] == pytest.approx(expected[i], abs=1e-6)
        assert f["serving.model_version"].int64_list.value[0] == 7
        assert f["serving.model_name"].bytes_list.value[0] == b"taxi"
        assert f["serving.signature_name"].bytes_list.value[0] == b"serving_default"
        assert started - 1 <= f["serving.timestamp_micros"].int64_list.value[0] / 1e6 <= time.time() + 1


def test_tfdv_reads_the_log(start_server: Any, tiny_model_dir: Path, tmp_path: Path) -> None:
    import tensorflow_data_validation as tfdv

    copy_version(tiny_model_dir, tmp_path / "tiny", 1)
    log_dir = tmp_path / "log"
    server = start_server(
        models=single_model("tiny", str(tmp_path / "tiny")), request_log=RequestLogOptions(str(log_dir), 1.0)
    )
    rows = [{"x": float(i), "n": i, "tag": f"t{i % 3}"} for i in range(5)]
    httpx.post(
        f"{server.rest_url}/v1/models/tiny:predict", content=json.dumps({"instances": rows}), timeout=30
    )
    classify = {"signature_name": "classify", "examples": [{"x": 1.0}, {"x": -1.0}]}
    httpx.post(f"{server.rest_url}/v1/models/tiny:classify", content=json.dumps(classify), timeout=30)
    server.core.request_log.flush()

    stats = tfdv.generate_statistics_from_tfrecord(data_location=str(log_dir / "*.tfrecord"))
    (dataset,) = stats.datasets
    assert dataset.num_examples == 5 + 2
    names = {f.path.step[0] for f in dataset.features}
    assert {
        "x",
        "n",
        "tag",
        "output.doubled",
        "output.shout",
        "output.scores",
        "serving.model_version",
    } <= names


def test_logging_is_off_by_default(start_server: Any, tiny_model_dir: Path, tmp_path: Path) -> None:
    copy_version(tiny_model_dir, tmp_path / "tiny", 1)
    server = start_server(models=single_model("tiny", str(tmp_path / "tiny")))
    assert server.core.request_log is None
    assert not RequestLogOptions(str(tmp_path / "log")).enabled  # a directory alone does not turn it on
