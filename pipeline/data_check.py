"""Checks a CSV data directory before any TFX work starts.

CsvExampleGen's own errors on malformed CSV are deep Beam stack traces; these
checks name the file, line and column, and say what to do. Value types are
not checked here: a string in a numeric column is a schema anomaly, found by
ExampleValidator and stopped by the anomalies gate.
"""

from __future__ import annotations

import csv
import dataclasses
import re
from typing import Any, Iterable, Iterator

import tensorflow as tf

from models.features import LABEL, required_columns

CSV_PATTERN = "*.csv"


class DataError(ValueError):
    """The input data cannot be used; the message says where and why."""


@dataclasses.dataclass(frozen=True)
class CsvReport:
    files: tuple[str, ...]
    rows: int
    columns: tuple[str, ...]


def find_spans(root: str, span_pattern: str) -> dict[int, str]:
    """The spans under ``root`` matching ``span_pattern`` (with ``{SPAN}``): number -> resolved pattern."""
    prefix, _, rest = span_pattern.partition("{SPAN}")
    found: dict[int, str] = {}
    for path in tf.io.gfile.glob(f"{root.rstrip('/')}/{span_pattern.replace('{SPAN}', '*')}"):
        relative = path[len(root.rstrip("/")) + 1 :]
        tail = relative[len(prefix) :]
        digits = re.match(r"\d+", tail)
        if relative.startswith(prefix) and digits:
            found[int(digits.group())] = f"{prefix}{digits.group()}{rest}"
    return dict(sorted(found.items()))


def span_input(root: str, span_pattern: str, span: int | None) -> tuple[int, str]:
    """(span number, file pattern) of the span a run ingests: ``span``, or the latest.

    Raises DataError naming the directory, the pattern and the spans found.
    """
    if not tf.io.gfile.isdir(root):
        raise DataError(f"data directory {root} does not exist: pass --data with the directory holding the spans")
    spans = find_spans(root, span_pattern)
    if not spans:
        raise DataError(
            f"{root} has no span matching {span_pattern}: cut a CSV into spans with "
            f"`tfxp data spans --by year --out {root}`, or set data.span_pattern to the layout you have"
        )
    if span is None:
        span = max(spans)
    if span not in spans:
        directory = f"{root.rstrip('/')}/{span_pattern.replace('{SPAN}', str(span)).rsplit('/', 1)[0]}"
        if "/" in span_pattern and tf.io.gfile.isdir(directory):
            raise DataError(
                f"span {span}'s directory {directory} has no files matching {span_pattern}: "
                "put the span's CSV files there, or remove the directory"
            )
        raise DataError(
            f"span {span} does not exist under {root} ({span_pattern}); spans found: "
            f"{', '.join(map(str, spans))}: pass --span with one of them, or omit it for the latest"
        )
    return span, spans[span]


def check_csv_dir(
    root: str, required: Iterable[str] | None = None, partition_column: str = "", pattern: str = CSV_PATTERN
) -> CsvReport:
    """Check every file matching ``pattern`` under ``root``; raise DataError on the first problem.

    ``partition_column``, if given, must be present and filled on every row:
    the train/eval/test split hashes on it (``data.partition_feature``).
    """
    required = tuple(required if required is not None else required_columns())
    if partition_column and partition_column not in required:
        required += (partition_column,)
    if not tf.io.gfile.isdir(root):
        raise DataError(f"data directory {root} does not exist: pass --data with a directory of CSV files")
    files = sorted(tf.io.gfile.glob(f"{root.rstrip('/')}/{pattern}"))
    if not files:
        where = f"{root}/{pattern.rpartition('/')[0]}" if "/" in pattern else root
        raise DataError(
            f"data directory {where} has no CSV files (looked for {pattern}): "
            "put the training data there as CSV with a header row"
        )
    header: tuple[str, ...] | None = None
    rows = 0
    for path in files:
        file_header, file_rows = _check_file(path, required, partition_column)
        if header is not None and file_header != header:
            raise DataError(
                f"{path}: header differs from {files[0]}'s; every CSV file in {root} "
                "must have the same columns in the same order"
            )
        header = file_header
        rows += file_rows
    assert header is not None
    return CsvReport(files=tuple(files), rows=rows, columns=header)


def _check_file(path: str, required: tuple[str, ...], partition_column: str) -> tuple[tuple[str, ...], int]:
    try:
        return _read_file(path, required, partition_column)
    except UnicodeDecodeError:
        line, raw = _first_non_utf8_line(path)
        raise DataError(
            f"{path} line {line}: bytes that are not UTF-8 ({raw!r}); "
            "re-export the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        ) from None


def _first_non_utf8_line(path: str) -> tuple[int, bytes]:
    with tf.io.gfile.GFile(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return number, line[max(0, exc.start - 8) : exc.end + 8]
    return 0, b""


def _rows(path: str, reader: Any) -> Iterator[list[str]]:
    """The reader's rows, with a csv.Error turned into a DataError naming the line."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(
                f"{path} line {reader.line_num}: {exc} (a value longer than {csv.field_size_limit():,} "
                "characters: a lost newline, an unclosed quote or a binary file); fix or remove that line"
            ) from None
        yield row


def _read_file(path: str, required: tuple[str, ...], partition_column: str) -> tuple[tuple[str, ...], int]:
    with tf.io.gfile.GFile(path, "r") as f:
        reader = csv.reader(f)
        try:
            header = tuple(next(reader))
        except StopIteration:
            raise DataError(f"{path} is empty: expected a header row, then data rows") from None
        missing = [c for c in required if c not in header]
        if missing:
            label_cols = [c for c in missing if c in LABEL.source_columns]
            why = (
                f" (the label {LABEL.name!r} is computed from {' and '.join(LABEL.source_columns)})"
                if label_cols
                else ""
            )
            if partition_column in missing:
                why += f" ({partition_column!r} is data.partition_feature: the split hashes on it)"
            raise DataError(
                f"{path}: column(s) {', '.join(map(repr, missing))} missing from the header{why}; "
                "add them, or change the feature spec in models/features.py"
            )
        partition = header.index(partition_column) if partition_column else None
        rows = 0
        for row in _rows(path, reader):
            if not row:
                continue
            if len(row) != len(header):
                raise DataError(
                    f"{path} line {reader.line_num}: {len(row)} values but the header has "
                    f"{len(header)} columns; fix or remove that row (quote values that contain commas)"
                )
            if partition is not None and not row[partition].strip():
                raise DataError(
                    f"{path} line {reader.line_num}: {partition_column} is empty, but the train/eval/test "
                    f"split hashes on it (data.partition_feature); fill it in, or set data.partition_feature "
                    "to another column (empty hashes the whole row)"
                )
            rows += 1
    if rows == 0:
        raise DataError(f"{path} has a header but no data rows: add data, or remove the file")
    return header, rows
