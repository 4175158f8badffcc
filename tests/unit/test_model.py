import numpy as np
import pytest

from models.features import load_spec
from models.hparams import HParams
from models.model import build_model


def _batch(n: int) -> dict:
    rng = np.random.default_rng(0)
    return {
        i.name: rng.integers(0, i.size, n).astype("int64") if i.categorical else rng.normal(size=n).astype("float32")
        for i in load_spec().model_inputs()
    }


def test_forward_pass_gives_one_probability_per_row():
    model = build_model(HParams(hidden_units=(8,)), load_spec().model_inputs())
    out = model(_batch(5), training=False).numpy()
    assert out.shape == (5, 1)
    assert out.dtype == np.float32
    assert np.all((out > 0) & (out < 1))
    # Different rows give different probabilities: the inputs are used.
    assert len(np.unique(out.round(6))) > 1


def test_hparams_round_trip_through_json_and_reject_unknown_keys():
    hp = HParams(hidden_units=(16, 4), dropout=0.1)
    assert HParams.model_validate(hp.model_dump(mode="json")) == hp
    with pytest.raises(ValueError, match="layers"):
        HParams.model_validate({"layers": 3})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [({"learning_rate": "3e-3"}, 0.003), ({"learning_rate": "1e-4"}, 0.0001), ({"learning_rate": 1}, None)],
)
def test_hparams_coerce_what_yaml_leaves_as_a_string(raw, expected):
    # PyYAML reads 3e-3 (no dot) as a string.
    if expected is None:
        with pytest.raises(ValueError, match="learning_rate"):
            HParams.model_validate(raw)
    else:
        assert HParams.model_validate(raw).learning_rate == expected


def test_hparams_refuse_a_bool_for_a_number():
    with pytest.raises(ValueError, match="expected a number, got True"):
        HParams(batch_size=True)
