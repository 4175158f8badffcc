"""TF2 SavedModels (with an object graph): loaded by tf.saved_model.load, run as ConcreteFunctions."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from serving.servable import Servable, joint_key
from serving.signatures import Outputs, Run, Signature, tensor_specs


@dataclasses.dataclass(frozen=True)
class FunctionCall:
    """A signature's ConcreteFunction, called on numpy inputs (a signatures.Run)."""

    fn: Any
    tf_dtypes: Mapping[str, Any]  # input alias -> tf.DType
    flat_inputs: tuple[str, ...] | None = None  # see _flat_inputs

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> Outputs:
        import tensorflow as tf

        tensors = {k: tf.constant(v, dtype=self.tf_dtypes[k]) for k, v in inputs.items()}
        if self.flat_inputs is not None:
            result = self.fn._call_flat([tensors[k] for k in self.flat_inputs], self.fn.captured_inputs)
        else:
            result = self.fn(**tensors)
        return {k: np.asarray(v.numpy()) for k, v in result.items()}


def load(model_name: str, version: int, path: str, tags: Sequence[str], signature_defs: Any) -> Servable:
    """Load a version with tf.saved_model.load; TensorFlow's errors propagate (loading reports them)."""
    import tensorflow as tf
    from tensorflow.python.framework import dtypes

    loaded = tf.saved_model.load(path, tags=list(tags))
    fns = getattr(loaded, "signatures", {})
    signatures = {}
    for key, sd in signature_defs.signature_def.items():
        run = None
        if key in fns:
            # DType objects, not names: converting by name costs ~30 us per input and call.
            tf_dtypes = {k: dtypes.as_dtype(info.dtype) for k, info in sd.inputs.items() if info.dtype}
            run = FunctionCall(fns[key], tf_dtypes, _flat_inputs(fns[key], sd.inputs))
        inputs, outputs = tensor_specs(sd.inputs), tensor_specs(sd.outputs)
        signatures[key] = Signature(key, sd.method_name, inputs, outputs, run)
    return Servable(model_name, version, path, signature_defs, signatures, _joint_run, loaded, "object graph")


def _joint_run(sigs: Sequence[Signature]) -> Run:
    """Each signature's function on the same inputs, in turn (the functions are separate graphs)."""
    runs = [sig.run for sig in sigs]

    def run(inputs: Mapping[str, np.ndarray]) -> Outputs:
        out = {}
        for i, one in enumerate(runs):
            assert one is not None
            for alias, value in one(inputs).items():
                out[joint_key(i, alias)] = value
        return out

    return run


def _flat_inputs(fn: Any, inputs: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The order of a signature function's flat inputs, when it can be called by that order.

    ``fn(**tensors)`` re-checks and re-binds every argument against the function's
    structured signature on each call: about 0.2 ms of Python per call for the taxi
    model, a third of the call. check_predict_inputs has already checked names and
    dtypes against the SignatureDef (shapes are the model's business, as in TF Serving
    and in TF's own fallback when the structured check fails), so FunctionCall goes
    straight to ``_call_flat``, in the ``_arg_keywords`` order that TensorFlow's own
    flat-signature path (ConcreteFunction._call_with_flat_signature, TF 2.16) uses.
    None, and the public call, for any function that does not fit that pattern.
    """
    keywords = getattr(fn, "_arg_keywords", None)
    if (
        keywords is None
        or not callable(getattr(fn, "_call_flat", None))
        or sorted(keywords) != sorted(inputs)
        or len(fn.inputs) != len(keywords) + len(fn.captured_inputs)
        or any(t.dtype.as_datatype_enum != inputs[k].dtype for t, k in zip(fn.inputs, keywords, strict=False))
        or not _placeholders_named(fn, keywords)
    ):
        return None
    return tuple(keywords)


def _placeholders_named(fn: Any, keywords: Sequence[str]) -> bool:
    """Whether each flat input is the placeholder of the keyword at its position, by name.

    Dtypes alone cannot tell two float inputs apart: were a TensorFlow release
    to order ``_arg_keywords`` differently from the placeholders, the flat call
    would swap them silently. Each placeholder is named after its TensorSpec,
    so the names must match, or the public call is used.
    """
    try:
        specs = fn.structured_input_signature[1]
        return all(t.op.name == specs[k].name for t, k in zip(fn.inputs, keywords, strict=False))
    except (AttributeError, IndexError, KeyError, TypeError):
        return False
