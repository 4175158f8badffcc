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
from collections.abc import Iterable, Iterator
from typing import Any

import tensorflow as tf

from models.features import Dtype, FeatureSpec, Label, load_spec

CSV_PATTERN = "*.csv"


class DataError(ValueError):
    """The input data cannot be used; the message says where and why."""


@dataclasses.dataclass(frozen=True)
class CsvReport:
    files: tuple[str, ...]
    rows: int
    columns: tuple[str, ...]
    rows_without_label: int = 0


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
    root: str,
    required: Iterable[str] | None = None,
    partition_column: str = "",
    pattern: str = CSV_PATTERN,
    spec: FeatureSpec | None = None,
    missing_values: Iterable[str] = (),
) -> CsvReport:
    """Check every file matching ``pattern`` under ``root``; raise DataError on the first problem.

    ``required`` defaults to the columns of ``spec`` (the taxi spec if none),
    whose label is then checked against the values found. ``partition_column``,
    if given, must be present and filled on every row: the train/eval/test
    split hashes on it (``data.partition_feature``). Cells in
    ``missing_values`` count as empty.
    """
    if required is None:
        spec = spec or load_spec()
        required = spec.required_columns()
    required = tuple(required)
    missing = frozenset(missing_values) | {""}
    label = spec.label if spec else None
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
    labels = _LabelValues(label, missing)
    for path in files:
        file_header, file_rows = _check_file(path, required, partition_column, missing, labels)
        if header is not None and file_header != header:
            raise DataError(
                f"{path}: header differs from {files[0]}'s; every CSV file in {root} "
                "must have the same columns in the same order"
            )
        header = file_header
        rows += file_rows
    assert header is not None
    labels.check(root)
    return CsvReport(files=tuple(files), rows=rows, columns=header, rows_without_label=labels.rows_without)


class _LabelValues:
    """The label columns' values seen while reading, to check the label's expression against."""

    LIMIT = 20  # distinct values kept per column: enough to tell 0/1, two-valued and numeric apart

    def __init__(self, label: Label | None, missing: frozenset[str]) -> None:
        self.label = label
        self.missing = missing
        self.at: list[int] = []
        self.values: dict[str, set[str]] = {c: set() for c in (label.source_columns if label else ())}
        self.rows_without = 0

    def start(self, header: tuple[str, ...]) -> None:
        self.at = [header.index(c) for c in self.values if c in header]

    def add(self, row: list[str]) -> None:
        if not self.label or len(self.at) != len(self.values):
            return
        cells = [row[i].strip() for i in self.at]
        if any(c in self.missing for c in cells):
            self.rows_without += 1
            return
        for column, cell in zip(self.values, cells, strict=True):
            if len(self.values[column]) < self.LIMIT:
                self.values[column].add(cell)

    def check(self, root: str) -> None:
        label = self.label
        if not label:
            return
        field = f"label.expr={label.expr!r}"
        seen = self.values[label.column]
        shown = ", ".join(sorted(seen)[:6]) + (", ..." if len(seen) > 6 else "")
        if not seen:
            raise DataError(
                f"{root}: {field}: column {label.column!r} is empty (or missing) on every row, so no row has "
                "a label; fill it in, or declare the label on another column"
            )
        numbers = all(is_number(v) for v in seen)
        if label.bare and not (numbers and {float(v) for v in seen} <= {0.0, 1.0}):
            more = "+" if len(seen) >= self.LIMIT else ""
            how = "has two values" if len(seen) == 2 else f"has {len(seen)}{more} values"
            example = sorted(seen)[-1]
            raise DataError(
                f"{root}: {field} reads {label.column!r} as 0/1, but it {how} ({shown}); "
                f"name the positive value, e.g. label: {label.column} == {example}"
            )
        if isinstance(label.value, str) and label.value not in seen and len(seen) < self.LIMIT:
            raise DataError(
                f"{root}: {field}: {label.value!r} never appears in column {label.column!r} (values: {shown}); "
                "name one of its values"
            )
        if not isinstance(label.value, str) and not numbers:
            text = next(v for v in sorted(seen) if not is_number(v))
            raise DataError(
                f"{root}: {field} compares {label.column!r} with a number, but it holds text such as {text!r}; "
                f"compare it with a value instead, e.g. label: {label.column} == {text}"
            )
        if label.times and not all(is_number(v) for v in self.values[label.times]):
            raise DataError(f"{root}: {field}: column {label.times!r} must hold numbers to multiply")


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_file(
    path: str, required: tuple[str, ...], partition_column: str, missing: frozenset[str], labels: _LabelValues
) -> tuple[tuple[str, ...], int]:
    try:
        return _read_file(path, required, partition_column, missing, labels)
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


