"""The simple rule evaluated beside the model.

Try a rule first: the train split's positive rate per value of one
categorical feature (``eval.rule_feature``: ``payment_type`` for taxi, where
cash riders almost never have a recorded tip; ``auto``, the default, fits one
rule per categorical feature and keeps the one with the best AUC on the eval
split). The Trainer fits it on the same transformed train split as the model
and exports it in the model's ``evaluation`` signature, so TFMA grades model
and rule on the same rows, per slice, in one run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import numpy as np
from sklearn.metrics import roc_auc_score

from models.features import FeatureSpec, ModelInput

RULE_OUTPUT = "rule"
AUTO = "auto"


@dataclasses.dataclass(frozen=True)
class Rule:
    """Positive rate per id of one transformed categorical input."""

    feature: str
    input_name: str  # the transformed tensor holding the feature's ids
    rates: np.ndarray  # rates[id]; ids never seen in training get the overall rate
    eval_auc: float = float("nan")  # on the eval split, when chosen among several


def rule_input(spec: FeatureSpec, feature_name: str) -> ModelInput:
    """The transformed categorical input that carries ``feature_name``'s ids."""
    name = spec.feature(feature_name).transformed_name
    for model_input in spec.model_inputs():
        if model_input.name == name and model_input.categorical:
            return model_input
    raise ValueError(f"feature {feature_name!r} has no categorical ids to base a rule on")


def rule_candidates(spec: FeatureSpec, rule_feature: str) -> tuple[str, ...]:
    """The features to fit a rule on: the configured one, or every categorical one (``auto``)."""
    if rule_feature != AUTO:
        return (rule_feature,)
    return tuple(f.name for f in spec.features if f.categorical)


Batches = Iterable[tuple[dict[str, np.ndarray], np.ndarray]]


def fit_rules(spec: FeatureSpec, feature_names: Sequence[str], batches: Batches) -> list[Rule]:
    """One rule per feature, from one pass over ``(features, labels)`` batches of transformed data."""
    inputs = [rule_input(spec, name) for name in feature_names]
    counts = [np.zeros(i.size) for i in inputs]
    positives = [np.zeros(i.size) for i in inputs]
    for features, labels in batches:
        labels = np.asarray(labels).reshape(-1)
        for i, model_input in enumerate(inputs):
            ids = np.asarray(features[model_input.name]).reshape(-1).astype(np.int64)
            np.add.at(counts[i], ids, 1)
            np.add.at(positives[i], ids, labels)
    rules = []
    for name, model_input, n, p in zip(feature_names, inputs, counts, positives, strict=True):
        if not n.sum():
            raise ValueError(f"cannot fit the {name} rule: the training data is empty")
        rates = np.where(n > 0, p / np.maximum(n, 1), p.sum() / n.sum())
        rules.append(Rule(name, model_input.name, rates.astype(np.float32)))
    return rules


def fit_rule(spec: FeatureSpec, feature_name: str, batches: Batches) -> Rule:
    return fit_rules(spec, [feature_name], batches)[0]


def best_rule(rules: Sequence[Rule], batches: Batches) -> Rule:
    """The rule with the highest AUC on ``batches`` (the eval split); the first one wins ties."""
    if len(rules) == 1:
        return rules[0]
    scores: list[list[np.ndarray]] = [[] for _ in rules]
    labels: list[np.ndarray] = []
    for features, batch_labels in batches:
        labels.append(np.asarray(batch_labels).reshape(-1))
        for i, rule in enumerate(rules):
            ids = np.clip(np.asarray(features[rule.input_name]).reshape(-1).astype(np.int64), 0, len(rule.rates) - 1)
            scores[i].append(rule.rates[ids])
    y = np.concatenate(labels)
    if len(np.unique(y)) < 2:
        return rules[0]  # AUC is undefined with one class; keep the spec's first
    aucs = [float(roc_auc_score(y, np.concatenate(s))) for s in scores]
    best = int(np.argmax(aucs))
    return dataclasses.replace(rules[best], eval_auc=aucs[best])
