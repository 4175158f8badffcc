"""What a signature takes and returns: its inputs' and outputs' dtypes and shapes, read from its SignatureDef.

A Signature also carries ``run``, the call that evaluates it on the runtime its
version was loaded into (a TF2 ConcreteFunction, serving.object_graph, or a
TF1 session, serving.graph_session); everything else about it is the same for both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

DEFAULT_SIGNATURE = "serving_default"

Outputs = dict[str, np.ndarray]
# Evaluates a signature on already-checked inputs (keyed by input alias); outputs keyed by output alias.
Run = Callable[[Mapping[str, np.ndarray]], Outputs]

_FLOATS = {"float16": np.float16, "bfloat16": np.float32, "float32": np.float32, "float64": np.float64}


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """A signature input or output: its key, TF dtype name and shape (-1: any; None: any rank)."""

    key: str
    dtype: str
    shape: tuple[int, ...] | None

    @property
    def np_dtype(self) -> Any:
        if self.dtype == "string":
            return np.object_
        if self.dtype in _FLOATS:
            return _FLOATS[self.dtype]
        return np.dtype(self.dtype)

    def describe(self) -> str:
        shape = "[?]" if self.shape is None else "[" + ",".join(str(d) for d in self.shape) + "]"
        return f"{self.dtype}{shape}"


@dataclasses.dataclass(frozen=True)
class Signature:
    name: str
    method_name: str
    inputs: Mapping[str, TensorSpec]
    outputs: Mapping[str, TensorSpec]
    run: Run | None = None  # None: cannot be called (__saved_model_init_op, or inputs that are not dense)

    @property
    def batchable(self) -> bool:
        """Whether requests can be concatenated along dimension 0 and split back."""
        specs = list(self.inputs.values()) + list(self.outputs.values())
        return bool(self.inputs) and all(
            s.shape is not None and len(s.shape) >= 1 and s.shape[0] == -1 for s in specs
        )


def tensor_specs(infos: Mapping[str, Any]) -> dict[str, TensorSpec]:
    """The specs of a SignatureDef's ``inputs`` or ``outputs`` (TensorInfo by alias).

    A TensorInfo without a ``tensor_shape`` (written by old TF1 exporters, e.g. TF
    Serving's testdata ``saved_model_half_plus_three``) says nothing about the shape:
    any rank, not a scalar, although an unset TensorShapeProto would read as rank 0.
    """
    from tensorflow.python.framework import dtypes

    out = {}
    for key, info in infos.items():
        dtype = dtypes.as_dtype(info.dtype).name if info.dtype else "invalid"
        known = info.HasField("tensor_shape") and not info.tensor_shape.unknown_rank
        shape = tuple(d.size for d in info.tensor_shape.dim) if known else None
        out[key] = TensorSpec(key, dtype, shape)
    return out
