"""The one feature spec of the project.

Preprocessing, model inputs, serving signatures, TFMA slices, the CSV check
and the tests all derive from ``FEATURES`` and ``LABEL``. Add or change a
feature here and everything else follows.
"""

from __future__ import annotations

import dataclasses
import enum


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
        return "" if self.dtype is Dtype.STRING else 0


@dataclasses.dataclass(frozen=True)
class ModelInput:
    """One transformed tensor the model reads: dense (size 0) or categorical ids."""

    name: str
    size: int = 0

    @property
    def categorical(self) -> bool:
        return self.size > 0


@dataclasses.dataclass(frozen=True)
class Label:
    """The label: tips above ``threshold`` times the fare ("big tipper")."""

    name: str = "big_tipper"
    tips_column: str = "tips"
    fare_column: str = "fare"
    threshold: float = 0.2

    @property
    def source_columns(self) -> tuple[str, ...]:
        return (self.tips_column, self.fare_column)

    @property
    def transformed_name(self) -> str:
        return transformed_name(self.name)


OOV_BUCKETS = 1

FEATURES: tuple[Feature, ...] = (
    Feature("fare", Kind.NUMERIC, Dtype.FLOAT, size=20, log=True),
    Feature("trip_miles", Kind.NUMERIC, Dtype.FLOAT, log=True),
    Feature("trip_seconds", Kind.NUMERIC, Dtype.INT, log=True),
    Feature("pickup_latitude", Kind.BUCKETIZED, Dtype.FLOAT, size=10),
    Feature("pickup_longitude", Kind.BUCKETIZED, Dtype.FLOAT, size=10),
    Feature("dropoff_latitude", Kind.BUCKETIZED, Dtype.FLOAT, size=10),
    Feature("dropoff_longitude", Kind.BUCKETIZED, Dtype.FLOAT, size=10),
    Feature("trip_start_hour", Kind.CATEGORICAL_INT, Dtype.INT, size=24, slice=True),
    Feature("trip_start_day", Kind.CATEGORICAL_INT, Dtype.INT, size=8),
    Feature("trip_start_month", Kind.CATEGORICAL_INT, Dtype.INT, size=13),
    Feature("pickup_community_area", Kind.CATEGORICAL_INT, Dtype.INT, size=78),
    Feature("dropoff_community_area", Kind.CATEGORICAL_INT, Dtype.INT, size=78),
    Feature("payment_type", Kind.VOCAB, Dtype.STRING, size=10, slice=True),
    Feature("company", Kind.VOCAB, Dtype.STRING, size=60, slice=True),
)

LABEL = Label()

# Columns of the CSV that are neither features nor label sources. They are
# validated by the schema but not used by the model.
UNUSED_COLUMNS: tuple[str, ...] = (
    "trip_start_timestamp",
    "pickup_census_tract",
    "dropoff_census_tract",
)


def transformed_name(name: str) -> str:
    """The name of a feature after Transform."""
    return f"{name}_xf"


def feature(name: str) -> Feature:
    """Look a feature up by name; raises KeyError naming the known ones."""
    for f in FEATURES:
        if f.name == name:
            return f
    known = ", ".join(f.name for f in FEATURES)
    raise KeyError(f"unknown feature {name!r}; known features: {known}")


def required_columns() -> tuple[str, ...]:
    """The CSV columns the pipeline cannot run without."""
    return tuple(f.name for f in FEATURES) + LABEL.source_columns


def slice_keys() -> tuple[str, ...]:
    """The raw features TFMA slices the evaluation on."""
    return tuple(f.name for f in FEATURES if f.slice)


def model_inputs() -> tuple[ModelInput, ...]:
    """The transformed tensors the model reads, in a stable order."""
    out: list[ModelInput] = []
    for f in FEATURES:
        if f.kind is Kind.NUMERIC:
            out.append(ModelInput(f.transformed_name))
            if f.size:
                out.append(ModelInput(f.bucket_name, f.size))
        elif f.kind is Kind.VOCAB:
            out.append(ModelInput(f.transformed_name, f.size + OOV_BUCKETS))
        else:
            out.append(ModelInput(f.transformed_name, f.size))
    return tuple(out)
