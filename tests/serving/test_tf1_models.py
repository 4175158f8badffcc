"""TF1 SavedModels whose signatures carry no shapes, served through a session as TF Serving serves them.

Built like TF Serving's testdata ``saved_model_half_plus_three`` (conftest.build_shapeless_tf1_model),
which tf.saved_model.load cannot load. REST and gRPC answer predict, classify, regress, status and
metadata; a new version swaps in; a config file names, and reloads, the models (TF Serving's
testGoodModelConfig and testModelConfigReload).
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from serving.config import single_model
from tests.serving.conftest import build_shapeless_tf1_model, copy_version, wait_until

MODEL = "half_plus_three"


def sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Version directories to push: y = 0.5 x + 3 (version 1), y = 0.5 x + 4 (version 2)."""
    root = tmp_path_factory.mktemp("builds")
    return {v: build_shapeless_tf1_model(root / str(v), bias=2.0 + v) for v in (1, 2)}


@pytest.fixture(scope="module")
def server(versions: dict[int, Path], tmp_path_factory: pytest.TempPathFactory) -> Any:
    from serving.config import ServerOptions
    from serving.server import start_server

    base = tmp_path_factory.mktemp("models") / MODEL
    copy_version(versions[1], base, 123)
    handle = start_server(ServerOptions(models=single_model(MODEL, str(base)), port=0, rest_api_port=0))
    yield handle
    handle.stop()


def post(server: Any, verb: str, body: dict[str, Any], model: str = MODEL) -> Any:
    url = f"{server.rest_url}/v1/models/{model}:{verb}"
    response = httpx.post(url, content=json.dumps(body), timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_rest_predict_classify_regress(server: Any) -> None:
    assert post(server, "predict", {"instances": [[2.0]]}) == {"predictions": [[4.0]]}
    assert post(server, "predict", {"instances": [1.0, 2.0, 5.0]}) == {"predictions": [3.5, 4.0, 5.5]}
    assert post(server, "predict", {"inputs": {"x": [[2.0], [4.0]]}}) == {"outputs": [[4.0], [5.0]]}
    body = {"signature_name": "regress", "examples": [{"x": 2.0}, {"x": -6.0}]}
    assert post(server, "regress", body) == {"results": [4.0, 0.0]}
    body = {"signature_name": "classify", "examples": [{"x": 2.0}]}
    ((neg, pos),) = post(server, "classify", body)["results"]
    assert neg[0] == "neg" and pos[0] == "pos"
    assert pos[1] == pytest.approx(sigmoid(4.0), abs=1e-6)
    assert neg[1] == pytest.approx(1 - sigmoid(4.0), abs=1e-6)


def test_rest_status_and_metadata(server: Any) -> None:
    status = httpx.get(f"{server.rest_url}/v1/models/{MODEL}", timeout=30).json()
    assert status["model_version_status"][0]["version"] == "123"
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    metadata = httpx.get(f"{server.rest_url}/v1/models/{MODEL}/metadata", timeout=30).json()
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    assert sorted(signatures) == ["classify", "regress", "serving_default"]
    # The SignatureDef as exported: no shape, as TF Serving reports it.
    assert signatures["serving_default"]["inputs"]["x"] == {"dtype": "DT_FLOAT", "name": "x:0"}
    assert signatures["regress"]["method_name"] == "tensorflow/serving/regress"


def test_grpc_predict_classify_regress_metadata(server: Any) -> None:
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        # As TF Serving's VerifyPredictRequest sends it: x = [2.0] (shape [1]), output_filter y.
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL
        request.inputs["x"].CopyFrom(tf.make_tensor_proto([2.0], dtype=tf.float32))
        request.output_filter.append("y")
        response = stub.Predict(request, timeout=30)
        assert list(response.outputs["y"].float_val) == [4.0]
        spec = response.model_spec
        assert (spec.name, spec.signature_name, spec.version.value) == (MODEL, "serving_default", 123)

        regress = regression_pb2.RegressionRequest()
        regress.model_spec.name, regress.model_spec.signature_name = MODEL, "regress"
        regress.input.example_list.examples.add().features.feature["x"].float_list.value.append(2.0)
        assert [r.value for r in stub.Regress(regress, timeout=30).result.regressions] == [4.0]

        classify = classification_pb2.ClassificationRequest()
        classify.model_spec.name, classify.model_spec.signature_name = MODEL, "classify"
        classify.input.example_list.examples.add().features.feature["x"].float_list.value.append(-6.0)
        (result,) = stub.Classify(classify, timeout=30).result.classifications
        assert [(c.label, c.score) for c in result.classes] == [("neg", 0.5), ("pos", 0.5)]

        metadata = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        metadata.model_spec.name = MODEL
        signature_defs = get_model_metadata_pb2.SignatureDefMap()
        stub.GetModelMetadata(metadata, timeout=30).metadata["signature_def"].Unpack(signature_defs)
        assert signature_defs.signature_def["serving_default"].inputs["x"].name == "x:0"


def test_a_new_version_swaps_in_without_failed_requests(
    start_server: Any, versions: dict[int, Path], tmp_path: Path
) -> None:
    base = tmp_path / MODEL
    copy_version(versions[1], base, 1)
    server = start_server(models=single_model(MODEL, str(base)))
    url = f"{server.rest_url}/v1/models/{MODEL}:predict"
    seen: list[tuple[int, str, Any]] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=30) as http:
            for _ in range(5000):  # bounded
                if stop.is_set():
                    return
                r = http.post(url, content='{"instances": [[2.0]]}')
                seen.append((r.status_code, r.headers.get("x-model-version", ""), r.json()))

    thread = threading.Thread(target=client)
    thread.start()
    try:
        wait_until(lambda: len(seen) > 5, what="requests to version 1")
        copy_version(versions[2], base, 2)
        wait_until(lambda: seen and seen[-1][1] == "2", what="version 2 to answer")
        wait_until(lambda: sum(v == "2" for _, v, _ in seen) > 5, what="more requests to version 2")
    finally:
        stop.set()
        thread.join(timeout=60)
    assert all(status == 200 for status, _, _ in seen), [s for s in seen if s[0] != 200][:3]
    answers = {version: body for _, version, body in seen}
    assert answers == {"1": {"predictions": [[4.0]]}, "2": {"predictions": [[5.0]]}}
    assert {s.version: s.state for s in server.manager.statuses(MODEL)} == {2: "AVAILABLE", 1: "END"}


