"""The one feature spec of the project, read from data.

A spec (``FeatureSpec``) names every raw feature with its kind, the label as a
declared expression, and the CSV columns left unused. The taxi spec is
``models/features.yaml``; a profile points to a spec file or holds a
``features:`` block (``tfxp init`` writes one). Preprocessing, model inputs,
serving signatures, TFMA slices, the CSV check and the tests all derive from
it. Transform and the Trainer receive it as JSON in their ``custom_config``,
so it is part of their cache key; nothing is read at import time.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

TAXI_SPEC = Path(__file__).resolve().parent / "features.yaml"
OOV_BUCKETS = 1
# The key under which Transform's and the Trainer's custom_config carry the spec.
SPEC_KEY = "features"


class Kind(enum.Enum):
    """How a raw feature is transformed and fed to the model."""

    NUMERIC = "numeric"  # float, z-scored (optionally after log1p)
    BUCKETIZED = "bucketized"  # float, quantile buckets computed on train
    CATEGORICAL_INT = "categorical_int"  # int id, bucketized by modulo
    VOCAB = "vocab"  # string, vocabulary computed on train


class Dtype(enum.Enum):
    """The raw value type, as in the CSV and the schema."""

    FLOAT = "float"
    INT = "int"
    STRING = "string"


_KIND_DTYPES = {
    Kind.NUMERIC: (Dtype.FLOAT, Dtype.INT),
    Kind.BUCKETIZED: (Dtype.FLOAT, Dtype.INT),
    Kind.CATEGORICAL_INT: (Dtype.INT,),
    Kind.VOCAB: (Dtype.STRING,),
}


def _fail(field: str, value: Any, why: str) -> None:
    raise ValueError(f"feature spec field {field}={value!r} is invalid: {why}")


@dataclasses.dataclass(frozen=True)
class Feature:
    """A raw input feature and how to use it."""

    name: str
    kind: Kind
    dtype: Dtype
    # BUCKETIZED: number of quantile buckets. CATEGORICAL_INT: number of ids.
    # VOCAB: vocabulary size (top k), plus out-of-vocabulary buckets.
    # NUMERIC: if > 0, the value is also fed as this many quantile buckets, so
    # the model sees sharp steps (tips are often round amounts) as well as the
    # smooth value.
    size: int = 0
    log: bool = False  # NUMERIC: apply log1p before z-scoring
    slice: bool = False  # TFMA slices the evaluation on this feature
    # What a missing value is filled with before transformation; None: 0 or "".
    default: float | int | str | None = None

    def __post_init__(self) -> None:
        where = f"features.{self.name}"
        if self.dtype not in _KIND_DTYPES[self.kind]:
            allowed = " or ".join(d.value for d in _KIND_DTYPES[self.kind])
            _fail(f"{where}.dtype", self.dtype.value, f"a {self.kind.value} feature must be {allowed}")
        needs_size = self.kind is not Kind.NUMERIC
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < (1 if needs_size else 0):
            _fail(f"{where}.size", self.size, "must be an integer >= 1 (ids, buckets or vocabulary size)"
                  if needs_size else "must be an integer >= 0 (0: no bucketized copy)")
        if self.log and self.kind is not Kind.NUMERIC:
            _fail(f"{where}.log", self.log, "log applies to numeric features only")
        if self.default is not None and isinstance(self.default, str) != (self.dtype is Dtype.STRING):
            _fail(f"{where}.default", self.default, f"must be a {self.dtype.value}, like the column")

    @property
    def transformed_name(self) -> str:
        return transformed_name(self.name)

    @property
    def bucket_name(self) -> str:
        """NUMERIC features with ``size``: the name of the bucketized copy."""
        return f"{self.name}_bucket_xf"

    @property
    def missing_value(self) -> float | int | str:
        """What a missing value is filled with before transformation."""
        if self.default is not None:
            return self.default
        return "" if self.dtype is Dtype.STRING else 0

    @property
    def categorical(self) -> bool:
        """Whether the model reads this feature as ids (a rule can be learned per id)."""
        return self.kind is not Kind.NUMERIC

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind.value, "dtype": self.dtype.value}
        for key, empty in (("size", 0), ("log", False), ("slice", False), ("default", None)):
            if getattr(self, key) != empty:
                out[key] = getattr(self, key)
        return out


@dataclasses.dataclass(frozen=True)
class ModelInput:
    """One transformed tensor the model reads: dense (size 0) or categorical ids."""

    name: str
    size: int = 0

    @property
    def categorical(self) -> bool:
        return self.size > 0


_OPS = ("==", "!=", ">=", "<=", ">", "<")
_NAME = r"[A-Za-z_][A-Za-z0-9_.]*"
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_EXPR = re.compile(rf"\s*({_NAME})\s*(?:(==|!=|>=|<=|>|<)\s*(.+?))?\s*")
_SCALED = re.compile(rf"({_NUMBER})\s*\*\s*({_NAME})")
LABEL_FORMS = "COLUMN (0/1), COLUMN == VALUE, COLUMN OP NUMBER or COLUMN OP NUMBER * COLUMN (OP: == != > >= < <=)"


@dataclasses.dataclass(frozen=True)
class Label:
    """The label: a declared expression over the CSV's columns, parsed, never ``eval``ed.

    - ``column``: a column already 0/1, positive where it is 1;
    - ``column == VALUE`` (or ``!=``): a value of a two-valued (or any) column,
      a number or a string (quotes optional);
    - ``column OP NUMBER``, e.g. ``age >= 50``;
    - ``column OP NUMBER * other``, e.g. taxi's ``tips > 0.2 * fare``.
    A row with any source column missing has no label: it is left out of
    training and evaluation (and counted).
    """

    expr: str
    name: str = "label"
    column: str = dataclasses.field(init=False, default="")
    op: str = dataclasses.field(init=False, default="==")
    value: float | str = dataclasses.field(init=False, default=1.0)
    times: str = dataclasses.field(init=False, default="")  # the second column, for NUMBER * COLUMN

    def __post_init__(self) -> None:
        match = _EXPR.fullmatch(self.expr) if isinstance(self.expr, str) else None
        if match is None:
            _fail("label.expr", self.expr, f"does not parse: write {LABEL_FORMS}")
            return
        column, op, rhs = match.groups()
        value: float | str = 1.0
        times = ""
        if op is None:
            op = "=="
        elif scaled := _SCALED.fullmatch(rhs):
            value, times = float(scaled.group(1)), scaled.group(2)
        elif re.fullmatch(_NUMBER, rhs):
            value = float(rhs)
        elif op in ("==", "!=") and (text := rhs.strip("'\"")) and '"' not in text and "'" not in text:
            value = text
        else:
            _fail("label.expr", self.expr, f"does not parse: write {LABEL_FORMS}")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.name or ""):
            _fail("label.name", self.name, "use letters, digits and '_' (it names the model's label tensor)")
        object.__setattr__(self, "column", column)
        object.__setattr__(self, "op", op)
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "times", times)

    @property
    def source_columns(self) -> tuple[str, ...]:
        return (self.column, self.times) if self.times else (self.column,)

    @property
    def transformed_name(self) -> str:
        return transformed_name(self.name)

    @property
    def bare(self) -> bool:
        """The expression is a bare column, read as 0/1."""
        return not _EXPR.fullmatch(self.expr).group(2)  # type: ignore[union-attr]


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """Every raw feature, the label, and the CSV columns neither uses."""

    features: tuple[Feature, ...]
    label: Label
    unused: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.features:
            _fail("features", {}, "name at least one feature column")
        names = [f.name for f in self.features]
        for name in names:
            if names.count(name) > 1:
                _fail(f"features.{name}", name, "is listed twice")
            if name == self.label.column:
                _fail(
                    f"features.{name}", name,
                    f"is the label's column ({self.label.expr}): a model fed its own label learns nothing; "
                    "remove it from the features",
                )
        for name in self.unused:
            if name in names or name in self.label.source_columns:
                _fail("unused", name, "is used as a feature or by the label")

    def feature(self, name: str) -> Feature:
        """Look a feature up by name; raises KeyError naming the known ones."""
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"unknown feature {name!r}; known features: {', '.join(f.name for f in self.features)}")

    @property
    def label_only_columns(self) -> tuple[str, ...]:
        """The label's columns that are not features: absent at serving time."""
        return tuple(c for c in self.label.source_columns if c not in {f.name for f in self.features})

    def required_columns(self) -> tuple[str, ...]:
        """The CSV columns the pipeline cannot run without."""
        return tuple(f.name for f in self.features) + self.label_only_columns

    def slice_keys(self) -> tuple[str, ...]:
        """The raw features TFMA slices the evaluation on."""
        return tuple(f.name for f in self.features if f.slice)

    def model_inputs(self) -> tuple[ModelInput, ...]:
        """The transformed tensors the model reads, in a stable order."""
        out: list[ModelInput] = []
        for f in self.features:
            if f.kind is Kind.NUMERIC:
                out.append(ModelInput(f.transformed_name))
                if f.size:
                    out.append(ModelInput(f.bucket_name, f.size))
            elif f.kind is Kind.VOCAB:
                out.append(ModelInput(f.transformed_name, f.size + OOV_BUCKETS))
            else:
                out.append(ModelInput(f.transformed_name, f.size))
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        """Plain values: what a profile's ``features:`` block and ``custom_config`` hold."""
        return {
            "features": {f.name: f.to_dict() for f in self.features},
            "label": {"name": self.label.name, "expr": self.label.expr},
            "unused": list(self.unused),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def from_dict(raw: Any, source: str = "feature spec") -> FeatureSpec:
    """A spec from plain values (a YAML file or a profile's ``features:`` block); errors name the field."""
    try:
        if not isinstance(raw, Mapping):
            _fail("features", raw, "must be a mapping with features:, label: and optionally unused:")
        unknown = set(raw) - {"features", "label", "unused"}
        if unknown:
            _fail(sorted(unknown)[0], raw[sorted(unknown)[0]], "is not a spec field; known: features, label, unused")
        columns = raw.get("features")
        if not isinstance(columns, Mapping) or not columns:
            _fail("features", columns, "must map each feature column to {kind, dtype, size, ...}")
        features = tuple(_feature(name, value) for name, value in columns.items())
        label = raw.get("label")
        if isinstance(label, str):
            label = {"expr": label}
        if not isinstance(label, Mapping) or "expr" not in label:
            _fail("label", label, "give label: {name: NAME, expr: EXPR}, e.g. expr: tips > 0.2 * fare")
        unknown = set(label) - {"name", "expr"}
        if unknown:
            _fail(f"label.{sorted(unknown)[0]}", label[sorted(unknown)[0]], "is not a label field; known: name, expr")
        unused = raw.get("unused") or ()
        if not isinstance(unused, (list, tuple)) or not all(isinstance(c, str) for c in unused):
            _fail("unused", unused, "must be a list of column names")
        return FeatureSpec(features, Label(**label), tuple(unused))
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None


def _feature(name: Any, raw: Any) -> Feature:
    where = f"features.{name}"
    if not isinstance(raw, Mapping):
        _fail(where, raw, "must be a mapping such as {kind: vocab, dtype: string, size: 20}")
    unknown = set(raw) - {"kind", "dtype", "size", "log", "slice", "default"}
    if unknown:
        _fail(f"{where}.{sorted(unknown)[0]}", raw[sorted(unknown)[0]],
              "is not a feature field; known: kind, dtype, size, log, slice, default")
    values = dict(raw)
    for key, enum_type in (("kind", Kind), ("dtype", Dtype)):
        try:
            values[key] = enum_type(values.get(key))
        except ValueError:
            _fail(f"{where}.{key}", values.get(key), f"must be one of {', '.join(e.value for e in enum_type)}")
    for key in ("log", "slice"):
        if not isinstance(values.get(key, False), bool):
            _fail(f"{where}.{key}", values[key], "must be true or false")
    return Feature(name=str(name), **values)


def load_spec(path: str | Path = TAXI_SPEC) -> FeatureSpec:
    """Read a spec YAML file (the taxi spec by default)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"feature spec file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"feature spec file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    return from_dict(raw, source=str(path))


def from_custom_config(custom_config: Mapping[str, Any] | None) -> FeatureSpec:
    """The spec a component received in its ``custom_config`` (``SPEC_KEY``)."""
    raw = (custom_config or {}).get(SPEC_KEY)
    if raw is None:
        raise ValueError(f"custom_config has no {SPEC_KEY!r}: build the pipeline with create_pipeline(cfg)")
    return from_dict(json.loads(raw) if isinstance(raw, str) else raw)


def transformed_name(name: str) -> str:
    """The name of a feature after Transform."""
    return f"{name}_xf"
