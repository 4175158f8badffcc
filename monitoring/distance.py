"""Per-feature distances between a reference sample and a window of served rows.

The schema decides which features are compared, with which comparator
(L-infinity or Jensen-Shannon) and what threshold. The binning is this
module's: TFDV's Jensen-Shannon divergence on numbers re-buckets two
equal-width histograms under a uniform assumption, so a few hundred served
rows against a training set with far outliers look skewed when they are not
(an unshifted sample of 600 taxi rows measured fare at 0.40 against its
threshold of 0.12). Here numbers are binned on the reference's deciles (or by
value, for integers with few values), and both sides are counted exactly.

Served rows carry the client's encoding of a missing value (NaN, "" or, for
integers, the spec's fill value); they are read as missing, as the training
CSV's empty cells were, so missing values are not mistaken for skew.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from models.features import Dtype, FeatureSpec
from validation.drift import Distance

DISCRETE_MAX = 50  # an integer feature with at most this many values is compared value by value
BINS = 10


def values_by_feature(examples: Iterable[bytes], names: Sequence[str]) -> dict[str, list[Any]]:
    """Every present value of each named feature, from serialized tf.Examples."""
    from tensorflow.core.example import example_pb2

    out: dict[str, list[Any]] = {n: [] for n in names}
    for data in examples:
        feature = example_pb2.Example.FromString(data).features.feature
        for name in names:
            if name not in feature:
                continue
            f = feature[name]
            kind = f.WhichOneof("kind")
            if kind:
                out[name].extend(getattr(f, kind).value)
    return out


def drop_missing_encodings(
    values: dict[str, list[Any]], spec: FeatureSpec, reference: dict[str, list[Any]]
) -> dict[str, list[Any]]:
    """Served values that only encode "missing": NaN, "", or an integer fill value the reference never held."""
    out = {}
    for name, vals in values.items():
        try:
            f = spec.feature(name)
        except KeyError:
            out[name] = vals
            continue
        ref = reference.get(name) or []
        if f.dtype is Dtype.FLOAT:
            out[name] = [v for v in vals if v == v]  # NaN != NaN
        elif f.dtype is Dtype.STRING:
            out[name] = vals if b"" in set(ref) else [v for v in vals if v != b""]
        else:
            fill = f.missing_value
            out[name] = vals if (not ref or fill in set(ref)) else [v for v in vals if v != fill]
    return out


def _shares(counts: Counter, keys: Sequence[Any]) -> np.ndarray:
    total = sum(counts[k] for k in keys)
    return np.array([counts[k] / total if total else 0.0 for k in keys])


def linf(reference: Sequence[Any], current: Sequence[Any]) -> float:
    """Largest difference in a value's share between the two samples (TFDV's L-infinity norm)."""
    a, b = Counter(reference), Counter(current)
    keys = sorted(set(a) | set(b), key=repr)
    return float(np.max(np.abs(_shares(a, keys) - _shares(b, keys)))) if keys else 0.0


def jsd(reference: Sequence[float], current: Sequence[float]) -> float:
    """Jensen-Shannon divergence (bits) on the reference's deciles, or by value for few distinct integers."""
    from scipy.spatial.distance import jensenshannon

    if any(isinstance(v, bytes) for v in (*reference[:1], *current[:1])):
        keys = sorted(set(reference) | set(current))
        p, q = _shares(Counter(reference), keys), _shares(Counter(current), keys)
        return float(jensenshannon(p, q, base=2) ** 2)
    ref, cur = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    distinct = np.unique(ref)
    if distinct.size <= DISCRETE_MAX and np.all(distinct == np.round(distinct)):
        keys = sorted(set(distinct.tolist()) | set(np.unique(cur).tolist()))
        p, q = _shares(Counter(ref.tolist()), keys), _shares(Counter(cur.tolist()), keys)
    else:
        edges = np.unique(np.quantile(ref, np.linspace(0, 1, BINS + 1)))
        edges[0], edges[-1] = -np.inf, np.inf
        p = np.histogram(ref, edges)[0] / ref.size
        q = np.histogram(cur, edges)[0] / cur.size
    return float(jensenshannon(p, q, base=2) ** 2)


def comparators(schema: Any, kind: str) -> dict[str, tuple[str, float]]:
    """feature -> (L-inf | JSD, threshold) from the schema's skew or drift comparators."""
    out = {}
    for feature in schema.feature:
        comparator = feature.skew_comparator if kind == "skew" else feature.drift_comparator
        if comparator.HasField("infinity_norm"):
            out[feature.name] = ("L-inf", comparator.infinity_norm.threshold)
        elif comparator.HasField("jensen_shannon_divergence"):
            out[feature.name] = ("JSD", comparator.jensen_shannon_divergence.threshold)
    return out


def distances(
    reference: dict[str, list[Any]], current: dict[str, list[Any]], schema: Any, kind: str
) -> list[Distance]:
    """Each compared feature's distance between the two samples, with the schema's threshold."""
    out = []
    for name, (comparator, threshold) in sorted(comparators(schema, kind).items()):
        if not reference.get(name) or not current.get(name):
            continue  # absent on one side (e.g. the label's column when serving): nothing to compare
        measure = linf if comparator == "L-inf" else jsd
        out.append(Distance(name, comparator, measure(reference[name], current[name]), threshold))
    return out
