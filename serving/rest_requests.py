"""REST request bodies: JSON to tensors and tf.Examples, by TF Serving's rules (``util/json_tensor.cc``).

- Predict requests: ``instances`` (row format: one entry per batch item) or
  ``inputs`` (columnar: one value per named input, batch dimension included),
  never both. Binary strings are ``{"b64": "..."}``. NaN and +/-Infinity are
  accepted as JSON tokens for floating-point inputs, as TF Serving's parser does.
- Classify/regress requests: ``{"signature_name"?, "context"?, "examples": [...]}``
  with feature values turned into ``tf.Example`` features by JSON type.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from serving.errors import invalid
from serving.signatures import TensorSpec

_FLOAT32_MAX_INT = (1 << 24) - 1
_FLOAT64_MAX_INT = (1 << 53) - 1
_INT_RANGES = {
    "int8": (-(1 << 7), (1 << 7) - 1),
    "int16": (-(1 << 15), (1 << 15) - 1),
    "int32": (-(1 << 31), (1 << 31) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
    "uint8": (0, (1 << 8) - 1),
    "uint16": (0, (1 << 16) - 1),
    "uint32": (0, (1 << 32) - 1),
    "uint64": (0, (1 << 64) - 1),
}
_FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")




def parse_json_object(body: bytes) -> dict[str, Any]:
    """Parse a request body that must be a JSON object."""
    if not body.strip():
        raise invalid("JSON Parse error: The document is empty")
    try:
        doc = json.loads(body)
    except UnicodeDecodeError as exc:
        raise invalid(
            f"JSON Parse error: the body is not UTF-8 ({exc.reason} at offset {exc.start})"
        ) from exc
    except json.JSONDecodeError as exc:
        raise invalid(f"JSON Parse error: {exc.msg} at offset {exc.pos}") from exc
    except RecursionError as exc:
        raise invalid("JSON Parse error: the document is nested too deeply") from exc
    if not isinstance(doc, dict):
        raise invalid(f"JSON Value: {_short(doc)} Is not object")
    return doc


def signature_name(doc: Mapping[str, Any]) -> str:
    name = doc.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid(f"'signature_name' key must be a string value, got {_short(name)}")
    return name


def predict_inputs(
    doc: Mapping[str, Any], specs: Mapping[str, TensorSpec]
) -> tuple[dict[str, np.ndarray], bool]:
    """Tensors of a predict request body, and whether it was columnar (``inputs``)."""
    if not specs:
        raise invalid("the signature has no inputs to fill")
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise invalid("send exactly one of 'instances' (row format) or 'inputs' (columnar format), not both")
    if has_instances:
        return _from_instances(doc["instances"], specs), False
    if has_inputs:
        return _from_inputs(doc["inputs"], specs), True
    raise invalid("Missing 'inputs' or 'instances' key")


_SCALAR_TYPES = {"float32": (int, float), "int64": (int,), "string": (str,)}


def _scalar_columns(
    columns: dict[str, list[Any]], specs: Mapping[str, TensorSpec]
) -> dict[str, np.ndarray] | None:
    """The common case, taken fast: every input is [batch] and every value a plain JSON scalar.

    Returns None (use the general path, which also words the errors) when anything else shows up.
    """
    out = {}
    for name, values in columns.items():
        spec = specs[name]
        kinds = _SCALAR_TYPES.get(spec.dtype)
        if kinds is None or spec.shape != (-1,) or not all(type(v) in kinds for v in values):
            return None
        if spec.dtype == "string":
            arr = np.empty(len(values), dtype=np.object_)
            arr[:] = [v.encode("utf-8") for v in values]
        elif spec.dtype == "int64":
            if not all(-(1 << 63) <= v < (1 << 63) for v in values):
                return None
            arr = np.asarray(values, dtype=np.int64)
        else:
            if spec.dtype == "float32" and not _lossless_float32(values):
                return None
            arr = np.asarray(values, dtype=spec.np_dtype)
        out[name] = arr
    return out


def _lossless_float32(values: list[Any]) -> bool:
    limit = float(np.finfo(np.float32).max)
    for v in values:
        if type(v) is int:
            if abs(v) > _FLOAT32_MAX_INT:
                return False
        elif abs(v) > limit and math.isfinite(v):
            return False
    return True


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _is_named_object(value: Any) -> bool:
    return isinstance(value, dict) and not _is_b64(value)


def _from_instances(instances: Any, specs: Mapping[str, TensorSpec]) -> dict[str, np.ndarray]:
    if not isinstance(instances, list):
        raise invalid("'instances' must be a list, one entry per example")
    if not instances:
        raise invalid("No values in 'instances' array")
    names = sorted(specs)
    if _is_named_object(instances[0]):
        columns: dict[str, list[Any]] = {name: [] for name in names}
        for i, item in enumerate(instances):
            if not _is_named_object(item):
                raise invalid(f"instances[{i}]: expecting an object like instances[0], got {_short(item)}")
            if item.keys() != columns.keys():
                missing = sorted(columns.keys() - item.keys())
                extra = sorted(item.keys() - columns.keys())
                raise invalid(
                    f"instances[{i}]: keys must be exactly the signature's inputs ({', '.join(names)});"
                    + (f" missing: {', '.join(missing)}" if missing else "")
                    + (f" unexpected: {', '.join(extra)}" if extra else "")
                    + _missing_hint(missing)
                )
            for name, value in item.items():
                columns[name].append(value)
        fast = _scalar_columns(columns, specs)
        if fast is not None:
            return fast
    else:
        if len(specs) > 1:
            raise invalid(
                "instances is a plain list, but the signature has several inputs "
                f"({', '.join(names)}): send a list of objects keyed by input name"
            )
        for i, item in enumerate(instances):
            if _is_named_object(item):
                raise invalid(f"instances[{i}]: expecting a value or list like instances[0], got an object")
        columns = {names[0]: instances}
    return {name: _batch_from_rows(columns[name], specs[name]) for name in names}


def _from_inputs(value: Any, specs: Mapping[str, TensorSpec]) -> dict[str, np.ndarray]:
    names = sorted(specs)
    if not _is_named_object(value):
        if len(specs) > 1:
            raise invalid(
                "'inputs' is a plain value/list, but the signature has several inputs "
                f"({', '.join(names)}): send an object keyed by input name"
            )
        return {names[0]: to_array(value, specs[names[0]], f"inputs[{names[0]!r}]")}
    # As TF Serving does, only the signature's inputs are read; other keys are ignored.
    missing = [n for n in names if n not in value]
    if missing:
        raise invalid(
            f"Missing named input: {missing[0]} in 'inputs' object. The signature's inputs are "
            f"{', '.join(names)}; missing: {', '.join(missing)}" + _missing_hint(missing)
        )
    return {n: to_array(value[n], specs[n], f"inputs[{n!r}]") for n in names}


def _missing_hint(missing: Sequence[str]) -> str:
    return '; send a missing value as NaN (numbers) or "" (strings)' if missing else ""


def _batch_from_rows(rows: list[Any], spec: TensorSpec) -> np.ndarray:
    first = _json_shape(rows[0])
    for i, row in enumerate(rows):
        if _json_shape(row) != first:
            raise invalid(
                f"instances[{i}], input {spec.key!r}: shape {list(_json_shape(row))} differs from "
                f"instances[0]'s {list(first)}; every instance must have the same shape"
            )
    return to_array(rows, spec, f"input {spec.key!r}")


def _json_shape(value: Any) -> tuple[int, ...]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return tuple(shape)


def to_array(value: Any, spec: TensorSpec, where: str) -> np.ndarray:
    """A JSON value (scalar or nested lists) as a dense array of the spec's dtype."""
    shape = _json_shape(value)
    flat: list[Any] = []
    _flatten(value, shape, 0, flat, where)
    return _convert(flat, spec, where).reshape(shape)


