"""A servable's signature calls: TF2 object graphs as ConcreteFunctions, TF1 graphs in a session."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from serving.errors import Code, ServingError
from serving.loading import load_servable
from serving.predict import check_predict_inputs, shape_mismatch
from tests.serving.conftest import TINY_BIAS, build_shapeless_tf1_model


def build_tf2_tiny(export_dir: Path) -> Path:
    """The tiny model's signatures as a TF2 object graph (tf.saved_model.save)."""
    import tensorflow as tf

    class Model(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bias = tf.Variable(TINY_BIAS)

        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.float32),
                tf.TensorSpec([None], tf.int64),
                tf.TensorSpec([None], tf.string),
            ]
        )
        def default(self, x: Any, n: Any, tag: Any) -> Any:
            return {"doubled": 2.0 * x, "n_plus_one": n + 1, "tag_bytes": tag, "shout": tf.strings.upper(tag)}

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
        def single(self, pairs: Any) -> Any:
            return {"sum": tf.reduce_sum(pairs, axis=1) + self.bias}

        @tf.function(input_signature=[tf.TensorSpec([], tf.int64)])
        def scalar(self, micros: Any) -> Any:
            return {"slept": micros + micros}

    model = Model()
    signatures = {"serving_default": model.default, "single": model.single, "scalar": model.scalar}
    tf.saved_model.save(model, str(export_dir), signatures=signatures)
    return export_dir


TINY_CALLS = [
    (
        "",
        {
            "x": np.array([1.5, -2.0], np.float32),
            "n": np.array([3, 4]),
            "tag": np.array([b"a", b"b"], object),
        },
        {"doubled": [3.0, -4.0], "n_plus_one": [4, 5], "tag_bytes": [b"a", b"b"], "shout": [b"A", b"B"]},
    ),
    (
        "single",
        {"pairs": np.array([[1, 2], [3, 4]], np.float32)},
        {"sum": [3.0 + TINY_BIAS, 7.0 + TINY_BIAS]},
    ),
]


def test_the_flat_call_matches_the_public_signature_call(tmp_path: Path) -> None:
    tiny = load_servable("tiny", 1, build_tf2_tiny(tmp_path / "1"))
    assert tiny.kind == "object graph"
    calls = [*TINY_CALLS, ("scalar", {"micros": np.array(7, np.int64)}, {"slept": 14})]
    for name, inputs, expected in calls:
        sig = tiny.signature(name)
        assert sig.run.flat_inputs is not None, name
        fast = tiny.call(sig, inputs)
        public_call = dataclasses.replace(sig.run, flat_inputs=None)
        public = tiny.call(dataclasses.replace(sig, run=public_call), inputs)
        assert {k: v.tolist() for k, v in fast.items()} == expected
        assert {k: v.tolist() for k, v in public.items()} == expected


def test_a_tf1_graph_runs_in_a_session_with_the_same_answers(tiny_model_dir: Path) -> None:
    tiny = load_servable("tiny", 1, tiny_model_dir)
    assert tiny.kind == "session"
    for name, inputs, expected in TINY_CALLS:
        outputs = tiny.call(tiny.signature(name), inputs)
        assert {k: v.tolist() for k, v in outputs.items()} == expected
    assert tiny.call(tiny.signature("sleep"), {"micros": np.array(7, np.int64)})["slept"].tolist() == 7
    # As in TF Serving's session, a fed shape is not checked against the placeholder's...
    summed = tiny.call(tiny.signature("single"), {"pairs": np.ones((2, 3), np.float32)})["sum"]
    assert summed.tolist() == [3.0 + TINY_BIAS] * 2
    # ...and when the graph rejects it, the error is worded as for a TF2 model.
    with pytest.raises(ServingError) as info:
        tiny.call(tiny.signature("single"), {"pairs": np.ones(4, np.float32)})
    assert info.value.code is Code.INVALID_ARGUMENT
    assert info.value.message.startswith("input 'pairs': got shape [4], the signature expects float32[-1,2]")
    assert "the model failed with: Invalid reduction dimension" in info.value.message


def test_a_model_without_signature_shapes_loads_in_a_session(tmp_path: Path) -> None:
    import tensorflow as tf

    path = build_shapeless_tf1_model(tmp_path / "1", bias=3.0)
    with pytest.raises(ValueError, match="rank"):  # what TF2's loader makes of it (the issue's failure)
        tf.saved_model.load(str(path))
    servable = load_servable("half_plus_three", 1, path)
    assert servable.kind == "session"
    sig = servable.signature("")
    assert sig.inputs["x"].shape is None and not sig.batchable  # no shape: any rank, not a scalar
    assert servable.call(sig, {"x": np.array([[2.0]], np.float32)})["y"].tolist() == [[4.0]]
    # Fed as sent, whatever the shape, as TF Serving's session feeds it.
    assert servable.call(sig, {"x": np.array([1.0, 2.0, 5.0], np.float32)})["y"].tolist() == [3.5, 4.0, 5.5]


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


def test_the_flat_call_is_refused_when_a_placeholder_is_not_the_input_at_its_position(tmp_path: Path) -> None:
    """Two float inputs in another order than their placeholders: the public call, never a silent swap."""
    import tensorflow as tf

    from serving.object_graph import _flat_inputs

    spec = tf.TensorSpec([None], tf.float32)

    class Model(tf.Module):
        @tf.function(input_signature=[spec, spec])
        def diff(self, a: Any, b: Any) -> Any:
            return {"out": a - b}

    model = Model()
    tf.saved_model.save(model, str(tmp_path / "1"), signatures={"serving_default": model.diff})
    fn = tf.saved_model.load(str(tmp_path / "1")).signatures["serving_default"]
    inputs = load_servable("diff", 1, tmp_path / "1").signature_defs.signature_def["serving_default"].inputs
    assert _flat_inputs(fn, inputs) == tuple(fn._arg_keywords)

    class Reordered:  # what a TF release listing _arg_keywords in another order would look like
        _arg_keywords = list(reversed(fn._arg_keywords))
        _call_flat = fn._call_flat
        inputs = fn.inputs
        captured_inputs = fn.captured_inputs
        structured_input_signature = fn.structured_input_signature

    assert _flat_inputs(Reordered(), inputs) is None
