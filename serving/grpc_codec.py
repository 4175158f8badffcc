"""gRPC messages to and from tensors: TensorProtos, and the tensorflow.serving result messages.

Outputs are written as TF Serving writes them (Tensor::AsProtoField: values in
the typed ``float_val``/``int64_val``... fields), so clients that read either
those fields or ``tf.make_ndarray`` see the same values as from TF Serving.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from tensorflow.core.framework import types_pb2

from serving.classify_regress import classification_results, regression_results
from serving.errors import invalid
from serving.signatures import Signature

# TensorProto's typed value field per dtype, as Tensor::AsProtoField fills them.
_VALUE_FIELDS = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_HALF: "half_val",
    types_pb2.DT_BFLOAT16: "half_val",
    types_pb2.DT_COMPLEX64: "scomplex_val",
    types_pb2.DT_COMPLEX128: "dcomplex_val",
}


def request_tensors(protos: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """A PredictRequest's ``inputs`` as arrays; a malformed TensorProto is the client's error."""
    import tensorflow as tf

    inputs = {}
    for key, proto in protos.items():
        try:
            inputs[key] = tf.make_ndarray(proto)
        except (TypeError, ValueError) as exc:
            raise invalid(f"input {key!r}: malformed TensorProto: {exc}") from exc
    return inputs


def typed_tensor_proto(value: np.ndarray) -> Any:
    """A TensorProto with the values in its typed field (``float_val``, ...), as TF Serving answers.

    TF Serving writes outputs with Tensor::AsProtoField, so clients that read
    ``outputs["y"].float_val`` see the values; ``tf.make_tensor_proto`` would put
    them in ``tensor_content`` bytes instead (``tf.make_ndarray`` reads either).
    """
    import tensorflow as tf
    from tensorflow.core.framework import tensor_pb2

    arr = np.asarray(value)
    dtype = tf.dtypes.as_dtype(arr.dtype).as_datatype_enum if arr.dtype.kind != "O" else None
    field = _VALUE_FIELDS.get(dtype) if dtype is not None else None
    if field is None:
        return tf.make_tensor_proto(arr)  # strings: string_val already
    proto = tensor_pb2.TensorProto(dtype=dtype, tensor_shape=tf.TensorShape(arr.shape).as_proto())
    flat = arr.ravel()
    if field == "half_val":
        values = flat.view(np.uint16).tolist()  # the bit patterns, as TF stores them
    elif field in ("scomplex_val", "dcomplex_val"):
        values = np.column_stack([flat.real, flat.imag]).ravel().tolist()
    else:
        values = flat.tolist()
    getattr(proto, field).extend(values)
    return proto


def fill_classifications(result: Any, sig: Signature, outputs: Any, num_examples: int) -> None:
    """Fill a ClassificationResult from a classify signature's outputs."""
    for classes in classification_results(sig, outputs, num_examples):
        entry = result.classifications.add()
        for label, score in classes:
            entry.classes.add(label=label.decode("utf-8", "replace"), score=score)


def fill_regressions(result: Any, sig: Signature, outputs: Any, num_examples: int) -> None:
    """Fill a RegressionResult from a regress signature's outputs."""
    for value in regression_results(sig, outputs, num_examples):
        result.regressions.add(value=value)


def fill_model_spec(out: Any, servable: Any, signature_name: str) -> None:
    """The ModelSpec a response carries: the model, the version that answered, the signature."""
    out.name = servable.model_name
    out.version.value = servable.version
    out.signature_name = signature_name
