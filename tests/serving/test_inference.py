"""A servable's signature calls."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from serving.errors import ServingError
from serving.inference import check_predict_inputs, load_servable, shape_mismatch


def test_the_flat_call_matches_the_public_signature_call(tiny_model_dir: Path) -> None:
    tiny = load_servable("tiny", 1, tiny_model_dir)
    for name, inputs in [
        (
            "",
            {
                "x": np.array([1.5, -2.0], np.float32),
                "n": np.array([3, 4]),
                "tag": np.array([b"a", b"b"], object),
            },
        ),
        ("single", {"pairs": np.array([[1, 2], [3, 4]], np.float32)}),
        ("sleep", {"micros": np.array(7, np.int64)}),
    ]:
        sig = tiny.signature(name)
        assert sig.flat_inputs is not None, name
        fast = tiny.call(sig, inputs)
        public = tiny.call(dataclasses.replace(sig, flat_inputs=None), inputs)
        assert fast.keys() == public.keys() and fast
        for key in fast:
            np.testing.assert_array_equal(fast[key], public[key])
    assert tiny.call(
        tiny.signature(""),
        {"x": np.array([1.5], np.float32), "n": np.array([3]), "tag": np.array([b"a"], object)},
    )["n_plus_one"].tolist() == [4]


def test_only_requests_that_fit_the_signature_can_be_batched(tiny_model_dir: Path) -> None:
    sig = load_servable("tiny", 1, tiny_model_dir).signature("single")
    assert check_predict_inputs(sig, {"pairs": np.zeros((3, 2), np.float32)}) == 3
    # A shape the SignatureDef does not declare goes to the model alone (TF Serving checks no shapes).
    assert check_predict_inputs(sig, {"pairs": np.zeros((3, 5), np.float32)}) is None
    assert shape_mismatch(sig, {"pairs": np.zeros((3, 5), np.float32)}) == (
        "input 'pairs': got shape [3, 5], the signature expects float32[-1,2]"
    )
    with pytest.raises(ServingError) as info:
        check_predict_inputs(sig, {"pairs": np.zeros((3, 2), np.int64)})
    assert "input 'pairs': got dtype int64, the signature expects float32[-1,2]" in info.value.message
