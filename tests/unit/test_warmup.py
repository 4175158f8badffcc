"""The warm-up requests the Trainer writes: real data rows in, TF Serving's PredictionLogs out."""

from __future__ import annotations

import csv
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from models.features import Dtype, load_spec
from models.warmup import MAX_RECORDS, WARMUP_FILE, first_examples, warmup_logs, write_warmup_requests
from tests.conftest import DATA_CSV

SPEC = load_spec()


def csv_examples(count: int) -> tuple[list[dict[str, str]], list[bytes]]:
    """The first ``count`` rows of data.csv, and the same rows as tf.Examples (empty cells left out)."""
    with open(DATA_CSV, newline="") as f:
        rows = list(itertools.islice(csv.DictReader(f), count))
    examples = []
    for row in rows:
        example = tf.train.Example()
        for feat in SPEC.features:
            cell = row[feat.name]
            if not cell:
                continue
            feature = example.features.feature[feat.name]
            if feat.dtype is Dtype.FLOAT:
                feature.float_list.value.append(float(cell))
            elif feat.dtype is Dtype.INT:
                feature.int64_list.value.append(int(float(cell)))
            else:
                feature.bytes_list.value.append(cell.encode())
        examples.append(example.SerializeToString())
    return rows, examples


def test_warmup_logs_are_predict_requests_for_both_serving_signatures(tmp_path: Path) -> None:
    rows, examples = csv_examples(8)
    logs = warmup_logs(examples, SPEC)
    path = write_warmup_requests(str(tmp_path), logs)
    assert path == str(tmp_path / WARMUP_FILE)
    records = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]
    assert [(r.WhichOneof("log_type"), r.predict_log.request.model_spec.signature_name) for r in records] == [
        ("predict_log", "serving_default"),
        ("predict_log", "serving_tf_example"),
        ("predict_log", "serving_default"),
        ("predict_log", "serving_tf_example"),
    ]
    batch1, tf_example1, batch8, tf_example8 = (r.predict_log.request for r in records)
    assert set(batch8.inputs) == {f.name for f in SPEC.features}
    assert list(tf.make_ndarray(tf_example8.inputs["examples"])) == examples
    assert list(tf.make_ndarray(tf_example1.inputs["examples"])) == examples[:1]
    assert tf.make_ndarray(batch1.inputs["fare"]).tolist() == [np.float32(rows[0]["fare"])]
    for feat in SPEC.features:
        got = tf.make_ndarray(batch8.inputs[feat.name])
        assert got.shape == (8,)
        for value, row in zip(got, rows, strict=True):
            cell = row[feat.name]
            if feat.dtype is Dtype.FLOAT:
                assert math.isnan(value) if not cell else value == np.float32(cell)
            elif feat.dtype is Dtype.INT:
                assert value == (int(float(cell)) if cell else 0)
            else:
                assert value == cell.encode()


def test_first_examples_reads_gzipped_tfrecords_across_files(tmp_path: Path) -> None:
    _, examples = csv_examples(5)
    split = tmp_path / "Split-eval"
    split.mkdir()
    for name, part in (("data-00000-of-00002.gz", examples[:2]), ("data-00001-of-00002.gz", examples[2:])):
        with tf.io.TFRecordWriter(str(split / name), options="GZIP") as writer:
            for e in part:
                writer.write(e)
    assert first_examples([str(split / "*")], 4) == examples[:4]
    assert first_examples([str(split / "*")], 50) == examples


def test_a_single_row_gives_one_request_per_signature_and_the_limit_is_tf_servings(tmp_path) -> None:
    _, examples = csv_examples(1)
    logs = warmup_logs(examples, SPEC)
    assert len(logs) == 2
    # TF Serving refuses a version whose warm-up file holds more than 1,000 records: never written.
    with pytest.raises(ValueError, match="1001 warm-up records: TF Serving refuses more than 1000"):
        write_warmup_requests(str(tmp_path), [logs[0]] * (MAX_RECORDS + 1))
    assert not (tmp_path / WARMUP_FILE).exists()
