"""TF Serving's own documented requests, sent as its docs send them, get its documented answers.

The model is built like TF Serving's testdata ``saved_model_half_plus_three/00000123``
(conftest.build_half_plus_three); the requests and expected bodies are those of
TF Serving's REST API guide (g3doc/api_rest.md, "Example").
"""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from serving.config import single_model
from tests.serving.conftest import build_half_plus_three


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from serving.config import ServerOptions
    from serving.server import start_server

    base = tmp_path_factory.mktemp("models") / "half_plus_three"
    build_half_plus_three(base / "00000123")
    handle = start_server(
        ServerOptions(models=single_model("half_plus_three", str(base)), port=0, rest_api_port=0)
    )
    yield handle
    handle.stop()


def test_status(server: Any) -> None:
    response = httpx.get(f"{server.rest_url}/v1/models/half_plus_three", timeout=30)
    assert response.json() == {
        "model_version_status": [
            {"version": "123", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }


def test_predict_with_scalar_instances(server: Any) -> None:
    # x is declared [-1, 1]; TF Serving feeds the [3] tensor as sent and so do we.
    response = httpx.post(
        f"{server.rest_url}/v1/models/half_plus_three:predict", content='{"instances": [1.0,2.0,5.0]}'
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": [3.5, 4.0, 5.5]}


def test_regress_on_a_named_signature(server: Any) -> None:
    body = '{"signature_name": "tensorflow/serving/regress", "examples": [{"x": 1.0}, {"x": 2.0}]}'
    response = httpx.post(f"{server.rest_url}/v1/models/half_plus_three:regress", content=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"results": [3.5, 4.0]}


def test_unknown_model_is_404_with_tf_servings_message(server: Any) -> None:
    response = httpx.post(f"{server.rest_url}/v1/models/half:predict", content='{"instances": [1.0,5.0]}')
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"].startswith("Servable not found for request: Latest(half)")


def test_the_same_model_over_grpc_with_the_stock_stubs(server: Any) -> None:
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "half_plus_three"
        request.inputs["x"].CopyFrom(tf.make_tensor_proto([1.0, 2.0, 5.0], dtype=tf.float32))
        response = stub.Predict(request, timeout=30)
        # Values in float_val, as TF Serving writes them (clients read either this or tf.make_ndarray).
        assert list(response.outputs["y"].float_val) == [3.5, 4.0, 5.5]
        assert tf.make_ndarray(response.outputs["y"]).tolist() == [3.5, 4.0, 5.5]
        assert response.model_spec.version.value == 123

        regress = regression_pb2.RegressionRequest()
        regress.model_spec.name = "half_plus_three"
        regress.model_spec.signature_name = "tensorflow/serving/regress"
        for value in (1.0, 2.0):
            regress.input.example_list.examples.add().features.feature["x"].float_list.value.append(value)
        results = stub.Regress(regress, timeout=30).result.regressions
        assert [r.value for r in results] == [3.5, 4.0]

        classify = classification_pb2.ClassificationRequest()
        classify.model_spec.name = "half_plus_three"
        classify.model_spec.signature_name = "tensorflow/serving/classify"
        classify.input.example_list.examples.add().features.feature["x"].float_list.value.append(5.0)
        classes = stub.Classify(classify, timeout=30).result.classifications
        assert [(c.label, c.score) for c in classes[0].classes] == [("", 5.5)]


def test_multi_inference_runs_classify_and_regress_on_the_same_examples(server: Any) -> None:
    request = inference_pb2.MultiInferenceRequest()
    for signature, method in (
        ("tensorflow/serving/regress", "tensorflow/serving/regress"),
        ("tensorflow/serving/classify", "tensorflow/serving/classify"),
    ):
        task = request.tasks.add(method_name=method)
        task.model_spec.name = "half_plus_three"
        task.model_spec.signature_name = signature
    for value in (1.0, 2.0):
        request.input.example_list.examples.add().features.feature["x"].float_list.value.append(value)
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        regress, classify = stub.MultiInference(request, timeout=30).results
        assert [r.value for r in regress.regression_result.regressions] == [3.5, 4.0]
        assert regress.model_spec.version.value == 123
        assert [[c.score for c in e.classes] for e in classify.classification_result.classifications] == [
            [3.5],
            [4.0],
        ]
        # The same signature twice, or a predict task, is refused as TF Serving refuses it.
        request.tasks[1].model_spec.signature_name = "tensorflow/serving/regress"
        request.tasks[1].method_name = "tensorflow/serving/regress"
        with pytest.raises(grpc.RpcError) as twice:
            stub.MultiInference(request, timeout=30)
        assert twice.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "Duplicate evaluation of signature: tensorflow/serving/regress" in twice.value.details()
        request.tasks[1].model_spec.signature_name = "serving_default"
        request.tasks[1].method_name = "tensorflow/serving/predict"
        with pytest.raises(grpc.RpcError) as predict:
            stub.MultiInference(request, timeout=30)
        assert predict.value.code() == grpc.StatusCode.UNIMPLEMENTED
