"""The data gate's policy: fail or warn, by TFDV type, by source, or by default."""

import json

import pytest

from pipeline.components.gate import DRIFT, SCHEMA, Anomaly, format_anomalies, judge
from pipeline.config import ValidationConfig

NEW_COLUMN = Anomaly("train", "tolls", "SCHEMA_NEW_COLUMN", "New column", SCHEMA)
DRIFTED = Anomaly("train_train", "payment_type", "COMPARATOR_L_INFTY_HIGH", "L-inf 0.07 above 0.05", DRIFT)


def _policy(**kwargs) -> dict:
    return json.loads(ValidationConfig(**kwargs).policy_json())


def test_everything_fails_by_default():
    assert judge([NEW_COLUMN, DRIFTED], _policy()) == ([NEW_COLUMN, DRIFTED], [])


def test_warn_on_drift_only():
    assert judge([NEW_COLUMN, DRIFTED], _policy(on_kind={"drift": "warn"})) == ([NEW_COLUMN], [DRIFTED])


def test_the_most_specific_kind_wins():
    policy = _policy(on_anomaly="warn", on_kind={"schema": "fail", "SCHEMA_NEW_COLUMN": "warn"})
    assert judge([NEW_COLUMN, DRIFTED], policy) == ([], [NEW_COLUMN, DRIFTED])


def test_the_message_names_each_finding_and_what_to_do():
    text = format_anomalies([DRIFTED], [NEW_COLUMN])
    assert "payment_type: COMPARATOR_L_INFTY_HIGH: L-inf 0.07 above 0.05" in text
    assert "and 1 the policy only warns on" in text
    assert "--gate-policy warn" in text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"on_anomaly": "ignore"}, "validation.on_anomaly='ignore' is invalid: must be fail or warn"),
        ({"on_kind": {"drfit": "warn"}}, "'drfit' is not a kind"),
        ({"on_kind": {"drift": "skip"}}, "validation.on_kind.drift='skip' is invalid"),
    ],
)
def test_a_bad_policy_names_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ValidationConfig(**kwargs)
