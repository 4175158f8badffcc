"""Which Predict requests a signature accepts: input names and dtypes, shapes, and the output filter.

The checks and messages follow TF Serving's predict_util, with the offending
input named and the fix said.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from serving.errors import invalid
from serving.signatures import Signature, TensorSpec


def check_predict_inputs(sig: Signature, inputs: Mapping[str, np.ndarray]) -> int | None:
    """Check names and dtypes against the signature; return the batch size if the request can be batched.

    Shapes are left to the model, as TF Serving does: its documented half_plus_two
    example feeds ``{"instances": [1.0, 2.0, 5.0]}`` (shape [3]) to an input the
    SignatureDef declares [-1, 1]. A request whose shapes do not fit the SignatureDef
    is never merged into a batch (None), and if the model rejects it, the error
    names the input (shape_mismatch).
    """
    missing = sorted(set(sig.inputs) - set(inputs))
    extra = sorted(set(inputs) - set(sig.inputs))
    if missing or extra:
        raise invalid(
            f"signature {sig.name!r} takes inputs {', '.join(sorted(sig.inputs))};"
            + (f" missing: {', '.join(missing)}" if missing else "")
            + (f" unexpected: {', '.join(extra)}" if extra else "")
        )
    for key, arr in inputs.items():
        spec = sig.inputs[key]
        if not _dtype_ok(arr, spec):
            raise invalid(
                f"input {key!r}: got dtype {_dtype_name(arr)}, the signature expects {spec.describe()}"
            )
    if shape_mismatch(sig, inputs):
        return None
    batch = {arr.shape[0] for arr in inputs.values() if arr.ndim}
    return batch.pop() if len(batch) == 1 else None


def shape_mismatch(sig: Signature, inputs: Mapping[str, np.ndarray]) -> str:
    """How the inputs' shapes differ from the SignatureDef's ("" if they fit)."""
    for key, arr in inputs.items():
        spec = sig.inputs.get(key)
        if spec is None or spec.shape is None:
            continue
        if arr.ndim != len(spec.shape) or any(
            d not in (-1, n) for d, n in zip(spec.shape, arr.shape, strict=True)
        ):
            return f"input {key!r}: got shape {list(arr.shape)}, the signature expects {spec.describe()}" + (
                " (row format: one scalar per instance)" if len(spec.shape) == 1 else ""
            )
    sizes = sorted({arr.shape[0] for arr in inputs.values() if arr.ndim})
    if sig.batchable and len(sizes) > 1:
        return f"inputs of signature {sig.name!r} have different batch sizes {sizes}"
    return ""


def _dtype_ok(arr: np.ndarray, spec: TensorSpec) -> bool:
    if spec.dtype == "string":
        return arr.dtype.kind in "OSU"
    if spec.dtype == "bfloat16":
        return arr.dtype.kind == "f"
    return arr.dtype == np.dtype(spec.np_dtype)


def _dtype_name(arr: np.ndarray) -> str:
    return "string" if arr.dtype.kind in "OSU" else str(arr.dtype)


def output_filter(sig: Signature, wanted: Iterable[str]) -> list[str]:
    """The outputs a Predict request asks for ([] for all), checked as TF Serving's predict_util does."""
    names: list[str] = []
    for alias in wanted:
        if alias not in sig.outputs:
            raise invalid(
                f"output tensor alias not found in signature: {alias} "
                f"Outputs expected to be in the set {{{','.join(sorted(sig.outputs))}}}."
            )
        if alias in names:
            raise invalid(f"duplicate output tensor alias: {alias}")
        names.append(alias)
    return names
