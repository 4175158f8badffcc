"""Which signatures can classify or regress, on which examples, and what their outputs mean.

By TF Serving 2.16's rules (classifier.cc, regressor.cc, util.cc): a signature
qualifies by its inputs and outputs, and its outputs are checked as
PostProcessClassificationResult / PostProcessRegressionResult check them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from serving.errors import invalid
from serving.signatures import Signature

if TYPE_CHECKING:
    from serving.servable import Servable


def _classify_problem(sig: Signature) -> str:
    """Why TF Serving would refuse to classify with this signature ("" if it would not)."""
    if len(sig.inputs) != 1:
        return "Expected one input Tensor."
    if len(sig.outputs) not in (1, 2):
        return f"Expected one or two output Tensors, found {len(sig.outputs)}"
    if "inputs" not in sig.inputs:
        return f"No classification inputs found in SignatureDef: the input is {next(iter(sig.inputs))!r}"
    if "classes" not in sig.outputs and "scores" not in sig.outputs:
        return 'Expected classification signature outputs to contain at least one of "classes" or "scores"'
    return _examples_input_problem(sig)


def _regress_problem(sig: Signature) -> str:
    """Why TF Serving would refuse to regress with this signature ("" if it would not)."""
    if len(sig.inputs) != 1:
        return "Expected one input Tensor."
    if len(sig.outputs) != 1:
        return "Expected one output Tensor."
    if "inputs" not in sig.inputs:
        return f"No regression inputs found in SignatureDef: the input is {next(iter(sig.inputs))!r}"
    if "outputs" not in sig.outputs:
        return f"No regression outputs found in SignatureDef: the output is {next(iter(sig.outputs))!r}"
    return _examples_input_problem(sig)


def _examples_input_problem(sig: Signature) -> str:
    if sig.inputs["inputs"].dtype != "string":
        return "the 'inputs' input must be a string tensor of serialized tf.Examples"
    return ""


def _example_signature(servable: Servable, name: str, api: str, problem_of: Any) -> Signature:
    """The signature to classify or regress with, by TF Serving 2.16's rules.

    TF Serving runs with --enable_signature_method_name_check=false by default, so a
    signature qualifies by its inputs and outputs (a TF2 model's signatures all say
    "predict"): one input named "inputs" that takes serialized tf.Examples, and
    "classes"/"scores" outputs (classify) or one "outputs" output (regress).
    """
    sig = servable.signature(name)
    problem = problem_of(sig)
    if problem:
        supporting = sorted(
            k for k, s in servable.signatures.items() if s.run is not None and not problem_of(s)
        )
        raise invalid(
            f"signature {sig.name!r} of model {servable.model_name!r} does not support {api}: {problem} "
            + (
                f"Signatures that support {api}: {', '.join(supporting)}."
                if supporting
                else f"This model has no {api} signature; use :predict."
            )
        )
    return sig


def classify_signature(servable: Servable, name: str) -> Signature:
    return _example_signature(servable, name, "classify", _classify_problem)


def regress_signature(servable: Servable, name: str) -> Signature:
    return _example_signature(servable, name, "regress", _regress_problem)


def serialized_examples(input_proto: Any) -> list[bytes]:
    """A tensorflow.serving.Input as serialized tf.Examples (context merged in)."""
    kind = input_proto.WhichOneof("kind")
    if kind == "example_list":
        return [e.SerializeToString() for e in input_proto.example_list.examples]
    if kind == "example_list_with_context":
        ctx = input_proto.example_list_with_context.context.SerializeToString()
        return [ctx + e.SerializeToString() for e in input_proto.example_list_with_context.examples]
    raise invalid("Input is empty: set example_list or example_list_with_context")


def example_inputs(sig: Signature, examples: list[bytes]) -> dict[str, np.ndarray]:
    if not examples:
        raise invalid("no examples to score: send at least one")
    arr = np.empty(len(examples), dtype=np.object_)
    arr[:] = examples
    return {next(iter(sig.inputs)): arr}


def classification_results(
    sig: Signature, outputs: Mapping[str, np.ndarray], num_examples: int
) -> list[list[tuple[bytes, float]]]:
    """Per example: (label, score) pairs, checked as TF Serving's PostProcessClassificationResult."""
    classes, scores = outputs.get("classes"), outputs.get("scores")
    for name, arr, dtype_ok, dtype in (
        ("classes", classes, classes is not None and classes.dtype.kind in "OSU", "DT_STRING"),
        ("scores", scores, scores is not None and scores.dtype == np.float32, "DT_FLOAT"),
    ):
        if arr is None:
            continue
        if arr.ndim != 2:
            raise invalid(
                f"Expected Tensor shape: [batch_size num_classes] but got {list(arr.shape)} ({name})"
            )
        if not dtype_ok:
            raise invalid(f"Expected {name} Tensor of {dtype}. Got: {arr.dtype}")
        if arr.shape[0] != num_examples:
            raise invalid(f"Expected {name} output batch size of {num_examples}. Got: {arr.shape[0]}")
    if classes is not None and scores is not None and classes.shape != scores.shape:
        raise invalid(
            "Tensors class and score should match in dim_size(1). "
            f"Got {classes.shape[1]} vs. {scores.shape[1]}"
        )
    ref = scores if scores is not None else classes
    assert ref is not None
    return [
        [
            (
                classes[i, j] if classes is not None else b"",
                float(scores[i, j]) if scores is not None else 0.0,
            )
            for j in range(ref.shape[1])
        ]
        for i in range(ref.shape[0])
    ]


def regression_results(sig: Signature, outputs: Mapping[str, np.ndarray], num_examples: int) -> list[float]:
    """One value per example, checked as TF Serving's PostProcessRegressionResult."""
    values = outputs["outputs"]
    if values.dtype != np.float32:
        raise invalid(f"Expected output Tensor of DT_FLOAT. Got: {values.dtype}")
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise invalid(
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] "
            f"but got {list(values.shape)}"
        )
    if values.shape[0] != num_examples:
        raise invalid(
            f"Input batch size did not match output batch size: {num_examples} vs. {values.shape[0]}"
        )
    return [float(v) for v in values]