def test_a_config_file_names_the_models_and_its_reload_swaps_them(
    start_server: Any, versions: dict[int, Path], tmp_path: Path
) -> None:
    two = build_shapeless_tf1_model(tmp_path / "half_plus_two" / "123", bias=2.0).parent
    three = tmp_path / MODEL
    copy_version(versions[1], three, 123)

    def config(*models: tuple[str, Path]) -> str:
        entries = "".join(
            f'config {{ name: "{name}" base_path: "{path}" model_platform: "tensorflow" }}'
            for name, path in models
        )
        return f"model_config_list {{ {entries} }}"

    config_file = tmp_path / "models.config"
    config_file.write_text(config(("half_plus_two", two), (MODEL, three)))  # testGoodModelConfig
    server = start_server(model_config_file=str(config_file), model_config_file_poll_wait_seconds=0.1)
    assert post(server, "predict", {"instances": [[2.0]]}, "half_plus_two") == {"predictions": [[3.0]]}
    assert post(server, "predict", {"instances": [[2.0]]}, MODEL) == {"predictions": [[4.0]]}

    config_file.write_text(config(("half_plus_two", two)))
    wait_until(lambda: server.manager.model_names() == ["half_plus_two"], what="the config reload")
    config_file.write_text(config((MODEL, three)))  # testModelConfigReload: now only half_plus_three
    wait_until(lambda: server.manager.model_names() == [MODEL], what="the second config reload")
    assert post(server, "predict", {"instances": [[2.0]]}, MODEL) == {"predictions": [[4.0]]}
    gone = httpx.post(f"{server.rest_url}/v1/models/half_plus_two:predict", content='{"instances": [[2.0]]}')
    assert gone.status_code == 404
