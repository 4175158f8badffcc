"""``tfxp init``: a profile, a feature spec and a curated schema for a CSV that is not taxi.

Each column's kind is read from TFDV statistics of the data, computed as the
pipeline computes them (``validation.stats``, with the missing-value tokens):
- a string column with a few values is a vocabulary (a slice key if it has
  at most ``SLICE_MAX_VALUES``), one with a value on most rows is an ID and is
  left out, as is a constant column;
- an integer column with a small non-negative range is a set of ids, any
  other number a z-scored value (after log1p when it is non-negative and
  skewed).
The profile holds the spec, the label, relative floors (the model must beat
the majority class and the best single-feature rule, measured in the same
run) and the path of the schema written beside it. Nothing tracked in git is
written: only ``--out`` and the schema next to it.
"""

from __future__ import annotations

import csv
import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

from models.features import Dtype, Feature, FeatureSpec, Kind, Label
from pipeline.config import MISSING_VALUES, from_dict
from pipeline.data_check import DataError, check_csv_dir

SLICE_MAX_VALUES = 10  # a categorical with at most this many values is a slice key
ID_SHARE = 0.5  # a string or integer column whose distinct values exceed this share of rows is an ID
VOCAB_MAX = 1000  # larger vocabularies keep their most frequent values
INT_IDS_MAX = 64  # an integer column within [0, INT_IDS_MAX) is a set of ids
DRIFT_THRESHOLD = 0.1  # each feature's drift/skew comparator; review after a few spans


@dataclasses.dataclass(frozen=True)
class Decision:
    column: str
    verdict: str  # "feature", "label" or "left out"
    why: str


@dataclasses.dataclass(frozen=True)
class InitResult:
    profile: Path
    schema: Path
    spec: FeatureSpec
    decisions: list[Decision]
    rows: int
    rows_without_label: int
    partition_feature: str
    review: list[str]


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return (slug or "my-data")[:60]


def _distinct_ints(files: tuple[str, ...], columns: list[str], missing: frozenset[str], cap: int) -> dict[str, int]:
    """Distinct values per integer column (counting stops at ``cap``): TFDV gives no unique count for numbers."""
    seen: dict[str, set[str]] = {c: set() for c in columns}
    for path in files:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            for row in reader:
                for c in columns:
                    value = (row.get(c) or "").strip()
                    if value not in missing and len(seen[c]) < cap:
                        seen[c].add(value)
    return {c: len(v) for c, v in seen.items()}


