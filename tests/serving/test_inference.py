"""A servable's signature calls."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from serving.inference import load_servable


def test_the_flat_call_matches_the_public_signature_call(tiny_model_dir: Path) -> None:
    tiny = load_servable("tiny", 1, tiny_model_dir)
    for name, inputs in [
        ("", {"x": np.array([1.5, -2.0], np.float32), "n": np.array([3, 4]), "tag": np.array([b"a", b"b"], object)}),
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
    assert tiny.call(tiny.signature(""), {"x": np.array([1.5], np.float32), "n": np.array([3]),
                                          "tag": np.array([b"a"], object)})["n_plus_one"].tolist() == [4]