def _read_file(
    path: str, required: tuple[str, ...], partition_column: str, missing: frozenset[str], labels: _LabelValues
) -> tuple[tuple[str, ...], int]:
    with tf.io.gfile.GFile(path, "r") as f:
        reader = csv.reader(f)
        try:
            header = tuple(next(reader))
        except StopIteration:
            raise DataError(f"{path} is empty: expected a header row, then data rows") from None
        absent = [c for c in required if c not in header]
        if absent:
            label = labels.label
            why = (
                f" (the label {label.name!r} is {label.expr})"
                if label and set(absent) & set(label.source_columns)
                else ""
            )
            if partition_column in absent:
                why += f" ({partition_column!r} is data.partition_feature: the split hashes on it)"
            raise DataError(
                f"{path}: column(s) {', '.join(map(repr, absent))} missing from the header{why}; "
                "add them, or change the profile's feature spec (features:)"
            )
        labels.start(header)
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
            if partition is not None and row[partition].strip() in missing:
                raise DataError(
                    f"{path} line {reader.line_num}: {partition_column} is empty, but the train/eval/test "
                    f"split hashes on it (data.partition_feature); fill it in, or set data.partition_feature "
                    "to another column (empty hashes the whole row)"
                )
            labels.add(row)
            rows += 1
    if rows == 0:
        raise DataError(f"{path} has a header but no data rows: add data, or remove the file")
    return header, rows


def check_spec_schema(spec: FeatureSpec, schema_file: str) -> None:
    """Raise DataError, naming the feature and both files' words, where the spec and the schema disagree.

    Every feature and label column must be in the schema with the spec's type,
    and the label's own columns must be absent from the SERVING environment
    when the schema has one (serving requests do not carry them).
    """
    from tensorflow_metadata.proto.v0 import schema_pb2

    from validation.drift import read_schema  # here: validation imports this module

    schema = read_schema(schema_file)  # DataError naming the file when it cannot be read
    types = {f.name: f for f in schema.feature}
    want = {Dtype.FLOAT: schema_pb2.FLOAT, Dtype.INT: schema_pb2.INT, Dtype.STRING: schema_pb2.BYTES}
    for feature in spec.features:
        found = types.get(feature.name)
        if found is None:
            raise DataError(
                f"features.{feature.name} is not in the schema {schema_file}: add it there "
                "(`tfxp schema update --data DIR` proposes it), or remove it from the feature spec"
            )
        if found.type != want[feature.dtype]:
            raise DataError(
                f"features.{feature.name}.dtype={feature.dtype.value} disagrees with the schema {schema_file} "
                f"(type {schema_pb2.FeatureType.Name(found.type)}): make them agree"
            )
    serving = "SERVING" in schema.default_environment
    for column in spec.label.source_columns:
        found = types.get(column)
        if found is None:
            raise DataError(
                f"label.expr={spec.label.expr!r} reads {column!r}, which is not in the schema {schema_file}"
            )
        if serving and column in spec.label_only_columns and "SERVING" not in found.not_in_environment:
            raise DataError(
                f"label.expr={spec.label.expr!r}: the schema {schema_file} expects {column!r} when serving; "
                f'add not_in_environment: "SERVING" to its feature (requests do not carry the label)'
            )
