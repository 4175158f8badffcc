"""REST response bodies: tensors to JSON, as TF Serving writes them (``util/json_tensor.cc``).

Predict responses are ``predictions`` for row requests, ``outputs`` for columnar
ones; a single output drops its name. String outputs whose name ends in
``_bytes`` are written as ``{"b64": ...}``. Floats are written in the shortest
``%g`` form that round-trips, else with full precision, as TF Serving does.
Classify and regress answer ``{"results": ...}``; errors ``{"error": "..."}``.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from serving.errors import invalid


def predict_response(outputs: Mapping[str, np.ndarray], columnar: bool) -> bytes:
    """The JSON body of a predict response, as TF Serving writes it."""
    if not outputs:
        raise invalid("the signature produced no outputs")
    names = sorted(outputs)
    if columnar:
        if len(names) == 1:
            body = encode_tensor(outputs[names[0]], _as_bytes(names[0]))
        else:
            body = (
                "{"
                + ",".join(f"{json.dumps(n)}:{encode_tensor(outputs[n], _as_bytes(n))}" for n in names)
                + "}"
            )
        return f'{{"outputs":{body}}}'.encode()
    batch = None
    for n in names:
        arr = outputs[n]
        if arr.ndim == 0:
            raise invalid(f"output {n!r} has no batch dimension; use the columnar 'inputs' format")
        if batch is not None and arr.shape[0] != batch:
            raise invalid(
                f"output {n!r} has batch size {arr.shape[0]}, expecting {batch}; "
                "use the columnar 'inputs' format"
            )
        batch = arr.shape[0]
    if len(names) == 1:
        rows = _encode_items(outputs[names[0]], _as_bytes(names[0]))
    else:
        per_output = {n: _encode_items(outputs[n], _as_bytes(n)) for n in names}
        keys = {n: json.dumps(n) for n in names}
        rows = [
            "{" + ",".join(f"{keys[n]}:{per_output[n][i]}" for n in names) + "}" for i in range(batch or 0)
        ]
    return ('{"predictions":[' + ",".join(rows) + "]}").encode()


def classify_response(results: Sequence[Sequence[tuple[bytes, float]]]) -> bytes:
    rows = []
    for classes in results:
        rows.append(
            "[" + ",".join(f"[{_str(label)},{_float(score, np.float32)}]" for label, score in classes) + "]"
        )
    return ('{"results":[' + ",".join(rows) + "]}").encode()


def regress_response(values: Sequence[float]) -> bytes:
    return ('{"results":[' + ",".join(_float(v, np.float32) for v in values) + "]}").encode()


def error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


def _as_bytes(name: str) -> bool:
    return name.endswith("_bytes")


def _encode_items(arr: np.ndarray, as_bytes: bool) -> list[str]:
    if arr.ndim == 1:
        return _encode_flat(arr, as_bytes)
    return [encode_tensor(item, as_bytes) for item in arr]


def encode_tensor(arr: np.ndarray, as_bytes: bool = False) -> str:
    """A dense tensor as nested JSON lists (a scalar as a bare value)."""
    arr = np.asarray(arr)
    if arr.ndim == 0:
        return _encode_flat(arr.reshape(1), as_bytes)[0]
    if arr.ndim == 1:
        return "[" + ",".join(_encode_flat(arr, as_bytes)) + "]"
    return "[" + ",".join(encode_tensor(item, as_bytes) for item in arr) + "]"


def _encode_flat(arr: np.ndarray, as_bytes: bool) -> list[str]:
    kind = arr.dtype.kind
    if kind == "f":
        ftype = np.float64 if arr.dtype == np.float64 else np.float32
        return [_float(v, ftype) for v in arr.astype(ftype).tolist()]
    if kind == "b":
        return ["true" if v else "false" for v in arr.tolist()]
    if kind in "iu":
        return [str(v) for v in arr.tolist()]
    if kind in "OSU":
        return [_b64(v) if as_bytes else _str(v) for v in arr.tolist()]
    raise invalid(f"cannot write outputs of dtype {arr.dtype} as JSON")


def _float(value: float, ftype: Any) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    text = f"{value:g}"  # absl::StrCat: six significant digits
    if ftype(float(text)) != ftype(value):  # does not round-trip: max_digits10
        text = f"{value:.9g}" if ftype is np.float32 else f"{value:.17g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def _str(value: Any) -> str:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            # Not text: TF Serving would write invalid JSON; send it base64-encoded instead.
            return _b64(value)
    return json.dumps(value)


def _b64(value: Any) -> str:
    raw = value if isinstance(value, bytes) else str(value).encode("utf-8")
    return '{"b64":"' + base64.b64encode(raw).decode("ascii") + '"}'
