"""Sampled request/response logging for monitoring, in a format TFDV reads.

Each sampled request becomes one ``tf.Example`` per batch row in a TFRecord
file: the input features under their own names, the outputs as
``output.<name>``, and ``serving.model_name``, ``serving.model_version``,
``serving.signature_name``, ``serving.timestamp_micros`` and
``serving.request_id``. Read them with
``tfdv.generate_statistics_from_tfrecord(data_location="<dir>/*.tfrecord")``
and compare with the training statistics to spot skew and drift.

Files are only ever appended to; a new file starts once one reaches
``max_file_bytes``, and the oldest are removed beyond ``max_files``. Writing
happens on a background thread behind a bounded queue: when it falls behind,
samples are dropped and counted, never buffered without bound.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from serving.config import RequestLogOptions

logger = logging.getLogger(__name__)

FILE_PREFIX = "requests"
_QUEUE_SIZE = 1000
_MAX_FILES = 20


@dataclasses.dataclass(frozen=True)
class LogRecord:
    model_name: str
    model_version: int
    signature_name: str
    timestamp: float
    inputs: Mapping[str, np.ndarray]  # predict: batch-major tensors
    outputs: Mapping[str, np.ndarray]
    examples: tuple[bytes, ...] = ()  # classify/regress: the serialized examples instead of inputs
    request_id: str = ""  # the client's X-Request-Id, or the server's: joins later ground truth to the row


class RequestLogger:
    def __init__(self, options: RequestLogOptions, on_drop: Callable[[], None] | None = None) -> None:
        self._options = options
        self._dir = Path(options.directory)
        self._dir.mkdir(parents=True, exist_ok=True)
        self._on_drop = on_drop
        self._queue: queue.Queue[LogRecord | None] = queue.Queue(maxsize=_QUEUE_SIZE)
        self._writer: Any = None
        self._file: Path | None = None
        self._written = 0
        self._seq = 0
        self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
        self._thread.start()
        logger.info(
            "logging %.1f%% of requests to %s (new file every %d bytes)",
            100 * options.sampling_rate,
            self._dir,
            options.max_file_bytes,
        )

    def sample(self) -> bool:
        return random.random() < self._options.sampling_rate

    def log(self, record: LogRecord) -> None:
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            if self._on_drop is not None:
                self._on_drop()

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every queued record is written (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def files(self) -> list[Path]:
        return sorted(self._dir.glob(f"{FILE_PREFIX}-*.tfrecord"))

    def _run(self) -> None:
        while True:
            record = self._queue.get()
            try:
                if record is None:
                    if self._writer is not None:
                        self._writer.close()
                    return
                self._write(record)
            except OSError as exc:
                logger.error("request log: cannot write to %s: %s", self._dir, exc)
            finally:
                self._queue.task_done()

    def _write(self, record: LogRecord) -> None:
        import tensorflow as tf

        for example in _examples(record):
            data = example.SerializeToString()
            if self._writer is None or self._written >= self._options.max_file_bytes:
                self._rotate(tf)
            self._writer.write(data)
            self._written += len(data) + 16  # TFRecord framing: length, 2 CRCs
        self._writer.flush()

    def _rotate(self, tf: Any) -> None:
        if self._writer is not None:
            self._writer.close()
        self._seq += 1
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        self._file = self._dir / f"{FILE_PREFIX}-{stamp}-{os.getpid()}-{self._seq:05d}.tfrecord"
        self._writer = tf.io.TFRecordWriter(str(self._file))
        self._written = 0
        for old in self.files()[:-_MAX_FILES]:
            old.unlink(missing_ok=True)


def _examples(record: LogRecord) -> list[Any]:
    from tensorflow.core.example import example_pb2

    meta = {
        "serving.model_name": np.array([record.model_name.encode()], dtype=object),
        "serving.model_version": np.array([record.model_version], dtype=np.int64),
        "serving.signature_name": np.array([record.signature_name.encode()], dtype=object),
        "serving.timestamp_micros": np.array([int(record.timestamp * 1e6)], dtype=np.int64),
        "serving.request_id": np.array([record.request_id.encode()], dtype=object),
    }
    rows = _rows(record.outputs)
    if record.examples:
        bases = [example_pb2.Example.FromString(e) for e in record.examples]
    else:
        bases = [example_pb2.Example() for _ in range(rows)]
        if _rows(record.inputs) == rows:
            for i, ex in enumerate(bases):
                _fill(ex, {k: v[i] for k, v in record.inputs.items()}, "")
        else:  # no common batch dimension: keep whole tensors on one example
            bases = bases[:1] or [example_pb2.Example()]
            _fill(bases[0], record.inputs, "")
    for i, ex in enumerate(bases):
        outputs = {k: v[i] for k, v in record.outputs.items()} if rows == len(bases) else record.outputs
        _fill(ex, outputs, "output.")
        _fill(ex, meta, "")
    return bases


def _rows(tensors: Mapping[str, np.ndarray]) -> int:
    sizes = {v.shape[0] if v.ndim else -1 for v in tensors.values()}
    return sizes.pop() if len(sizes) == 1 and -1 not in sizes else 1


def _fill(example: Any, tensors: Mapping[str, Any], prefix: str) -> None:
    for name, value in tensors.items():
        arr = np.asarray(value).reshape(-1)
        feature = example.features.feature[prefix + name]
        if arr.dtype.kind == "f":
            feature.float_list.value.extend(arr.astype(np.float32).tolist())
        elif arr.dtype.kind in "iub":
            feature.int64_list.value.extend(arr.astype(np.int64).tolist())
        else:
            feature.bytes_list.value.extend(
                v if isinstance(v, bytes) else str(v).encode() for v in arr.tolist()
            )
