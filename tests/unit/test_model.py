import numpy as np
import pytest

from models.features import load_spec
from models.model import HParams, build_model


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


def test_hparams_round_trip_and_reject_unknown_keys():
    hp = HParams(hidden_units=(16, 4), dropout=0.1)
    assert HParams.from_dict(hp.to_dict()) == hp
    with pytest.raises(ValueError, match="unknown hyperparameter.*'layers'"):
        HParams.from_dict({"layers": 3})