def _flatten(value: Any, shape: tuple[int, ...], level: int, out: list[Any], where: str) -> None:
    if level == len(shape):
        if isinstance(value, list):
            raise invalid(f"{where}: list found below the expected depth {len(shape)}; the tensor is ragged")
        out.append(value)
        return
    if not isinstance(value, list):
        raise invalid(f"{where}: {_short(value)} found at depth {level}, expected a list of {shape[level]}")
    if len(value) != shape[level]:
        raise invalid(
            f"{where}: list of {len(value)} at depth {level}, expected {shape[level]}; the tensor is ragged "
            "(every list at one depth must have the same length)"
        )
    if level == len(shape) - 1:
        for item in value:
            if isinstance(item, list):
                raise invalid(
                    f"{where}: list found below the expected depth {len(shape)}; the tensor is ragged"
                )
        out.extend(value)
        return
    for item in value:
        _flatten(item, shape, level + 1, out, where)


def _convert(flat: list[Any], spec: TensorSpec, where: str) -> np.ndarray:
    dtype = spec.dtype
    kinds = set(map(type, flat))
    if dtype == "string":
        return _strings(flat, where)
    if dtype in _FLOAT_DTYPES:
        if not kinds <= {int, float}:
            raise _type_error(flat, (int, float), dtype, where, "send numbers (NaN/Infinity allowed)")
        max_int = _FLOAT32_MAX_INT if dtype != "float64" else _FLOAT64_MAX_INT
        limit = np.finfo(np.float32 if dtype != "float64" else np.float64).max
        for v in flat:
            if (type(v) is int and abs(v) > max_int) or (
                type(v) is float and math.isfinite(v) and abs(v) > limit
            ):
                raise invalid(f"{where}: cannot convert JSON value {v} to {dtype} without loss of precision")
        return np.asarray(flat, dtype=spec.np_dtype)
    if dtype == "bool":
        if not kinds <= {bool}:
            raise _type_error(flat, (bool,), dtype, where, "send true or false")
        return np.asarray(flat, dtype=np.bool_)
    if dtype in _INT_RANGES:
        if not kinds <= {int}:
            raise _type_error(flat, (int,), dtype, where, "send whole numbers without a decimal point")
        lo, hi = _INT_RANGES[dtype]
        for v in flat:
            if not lo <= v <= hi:
                raise invalid(f"{where}: JSON value {v} is out of range for {dtype}")
        return np.asarray(flat, dtype=spec.np_dtype)
    raise invalid(f"{where}: inputs of type {dtype} cannot be sent as JSON")


