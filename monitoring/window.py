"""The server's request log, read back as rows, and the windows ``tfxp monitor`` compares.

The log (``serving/request_log.py``) holds one ``tf.Example`` per served row:
the request's features under their own names, the outputs as ``output.*``,
and ``serving.*`` (model, version, timestamp, request id). A record that is
truncated or does not parse is skipped and counted, never fatal: the server
may be writing the newest file while it is read.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

from pipeline.data_check import DataError
from validation.stats import SERVER_PREFIXES

FILE_GLOB = "requests-*.tfrecord"
PREDICTION = "output.probabilities"


@dataclasses.dataclass(frozen=True)
class LoggedRow:
    timestamp: float  # unix seconds
    model_name: str
    version: int
    request_id: str
    prediction: float | None
    example: bytes  # the request's features alone, as a serialized tf.Example


@dataclasses.dataclass(frozen=True)
class LogRead:
    rows: list[LoggedRow]  # oldest first
    skipped: int  # truncated or malformed records
    files: int


def read_request_log(directory: Path) -> LogRead:
    """Every row of the log in ``directory``, oldest first; DataError if there is no log to read."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.example import example_pb2

    if not directory.is_dir():
        raise DataError(
            f"request log directory {directory} does not exist: serve with "
            f"`tfxp serve --request_log_dir {directory} --request_log_sampling_rate 1.0` (or a fraction) first"
        )
    files = sorted(directory.glob(FILE_GLOB))
    if not files:
        raise DataError(
            f"{directory} holds no request log ({FILE_GLOB}): turn logging on with "
            "`tfxp serve --request_log_dir DIR --request_log_sampling_rate 1.0` and send traffic"
        )
    rows: list[LoggedRow] = []
    skipped = 0
    for path in files:
        records, broken = _records(path)
        skipped += broken
        for record in records:
            try:
                example = example_pb2.Example.FromString(record)
            except DecodeError:
                skipped += 1
                continue
            row = _row(example)
            if row is None:
                skipped += 1
            else:
                rows.append(row)
    rows.sort(key=lambda r: r.timestamp)
    return LogRead(rows, skipped, len(files))


def _records(path: Path) -> tuple[list[bytes], int]:
    """The file's complete records, and 1 if it ends in a truncated or corrupt one."""
    import tensorflow as tf

    records: list[bytes] = []
    try:
        for record in tf.data.TFRecordDataset(str(path)):
            records.append(record.numpy())
    except (tf.errors.DataLossError, tf.errors.OutOfRangeError):
        return records, 1
    return records, 0


def _row(example: object) -> LoggedRow | None:
    feature = example.features.feature  # type: ignore[attr-defined]
    try:
        timestamp = feature["serving.timestamp_micros"].int64_list.value[0] / 1e6
        version = int(feature["serving.model_version"].int64_list.value[0])
        name = feature["serving.model_name"].bytes_list.value[0].decode()
    except (IndexError, KeyError, UnicodeDecodeError):
        return None
    request_id = b"".join(feature["serving.request_id"].bytes_list.value).decode(errors="replace")
    scores = feature[PREDICTION].float_list.value if PREDICTION in feature else []
    for key in [k for k in feature if k.startswith(SERVER_PREFIXES)]:
        del feature[key]
    return LoggedRow(timestamp, name, version, request_id, scores[0] if scores else None, example.SerializeToString())  # type: ignore[attr-defined]


@dataclasses.dataclass(frozen=True)
class Windows:
    current: list[LoggedRow]
    previous: list[LoggedRow]  # the same size (rows or duration) just before; empty if none


def select_windows(
    rows: Sequence[LoggedRow],
    *,
    last_rows: int | None = None,
    duration: float | None = None,
    since: float | None = None,
    now: float | None = None,
) -> Windows:
    """The window to judge and the one before it.

    ``last_rows``: the newest N rows, and the N before them. ``duration``: the
    rows of the last ``duration`` seconds (before ``now``), and the same span
    before. ``since``: every row from that time on, and as many rows before it.
    """
    if sum(x is not None for x in (last_rows, duration, since)) != 1:
        raise ValueError("choose the window one way: --rows N, --window DURATION or --since TIME")
    ordered = sorted(rows, key=lambda r: r.timestamp)
    if last_rows is not None:
        if last_rows < 1:
            raise ValueError(f"--rows {last_rows}: give a positive number of rows")
        current = ordered[-last_rows:]
        previous = ordered[-2 * last_rows : -last_rows] if len(ordered) > last_rows else []
        return Windows(current, previous)
    if duration is not None:
        end = now if now is not None else time.time()
        current = [r for r in ordered if end - duration < r.timestamp <= end]
        previous = [r for r in ordered if end - 2 * duration < r.timestamp <= end - duration]
        return Windows(current, previous)
    assert since is not None
    current = [r for r in ordered if r.timestamp >= since]
    before = [r for r in ordered if r.timestamp < since]
    return Windows(current, before[-len(current) :] if current else [])


def parse_duration(text: str) -> float:
    """'90s', '15m', '2h', '1d' -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        value, unit = float(text[:-1]), units[text[-1]]
    except (ValueError, KeyError, IndexError):
        raise ValueError(f"--window {text!r}: write a number and a unit, e.g. 90s, 15m, 2h or 1d") from None
    if value <= 0:
        raise ValueError(f"--window {text!r}: must be positive")
    return value * unit


def parse_time(text: str) -> float:
    """An ISO 8601 time (UTC if no zone) or unix seconds -> unix seconds."""
    import datetime as dt

    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--since {text!r}: give an ISO time such as 2026-12-01T09:00 or unix seconds") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()