def _feature(name: str, stats: Any, rows: int, distinct: dict[str, int]) -> tuple[Feature | None, str]:
    """A column's feature (or None) from its TFDV statistics, and why."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    kind = stats.WhichOneof("stats")
    common = stats.string_stats.common_stats if kind == "string_stats" else stats.num_stats.common_stats
    present = common.num_non_missing
    if kind == "string_stats":
        unique = stats.string_stats.unique
        if unique <= 1:
            return None, "constant: one value on every row"
        if unique > ID_SHARE * rows:
            return None, f"ID-like: {unique} distinct values on {rows} rows"
        slice_key = unique <= SLICE_MAX_VALUES
        size = min(unique, VOCAB_MAX)
        return (
            Feature(name, Kind.VOCAB, Dtype.STRING, size=size, slice=slice_key),
            f"categorical, {unique} values" + (" (slice key)" if slice_key else ""),
        )
    num = stats.num_stats
    if num.min == num.max:
        return None, f"constant: {num.min:g} on every row"
    if stats.type == statistics_pb2.FeatureNameStatistics.INT:
        if distinct.get(name, 0) > ID_SHARE * rows:
            return None, f"ID-like: {distinct[name]} distinct integers on {rows} rows"
        if num.min >= 0 and num.max < INT_IDS_MAX:
            size = int(num.max) + 1
            slice_key = distinct.get(name, size) <= SLICE_MAX_VALUES
            return (
                Feature(name, Kind.CATEGORICAL_INT, Dtype.INT, size=size, slice=slice_key),
                f"integer ids 0-{int(num.max)}" + (" (slice key)" if slice_key else ""),
            )
    dtype = Dtype.INT if stats.type == statistics_pb2.FeatureNameStatistics.INT else Dtype.FLOAT
    skewed = num.min >= 0 and num.max > 10 * max(num.median, 1e-9)
    missing = f", {rows - present} missing" if present < rows else ""
    return (
        Feature(name, Kind.NUMERIC, dtype, log=skewed),
        f"numeric {num.min:g} to {num.max:g}" + (", log-scaled (skewed)" if skewed else "") + missing,
    )


def _schema(stats: Any, spec: FeatureSpec) -> Any:
    """TFDV's inferred schema, with SERVING without the label's own columns, and drift/skew comparators."""
    import tensorflow_data_validation as tfdv

    schema = tfdv.infer_schema(stats, infer_feature_shape=False)
    schema.default_environment.extend(["TRAINING", "SERVING"])
    for feature in schema.feature:
        if feature.name in spec.label_only_columns:
            feature.not_in_environment.append("SERVING")
        try:
            f = spec.feature(feature.name)
        except KeyError:
            continue
        comparators = (feature.drift_comparator, feature.skew_comparator)
        for comparator in comparators:
            if f.kind is Kind.VOCAB:
                comparator.infinity_norm.threshold = DRIFT_THRESHOLD
            else:
                comparator.jensen_shannon_divergence.threshold = DRIFT_THRESHOLD
    return schema


def init_profile(
    data: Path,
    label_expr: str,
    out: Path,
    name: str = "",
    force: bool = False,
    missing_values: tuple[str, ...] = MISSING_VALUES,
) -> InitResult:
    """Read ``data``'s CSV files, decide each column, write ``out`` and its schema; return what was decided.

    Raises DataError or ValueError (one line, naming the file or field).
    """
    from google.protobuf import text_format

    from validation.stats import statistics

    data, out = data.resolve(), out.resolve()
    if out.suffix not in (".yaml", ".yml"):
        raise ValueError(f"--out {out}: give a .yaml path for the profile")
    schema_path = out.with_name(f"{out.stem}.schema.pbtxt")
    if not force:
        for path in (out, schema_path):
            if path.exists():
                raise ValueError(f"{path} exists: choose another --out, or pass --force to overwrite it")
    label = Label(label_expr, name=_label_name(label_expr))
    report = check_csv_dir(str(data), required=(), missing_values=missing_values)
    for column in label.source_columns:
        if column not in report.columns:
            raise DataError(
                f"label.expr={label_expr!r} reads column {column!r}, which is not in the header of "
                f"{report.files[0]} (columns: {', '.join(report.columns)})"
            )
    stats_list = statistics(data, missing_values=missing_values)
    stats = stats_list.datasets[0]
    rows = int(stats.num_examples)
    by_name = {f.path.step[0]: f for f in stats.features}
    ints = [c for c, f in by_name.items() if f.type == f.INT]
    distinct = _distinct_ints(report.files, ints, frozenset(missing_values) | {""}, cap=rows + 1)
    decisions: list[Decision] = []
    features: list[Feature] = []
    unused: list[str] = []
    ids: list[str] = []
    for column in report.columns:
        if column == label.column:
            decisions.append(Decision(column, "label", f"the label's column ({label.expr})"))
            continue
        feature, why = _feature(column, by_name[column], rows, distinct) if column in by_name else (None, "empty")
        if feature is None:
            unused.append(column)
            decisions.append(Decision(column, "left out", why))
            if why.startswith("ID-like") and _complete(by_name[column], rows):
                ids.append(column)
            continue
        features.append(feature)
        also = f"; also in the label ({label.expr})" if column == label.times else ""
        decisions.append(Decision(column, "feature", why + also))
    if not features:
        raise DataError(
            f"{data}: no column can be a feature (each is the label, an ID or constant); add feature columns"
        )
    spec = FeatureSpec(tuple(features), label, tuple(unused))
    # The label itself is checked against the values (two-valued column, positive value present...).
    checked = check_csv_dir(str(data), spec=spec, missing_values=missing_values)
    partition = ids[0] if ids else ""
    test_rows = int(0.15 * (rows - checked.rows_without_label))
    slice_min = min(200, max(30, test_rows // 5))
    profile = {
        "name": _slug(name or data.name),
        "output_dir": f"outputs/{_slug(name or data.name)}",
        "features": spec.to_dict(),
        "data": {
            "root": str(data),
            "schema_file": str(schema_path),
            "train_buckets": 14,
            "eval_buckets": 3,
            "test_buckets": 3,
            "partition_feature": partition,
            "missing_values": list(missing_values),
        },
        "eval": {
            "floors": {},
            "min_lift_over_majority": {"binary_accuracy": 0.01},
            "min_lift_over_rule": {"auc": 0.01},
            "rule_feature": "auto",
            "slice_floors": {"auc": 0.6},
            "slice_min_examples": slice_min,
            "slice_min_class_examples": 10,
        },
        "serving": {"model_name": _slug(name or data.name).replace("-", "_")},
    }
    from_dict(profile, source=str(out))  # the written profile must load
    review = _review(spec, partition, slice_min, test_rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    schema_path.write_text(
        f"# Curated schema for {data}, written by `tfxp init` from TFDV statistics of {rows} rows.\n"
        "# Review it like code: domains and presence are what the data showed; the label's own columns\n"
        f"# are absent in SERVING; drift and skew comparators are {DRIFT_THRESHOLD} (L-infinity for\n"
        "# categories, Jensen-Shannon for numbers) until a few spans show the normal variation.\n"
        + text_format.MessageToString(_schema(stats_list, spec))
    )
    out.write_text(
        f"# Written by `tfxp init --data {data} --label '{label_expr}'`: review, then\n"
        f"#   tfxp run --profile {out}\n" + yaml.safe_dump(profile, sort_keys=False, default_flow_style=None, width=110)
    )
    return InitResult(out, schema_path, spec, decisions, rows, checked.rows_without_label, partition, review)


def _complete(stats: Any, rows: int) -> bool:
    kind = stats.WhichOneof("stats")
    common = stats.string_stats.common_stats if kind == "string_stats" else stats.num_stats.common_stats
    return common.num_non_missing == rows and common.min_num_values == 1


def _label_name(expr: str) -> str:
    column = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)", expr)
    return f"{column.group(1)}_label" if column else "label"


def _review(spec: FeatureSpec, partition: str, slice_min: int, test_rows: int) -> list[str]:
    out = [
        "features: each column's kind and size (vocab size, ids, log); drop any that would not be known "
        "when predicting (it leaks the label)",
        f"the label {spec.label.name} = {spec.label.expr}: rows missing {', '.join(spec.label.source_columns)} "
        "are left out",
    ]
    if partition:
        out.append(
            f"data.partition_feature={partition}: the split hashes on this ID, so rows never move between splits"
        )
    else:
        out.append(
            "data.partition_feature is empty: the split hashes whole rows, so editing a row or adding a column "
            "moves rows between splits; set it to a stable key column"
        )
    out.append(
        f"eval: the model must beat the majority class's accuracy and the best single-feature rule; slices "
        f"are judged with >= {slice_min} of the ~{test_rows} test rows (eval.slice_min_examples)"
    )
    out.append("the schema: domains, presence, and the drift/skew thresholds")
    return out
