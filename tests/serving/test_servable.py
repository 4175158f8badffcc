"""A servable's signature calls."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from serving.errors import ServingError
from serving.loading import load_servable
from serving.predict import check_predict_inputs, shape_mismatch


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
        assert sig.run.flat_inputs is not None, name
        fast = tiny.call(sig, inputs)
        public = tiny.call(dataclasses.replace(sig, run=dataclasses.replace(sig.run, flat_inputs=None)), inputs)
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


def test_the_flat_call_keeps_same_dtype_inputs_in_order(tmp_path: Path) -> None:
    import tensorflow as tf

    spec = tf.TensorSpec([None], tf.float32)

    class Model(tf.Module):
        @tf.function(input_signature=[spec, spec, spec])
        def weigh(self, zeta: Any, Alpha: Any, mid: Any) -> Any:  # noqa: N803 - an input name with a capital
            return {"out": 100.0 * zeta + 10.0 * Alpha + mid}

    model = Model()
    tf.saved_model.save(model, str(tmp_path / "1"), signatures={"serving_default": model.weigh})
    servable = load_servable("weigh", 1, tmp_path / "1")
    sig = servable.signature("")
    assert sig.run.flat_inputs is not None
    inputs = {"zeta": np.array([1.0], np.float32), "Alpha": np.array([2.0], np.float32)}
    inputs["mid"] = np.array([3.0], np.float32)
    assert servable.call(sig, inputs)["out"].tolist() == [123.0]
    public = dataclasses.replace(sig, run=dataclasses.replace(sig.run, flat_inputs=None))
    assert servable.call(public, inputs)["out"].tolist() == [123.0]
