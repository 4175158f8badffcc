"""gRPC conformance with the stock tensorflow_serving.apis stubs: same answers as REST and in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from serving.grpc_codec import typed_tensor_proto
from tests.serving.conftest import TINY_BIAS, copy_version, in_process_predictions


def stubs(server: Any) -> tuple[Any, Any, grpc.Channel]:
    channel = grpc.insecure_channel(server.grpc_target)
    return (
        prediction_service_pb2_grpc.PredictionServiceStub(channel),
        model_service_pb2_grpc.ModelServiceStub(channel),
        channel,
    )


def predict_request(
    rows: list[dict[str, Any]], name: str = "taxi", dtypes: dict[str, Any] | None = None
) -> Any:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    for key in rows[0]:
        values = [r[key] for r in rows]
        if isinstance(values[0], str):
            arr = np.array([v.encode() for v in values], dtype=object)
        else:
            arr = np.array(
                values,
                dtype=(dtypes or {}).get(key, np.float32 if isinstance(values[0], float) else np.int64),
            )
        request.inputs[key].CopyFrom(tf.make_tensor_proto(arr))
    return request


def test_predict_equals_rest_and_in_process(
    taxi_server: Any, pushed_model_dir: Path, taxi_rows: list[dict[str, Any]]
) -> None:
    prediction, _, channel = stubs(taxi_server)
    with channel:
        response = prediction.Predict(predict_request(taxi_rows), timeout=30)
    got = tf.make_ndarray(response.outputs["probabilities"]).tolist()
    assert response.model_spec.name == "taxi"
    assert response.model_spec.version.value == int(pushed_model_dir.name)
    assert response.model_spec.signature_name == "serving_default"
    expected = in_process_predictions(pushed_model_dir, taxi_rows)
    assert got == pytest.approx(expected, abs=1e-6)
    rest = httpx.post(
        f"{taxi_server.rest_url}/v1/models/taxi:predict",
        content=json.dumps({"instances": taxi_rows}),
        timeout=30,
    ).json()["predictions"]
    assert got == pytest.approx(rest, abs=1e-6)


def test_metadata_and_status(taxi_server: Any, pushed_model_dir: Path) -> None:
    prediction, models, channel = stubs(taxi_server)
    with channel:
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = "taxi"
        response = prediction.GetModelMetadata(request, timeout=30)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        assert response.metadata["signature_def"].Unpack(signatures)
        assert {"serving_default", "serving_tf_example", "transform_features"} <= set(
            signatures.signature_def
        )
        assert (
            signatures.signature_def["serving_default"].outputs["probabilities"].dtype
            == tf.float32.as_datatype_enum
        )
        status_request = get_model_status_pb2.GetModelStatusRequest()
        status_request.model_spec.name = "taxi"
        (status,) = models.GetModelStatus(status_request, timeout=30).model_version_status
        assert status.version == int(pushed_model_dir.name)
        assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
        assert status.status.error_code == 0
        with pytest.raises(grpc.RpcError) as info:
            prediction.GetModelMetadata(
                get_model_metadata_pb2.GetModelMetadataRequest(model_spec={"name": "taxi"}), timeout=30
            )
        assert (
            info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "signature_def" in info.value.details()
        )


@pytest.mark.parametrize(
    ("mutate", "code", "fragment"),
    [
        (
            lambda r: r.model_spec.__setattr__("name", "nope"),
            grpc.StatusCode.NOT_FOUND,
            "request: Latest(nope)",
        ),
        (lambda r: r.model_spec.version.__setattr__("value", 7), grpc.StatusCode.NOT_FOUND, "version 7"),
        (
            lambda r: r.model_spec.__setattr__("version_label", "stable"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "Unrecognized servable version label: stable",
        ),
        (
            lambda r: r.model_spec.__setattr__("signature_name", "nope"),
            grpc.StatusCode.FAILED_PRECONDITION,
            'Serving signature key "nope" not found.',
        ),
        (
            lambda r: r.inputs["fare"].CopyFrom(tf.make_tensor_proto(np.array([1], np.int64))),
            grpc.StatusCode.INVALID_ARGUMENT,
            "'fare'",
        ),
        (lambda r: r.inputs.pop("company"), grpc.StatusCode.INVALID_ARGUMENT, "missing: company"),
        (
            lambda r: r.output_filter.append("logits"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "output tensor alias not found in signature: logits Outputs expected to be in the set "
            "{probabilities}.",
        ),
        (
            lambda r: r.output_filter.extend(["probabilities", "probabilities"]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "duplicate output tensor alias: probabilities",
        ),
    ],
)
def test_predict_errors_use_canonical_codes(
    taxi_server: Any, taxi_rows: list[dict[str, Any]], mutate: Any, code: grpc.StatusCode, fragment: str
) -> None:
    request = predict_request(taxi_rows[:1])
    mutate(request)
    prediction, _, channel = stubs(taxi_server)
    with channel, pytest.raises(grpc.RpcError) as info:
        prediction.Predict(request, timeout=30)
    assert info.value.code() == code
    assert fragment in info.value.details()


def test_classify_and_regress_with_stock_stubs(
    start_server: Any, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from serving.config import single_model

    copy_version(tiny_model_dir, tmp_path / "tiny", 1)
    server = start_server(models=single_model("tiny", str(tmp_path / "tiny")))
    prediction, _, channel = stubs(server)
    with channel:
        request = classification_pb2.ClassificationRequest()
        request.model_spec.name = "tiny"
        request.model_spec.signature_name = "classify"
        request.input.example_list.examples.add().features.feature["x"].float_list.value.append(2.0)
        (result,) = prediction.Classify(request, timeout=30).result.classifications
        assert [c.label for c in result.classes] == ["neg", "pos"]
        assert result.classes[1].score == pytest.approx(1 / (1 + np.exp(-2.0)), abs=1e-6)
        rest = httpx.post(
            f"{server.rest_url}/v1/models/tiny:classify",
            content=json.dumps({"signature_name": "classify", "examples": [{"x": 2.0}]}),
            timeout=30,
        ).json()
        assert rest["results"][0][1][1] == pytest.approx(result.classes[1].score, abs=1e-7)

        request = regression_pb2.RegressionRequest()
        request.model_spec.name = "tiny"
        request.model_spec.signature_name = "regress"
        ctx = request.input.example_list_with_context
        ctx.context.features.feature["x"].float_list.value.append(5.0)
        ctx.examples.add()
        ctx.examples.add().features.feature["x"].float_list.value.append(-1.0)
        response = prediction.Regress(request, timeout=30)
        assert [r.value for r in response.result.regressions] == [2 * 5.0 + TINY_BIAS, 2 * -1.0 + TINY_BIAS]
        assert response.model_spec.version.value == 1

        request.model_spec.signature_name = "serving_default"
        with pytest.raises(grpc.RpcError) as info:
            prediction.Regress(request, timeout=30)
        assert (
            info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            and "does not support regress" in info.value.details()
        )

        multi = predict_request([{"x": 1.0, "n": 2, "tag": "a"}], name="tiny")
        multi.output_filter.append("doubled")
        outputs = prediction.Predict(multi, timeout=30).outputs
        assert list(outputs) == ["doubled"] and tf.make_ndarray(outputs["doubled"]).tolist() == [2.0]


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (np.array([[1.5, -2.0]], np.float32), "float_val"),
        (np.array(3.25), "double_val"),
        (np.array([1, 2], np.int64), "int64_val"),
        (np.array([7, 255], np.uint8), "int_val"),
        (np.array([True, False]), "bool_val"),
        (np.array([1.5], np.float16), "half_val"),
        (np.array([1 + 2j], np.complex64), "scomplex_val"),
        (np.array([2**63], np.uint64), "uint64_val"),
        (np.array([b"a", b"\xff"], object), "string_val"),
    ],
)
def test_output_tensors_use_typed_value_fields(value: np.ndarray, field: str) -> None:
    proto = typed_tensor_proto(value)
    assert proto.tensor_content == b"" and len(getattr(proto, field)) > 0
    back = tf.make_ndarray(proto)
    assert back.shape == value.shape and back.tolist() == value.tolist()
