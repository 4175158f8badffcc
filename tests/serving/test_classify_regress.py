"""Classify and Regress by TF Serving 2.16's rules: signatures qualify by their inputs and outputs.

TF Serving runs with --enable_signature_method_name_check=false by default, so a TF2
model's signatures (method_name "predict") classify and regress, over REST and gRPC.
"""

from __future__ import annotations

import math
from typing import Any

import grpc
import httpx
import pytest
from tensorflow_serving.apis import classification_pb2, prediction_service_pb2_grpc, regression_pb2

from serving.config import single_model
from tests.serving.conftest import build_tf2_example_model


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from serving.config import ServerOptions
    from serving.server import start_server

    base = tmp_path_factory.mktemp("models") / "tf2"
    build_tf2_example_model(base / "1")
    handle = start_server(ServerOptions(models=single_model("tf2", str(base)), port=0, rest_api_port=0))
    yield handle
    handle.stop()


def sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def test_rest_classify_and_regress_on_tf2_signatures(server: Any) -> None:
    url = f"{server.rest_url}/v1/models/tf2"
    classify = httpx.post(f"{url}:classify", json={"signature_name": "cls", "examples": [{"x": 1.0}]})
    assert classify.status_code == 200, classify.text
    ((neg, pos),) = classify.json()["results"]
    assert neg[0] == "neg" and pos[0] == "pos" and pos[1] == pytest.approx(sigmoid(2.0), abs=1e-6)
    regress = httpx.post(f"{url}:regress", json={"examples": [{"x": 1.5}, {"x": -1.0}]})  # serving_default
    assert regress.json() == {"results": [3.0, -2.0]}


def test_signatures_that_do_not_fit_are_refused_as_tf_serving_does(server: Any) -> None:
    url = f"{server.rest_url}/v1/models/tf2"
    wrong = httpx.post(f"{url}:classify", json={"signature_name": "reg", "examples": [{"x": 1.0}]})
    assert wrong.status_code == 400
    assert 'at least one of "classes" or "scores"' in wrong.json()["error"]
    assert "Signatures that support classify: cls, flat_scores" in wrong.json()["error"]
    flat = httpx.post(f"{url}:classify", json={"signature_name": "flat_scores", "examples": [{"x": 1.0}]})
    assert flat.status_code == 400
    assert "Expected Tensor shape: [batch_size num_classes] but got [1]" in flat.json()["error"]


def test_grpc_classify_and_regress_on_tf2_signatures(server: Any) -> None:
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        classify = classification_pb2.ClassificationRequest()
        classify.model_spec.name = "tf2"
        classify.model_spec.signature_name = "cls"
        classify.input.example_list.examples.add().features.feature["x"].float_list.value.append(0.0)
        (result,) = stub.Classify(classify, timeout=30).result.classifications
        assert [(c.label, round(c.score, 6)) for c in result.classes] == [("neg", 0.5), ("pos", 0.5)]

        regress = regression_pb2.RegressionRequest()
        regress.model_spec.name = "tf2"
        regress.model_spec.signature_name = "reg"
        regress.input.example_list.examples.add().features.feature["x"].float_list.value.append(4.0)
        assert [r.value for r in stub.Regress(regress, timeout=30).result.regressions] == [8.0]