def _type_error(flat: list[Any], ok: tuple[type, ...], dtype: str, where: str, hint: str) -> Exception:
    bad = next(v for v in flat if type(v) not in ok)
    return invalid(
        f"{where}: JSON value {_short(bad)} ({_json_type(bad)}) is not of expected type {dtype}; {hint}"
    )


def _strings(flat: list[Any], where: str) -> np.ndarray:
    out = np.empty(len(flat), dtype=np.object_)
    for i, v in enumerate(flat):
        if isinstance(v, str):
            out[i] = v.encode("utf-8")
        elif _is_b64(v):
            out[i] = _b64decode(v["b64"], where)
        else:
            raise invalid(
                f"{where}: JSON value {_short(v)} ({_json_type(v)}) is not of expected type string; "
                'send a string, or {"b64": "..."} for binary data'
            )
    return out


def _b64decode(text: str, where: str) -> bytes:
    """Decode as TF Serving's absl::Base64Unescape does: whitespace skipped, padding optional."""
    compact = "".join(text.split())
    if "=" not in compact:
        compact += "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid(f"{where}: unable to base64-decode {_short(text)}: {exc}") from exc


def _json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float)):
        return "Number"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "Array"
    return "Object"


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value) if not isinstance(value, bytes) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def examples_from_json(doc: Mapping[str, Any]) -> list[bytes]:
    """Serialized tf.Examples of a classify/regress body; ``context`` features are merged in."""
    from tensorflow.core.example import example_pb2

    examples = doc.get("examples")
    if examples is None:
        raise invalid(
            "key 'examples' is expected and was not found: send {\"examples\": [{feature: value}, ...]}"
        )
    if not isinstance(examples, list):
        raise invalid("'examples' must be a list of objects")
    if not examples:
        raise invalid("'examples' is an empty list")
    context = b""
    if "context" in doc:
        context = _example(doc["context"], "context", example_pb2).SerializeToString()
    # Concatenated serialized messages merge; the example's features win over
    # the context's, as with TF Serving's ExampleListWithContext.
    return [
        context + _example(e, f"examples[{i}]", example_pb2).SerializeToString()
        for i, e in enumerate(examples)
    ]


def _example(obj: Any, where: str, example_pb2: Any) -> Any:
    if not isinstance(obj, dict):
        raise invalid(f"{where}: an example must be a JSON object, got {_json_type(obj)}")
    example = example_pb2.Example()
    for name, content in obj.items():
        feature = example.features.feature[name]
        for value in content if isinstance(content, list) else [content]:
            _add_feature_value(feature, value, f"{where} feature {name!r}")
    return example


def _add_feature_value(feature: Any, value: Any, where: str) -> None:
    kind = feature.WhichOneof("kind")

    def check(expected: str) -> None:
        if kind not in (None, expected):
            raise invalid(f"{where}: mixes value types ({kind} and {expected}); use one type per feature")

    if isinstance(value, bool):
        check("int64_list")
        feature.int64_list.value.append(int(value))
    elif isinstance(value, int):
        check("int64_list")
        if not -(1 << 63) <= value < (1 << 63):
            raise invalid(f"{where}: {value} does not fit in int64")
        feature.int64_list.value.append(value)
    elif isinstance(value, float):
        check("float_list")
        if math.isfinite(value) and abs(value) > np.finfo(np.float32).max:
            raise invalid(f"{where}: cannot convert {value} to float without loss of precision")
        feature.float_list.value.append(value)
    elif isinstance(value, str):
        check("bytes_list")
        feature.bytes_list.value.append(value.encode("utf-8"))
    elif _is_b64(value):
        check("bytes_list")
        feature.bytes_list.value.append(_b64decode(value["b64"], where))
    else:
        raise invalid(f"{where}: has an element of unexpected JSON type {_json_type(value)}")
