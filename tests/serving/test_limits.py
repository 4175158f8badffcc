"""Bounds: body size (plain, chunked, gzip, gzip bomb), per-request timeout, bounded queue under overload."""

from __future__ import annotations

import gzip
import json
import threading
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving.config import single_model
from tests.serving.conftest import copy_version

LIMIT = 64 * 1024
ROW = {"x": 1.0, "n": 1, "tag": "a"}


@pytest.fixture
def tiny_base(tiny_model_dir: Path, tmp_path: Path) -> str:
    copy_version(tiny_model_dir, tmp_path / "tiny", 1)
    return str(tmp_path / "tiny")


def post(
    server: Any, body: bytes, headers: dict[str, str] | None = None, path: str = "/v1/models/tiny:predict"
) -> httpx.Response:
    return httpx.post(f"{server.rest_url}{path}", content=body, headers=headers, timeout=30)


def test_body_size_is_bounded_before_and_after_gzip(start_server: Any, tiny_base: str) -> None:
    server = start_server(models=single_model("tiny", tiny_base), max_request_bytes=LIMIT)
    small = json.dumps({"instances": [ROW] * 3}).encode()
    big = json.dumps({"instances": [ROW] * 5000}).encode()
    assert len(big) > LIMIT

    response = post(server, big)
    assert response.status_code == 413
    assert "--max_request_bytes" in response.json()["error"] and str(LIMIT) in response.json()["error"]

    def chunks() -> Any:  # no Content-Length: the limit applies while streaming
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    assert (
        httpx.post(f"{server.rest_url}/v1/models/tiny:predict", content=chunks(), timeout=30).status_code
        == 413
    )

    zipped = post(server, gzip.compress(small), {"Content-Encoding": "gzip"})
    assert zipped.status_code == 200 and zipped.json()["predictions"][0]["doubled"] == 2.0

    bomb = gzip.compress(b" " * (20 * 1024 * 1024))  # 20 MiB of spaces in about 20 KiB
    assert len(bomb) < LIMIT
    exploded = post(server, bomb, {"Content-Encoding": "gzip"})
    assert exploded.status_code == 413 and "gzip-decoded" in exploded.json()["error"]

    assert post(server, b"\x1f\x8bnot gzip", {"Content-Encoding": "gzip"}).status_code == 400
    assert post(server, gzip.compress(small)[:-8], {"Content-Encoding": "gzip"}).status_code == 400
    unsupported = post(server, small, {"Content-Encoding": "br"})
    assert unsupported.status_code == 400 and "gzip" in unsupported.json()["error"]
    # The server is fine afterwards.
    assert post(server, small).status_code == 200
    metrics = httpx.get(f"{server.rest_url}/monitoring/prometheus/metrics", timeout=30).text
    assert (
        ':tensorflow:serving:rejected_request_count_total{entrypoint="REST",reason="too_large"} 3.0'
        in metrics
    )


def test_grpc_messages_are_bounded(start_server: Any, tiny_base: str) -> None:
    server = start_server(models=single_model("tiny", tiny_base), max_request_bytes=LIMIT)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tiny"
    request.model_spec.signature_name = "single"
    request.inputs["pairs"].CopyFrom(tf.make_tensor_proto(np.zeros((LIMIT // 4, 2), np.float32)))
    with grpc.insecure_channel(server.grpc_target) as channel, pytest.raises(grpc.RpcError) as info:
        prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def sleep_body(micros: int) -> bytes:
    return json.dumps({"signature_name": "sleep", "inputs": {"micros": micros}}).encode()


def test_per_request_timeout_gives_504(start_server: Any, tiny_base: str) -> None:
    server = start_server(
        models=single_model("tiny", tiny_base), rest_api_timeout_in_ms=300, inference_threads=2
    )
    slow = post(server, sleep_body(1_500_000))
    assert slow.status_code == 504
    assert "Deadline exceeded" in slow.json()["error"] and "--rest_api_timeout_in_ms" in slow.json()["error"]
    # The second worker answers while the first is still busy with the timed-out call.
    fast = post(server, json.dumps({"instances": [ROW]}).encode())
    assert fast.status_code == 200 and fast.json()["predictions"][0]["doubled"] == 2.0


def test_overload_beyond_the_queue_gives_503_and_recovers(start_server: Any, tiny_base: str) -> None:
    server = start_server(models=single_model("tiny", tiny_base), max_queued_requests=2, inference_threads=1)
    clients = 8
    barrier = threading.Barrier(clients)
    statuses: list[int] = []
    bodies: list[dict] = []

    def call() -> None:
        barrier.wait(timeout=30)
        response = post(server, sleep_body(400_000))
        statuses.append(response.status_code)
        bodies.append(response.json())

    threads = [threading.Thread(target=call) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(statuses) == clients and set(statuses) <= {200, 503}
    # At most 2 are ever admitted at once: with 8 arriving together, most are refused at once.
    assert 1 <= statuses.count(200) <= 4 and statuses.count(503) >= 4
    refused = next(b for s, b in zip(statuses, bodies, strict=True) if s == 503)
    assert "overloaded" in refused["error"] and "--max_queued_requests" in refused["error"]

    # gRPC shares the same bound and answers UNAVAILABLE.
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tiny"
    request.model_spec.signature_name = "sleep"
    request.inputs["micros"].CopyFrom(tf.make_tensor_proto(np.int64(400_000)))
    codes: list[str] = []

    def grpc_call(stub: Any) -> None:
        try:
            stub.Predict(request, timeout=30)
            codes.append("OK")
        except grpc.RpcError as exc:
            codes.append(exc.code().name)

    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        grpc_threads = [threading.Thread(target=grpc_call, args=(stub,)) for _ in range(clients)]
        for t in grpc_threads:
            t.start()
        for t in grpc_threads:
            t.join(timeout=60)
    assert len(codes) == clients and set(codes) <= {"OK", "UNAVAILABLE"} and codes.count("UNAVAILABLE") >= 4

    assert post(server, sleep_body(1_000)).status_code == 200  # recovered
    metrics = httpx.get(f"{server.rest_url}/monitoring/prometheus/metrics", timeout=30).text
    assert (
        ':tensorflow:serving:rejected_request_count_total{entrypoint="REST",reason="overloaded"}' in metrics
    )
