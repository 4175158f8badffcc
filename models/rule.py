"""The simple rule evaluated beside the model.

Try a rule first: here, the train split's positive rate per value of one
categorical feature (``eval.rule_feature``, ``payment_type`` for taxi: cash
riders almost never have a recorded tip). The Trainer fits it on the same
transformed train split as the model and exports it in the model's
``evaluation`` signature, so TFMA grades model and rule on the same rows, per
slice, in one run.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

import numpy as np

from models.features import ModelInput, feature, model_inputs

RULE_OUTPUT = "rule"


@dataclasses.dataclass(frozen=True)
class Rule:
    """Positive rate per id of one transformed categorical input."""

    feature: str
    input_name: str  # the transformed tensor holding the feature's ids
    rates: np.ndarray  # rates[id]; ids never seen in training get the overall rate


def rule_input(feature_name: str) -> ModelInput:
    """The transformed categorical input that carries ``feature_name``'s ids."""
    name = feature(feature_name).transformed_name
    for spec in model_inputs():
        if spec.name == name and spec.categorical:
            return spec
    raise ValueError(f"feature {feature_name!r} has no categorical ids to base a rule on")


def fit_rule(feature_name: str, batches: Iterable[tuple[dict[str, np.ndarray], np.ndarray]]) -> Rule:
    """Count positives per id over ``(features, labels)`` batches of transformed data."""
    spec = rule_input(feature_name)
    counts = np.zeros(spec.size)
    positives = np.zeros(spec.size)
    for features, labels in batches:
        ids = np.asarray(features[spec.name]).reshape(-1).astype(np.int64)
        np.add.at(counts, ids, 1)
        np.add.at(positives, ids, np.asarray(labels).reshape(-1))
    if not counts.sum():
        raise ValueError(f"cannot fit the {feature_name} rule: the training data is empty")
    overall = positives.sum() / counts.sum()
    rates = np.where(counts > 0, positives / np.maximum(counts, 1), overall)
    return Rule(feature_name, spec.name, rates.astype(np.float32))
