"""Warm-up requests written into the exported model, so a server warms each version before it takes traffic.

TF Serving (and ``tfxp serve``) replays ``assets.extra/tf_serving_warmup_requests``,
a TFRecord file of ``PredictionLog`` protos, when it loads a version, before
the version is AVAILABLE: the first real requests then do not pay for tracing
and allocation (tensorflow/serving#385, #1414). The Trainer writes it into the
serving model directory, so every copy of the model (the Pusher's version
directory, a Vertex model upload) carries it.

The requests come from a few eval rows, for each signature a client calls:
``serving_default`` (raw features, the JSON API's signature) and
``serving_tf_example`` (serialized tf.Examples), at batch 1 and at the rows'
count, as Predict requests naming the signature.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np

from models.features import Dtype, FeatureSpec

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_RECORDS = 1000  # TF Serving refuses a version whose warm-up file has more (WarmupConsts::kMaxNumRecords)
WARMUP_ROWS = 8
# Signature -> how its inputs are built from rows; both are the model's own (models/signatures.py).
RAW_SIGNATURE = "serving_default"
EXAMPLE_SIGNATURE = "serving_tf_example"
EXAMPLE_INPUT = "examples"
_NUMPY = {Dtype.FLOAT: np.float32, Dtype.INT: np.int64, Dtype.STRING: object}


def first_examples(file_patterns: Iterable[str], count: int = WARMUP_ROWS) -> list[bytes]:
    """The first ``count`` serialized tf.Examples of TFRecord files (gzipped, as ExampleGen writes them)."""
    import tensorflow as tf

    out: list[bytes] = []
    for pattern in file_patterns:
        for path in sorted(tf.io.gfile.glob(pattern)):
            compression = "GZIP" if path.endswith(".gz") else ""
            for record in tf.data.TFRecordDataset(path, compression_type=compression).take(count - len(out)):
                out.append(record.numpy())
            if len(out) >= count:
                return out
    return out


def raw_inputs(examples: Sequence[bytes], spec: FeatureSpec) -> dict[str, np.ndarray]:
    """``serving_default``'s inputs for these examples: one [batch] array per raw feature.

    A missing value is NaN (float) or "" (string), as the signature reads them; 0 (int).
    """
    import tensorflow as tf

    parsed = [tf.train.Example.FromString(e).features.feature for e in examples]
    out = {}
    for f in spec.features:
        missing = {Dtype.FLOAT: np.nan, Dtype.INT: 0, Dtype.STRING: b""}[f.dtype]
        values = []
        for features in parsed:
            kind = features[f.name].WhichOneof("kind") if f.name in features else None
            listed = list(getattr(features[f.name], kind).value) if kind else []
            values.append(listed[0] if listed else missing)
        out[f.name] = np.array(values, dtype=_NUMPY[f.dtype])
    return out


def warmup_logs(examples: Sequence[bytes], spec: FeatureSpec) -> list:
    """PredictionLogs (Predict requests) for each served signature, at batch 1 and at ``len(examples)``."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    if not examples:
        raise ValueError("no examples to build warm-up requests from: the eval split is empty")
    logs = []
    batches = [examples[:1], examples] if len(examples) > 1 else [examples]
    for batch in batches:
        for signature, inputs in (
            (RAW_SIGNATURE, raw_inputs(batch, spec)),
            (EXAMPLE_SIGNATURE, {EXAMPLE_INPUT: np.array(batch, dtype=object)}),
        ):
            request = predict_pb2.PredictRequest()
            request.model_spec.signature_name = signature
            for key, value in inputs.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            logs.append(log)
    return logs


def write_warmup_requests(model_dir: str, logs: Sequence) -> str:
    """Write ``logs`` to ``<model_dir>/assets.extra/tf_serving_warmup_requests``; returns its path."""
    import tensorflow as tf

    if len(logs) > MAX_RECORDS:
        raise ValueError(f"{len(logs)} warm-up records: TF Serving refuses more than {MAX_RECORDS}")
    path = os.path.join(model_dir, WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path
