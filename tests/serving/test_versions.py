"""Versions as TF Serving manages them: hot swap under load, faults, removal, labels, policies, warmup."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import (
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_log_pb2,
    prediction_service_pb2_grpc,
)

from serving.config import ModelSpec, VersionPolicy, single_model
from serving.loading import WARMUP_FILE
from tests.serving.conftest import copy_version, in_process_predictions, wait_until

MAX_REQUESTS_PER_CLIENT = 3000  # bounds every client loop below


def predict(server: Any, rows: list[dict[str, Any]], path: str = "/v1/models/taxi") -> httpx.Response:
    return httpx.post(f"{server.rest_url}{path}:predict", content=json.dumps({"instances": rows}), timeout=30)


def states(server: Any, name: str = "taxi") -> dict[int, str]:
    return {s.version: s.state for s in server.manager.statuses(name)}


def test_hot_swap_under_load_has_no_failed_requests(
    start_server: Any, pushed_model_dir: Path, tmp_path: Path, taxi_rows: list[dict[str, Any]]
) -> None:
    base = tmp_path / "taxi"
    copy_version(pushed_model_dir, base, 1)
    server = start_server(models=single_model("taxi", str(base)))
    rows = taxi_rows[:3]
    body = json.dumps({"instances": rows})
    stop = threading.Event()
    rest_seen: list[tuple[int, str | None, Any]] = []
    grpc_seen: list[tuple[str, int]] = []

    def rest_client() -> None:
        with httpx.Client(base_url=server.rest_url, timeout=30) as client:
            for _ in range(MAX_REQUESTS_PER_CLIENT):
                if stop.is_set():
                    return
                r = client.post("/v1/models/taxi:predict", content=body)
                rest_seen.append((r.status_code, r.headers.get("x-model-version"), r.json()))

    def grpc_client() -> None:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "taxi"
        for key in rows[0]:
            values = [r[key] for r in rows]
            if isinstance(values[0], str):
                request.inputs[key].CopyFrom(
                    tf.make_tensor_proto(np.array([v.encode() for v in values], dtype=object))
                )
            else:
                dtype = np.float32 if isinstance(values[0], float) else np.int64
                request.inputs[key].CopyFrom(tf.make_tensor_proto(np.array(values, dtype=dtype)))
        with grpc.insecure_channel(server.grpc_target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            for _ in range(MAX_REQUESTS_PER_CLIENT):
                if stop.is_set():
                    return
                try:
                    grpc_seen.append(("OK", stub.Predict(request, timeout=30).model_spec.version.value))
                except grpc.RpcError as exc:
                    grpc_seen.append((exc.code().name, 0))

    threads = [
        threading.Thread(target=rest_client),
        threading.Thread(target=rest_client),
        threading.Thread(target=grpc_client),
    ]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(rest_seen) >= 20 and len(grpc_seen) >= 10, what="traffic on version 1")
        copy_version(pushed_model_dir, base, 2)  # the push: an atomic rename into place
        wait_until(
            lambda: any(v == "2" for _, v, _ in rest_seen) and any(v == 2 for _, v in grpc_seen),
            what="version 2",
        )
        after = len(rest_seen)
        wait_until(lambda: len(rest_seen) >= after + 20, what="traffic on version 2")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    failures = [s for s, _, _ in rest_seen if s != 200] + [c for c, _ in grpc_seen if c != "OK"]
    assert failures == [], f"{len(failures)} failed requests during the swap: {failures[:5]}"
    # Every client switches once, from 1 to 2, and never back.
    versions = [v for _, v, _ in rest_seen]
    first_new = versions.index("2")
    assert set(versions[:first_new]) == {"1"} and versions[-1] == "2"
    grpc_versions = [v for _, v in grpc_seen]
    assert grpc_versions[0] == 1 and grpc_versions[-1] == 2
    assert grpc_versions == sorted(grpc_versions)
    assert states(server) == {2: "AVAILABLE", 1: "END"}
    expected = in_process_predictions(pushed_model_dir, rows)
    for _, _, doc in rest_seen[-5:]:
        assert doc["predictions"] == pytest.approx(expected, abs=1e-6)


def test_corrupt_version_is_not_served_and_status_says_why(
    start_server: Any, pushed_model_dir: Path, tmp_path: Path, taxi_rows: list[dict[str, Any]]
) -> None:
    base = tmp_path / "taxi"
    copy_version(pushed_model_dir, base, 1)
    server = start_server(models=single_model("taxi", str(base)))
    staging = tmp_path / "staging"
    shutil.copytree(pushed_model_dir, staging)
    data = next((staging / "variables").glob("variables.data-*"))
    with open(data, "r+b") as f:  # a truncated variables file
        f.truncate(data.stat().st_size // 2)
    os.rename(staging, base / "2")

    wait_until(lambda: states(server).get(2) == "END", what="version 2 to fail")
    status = httpx.get(f"{server.rest_url}/v1/models/taxi/versions/2", timeout=30).json()
    (entry,) = status["model_version_status"]
    assert entry["state"] == "END" and entry["status"]["error_code"] == "DATA_LOSS"
    assert (
        "cannot load SavedModel" in entry["status"]["error_message"]
        and "/2" in entry["status"]["error_message"]
    )
    response = predict(server, taxi_rows[:2])
    assert response.status_code == 200 and response.headers["x-model-version"] == "1"
    pinned = predict(server, taxi_rows[:2], "/v1/models/taxi/versions/2")
    assert pinned.status_code == 404 and "cannot load SavedModel" in pinned.json()["error"]
    failed_once = (
        ':tensorflow:serving:load_attempt_count_total{model_name="taxi",model_version="2",status="END"} 1.0'
    )
    assert failed_once in httpx.get(f"{server.rest_url}/monitoring/prometheus/metrics", timeout=30).text
    # The broken version is not retried while its directory stays as it is (polls run every 0.2 s).
    time.sleep(0.6)
    assert failed_once in httpx.get(f"{server.rest_url}/monitoring/prometheus/metrics", timeout=30).text
    assert states(server) == {2: "END", 1: "AVAILABLE"}


def test_half_copied_version_is_skipped_until_complete(
    start_server: Any, pushed_model_dir: Path, tmp_path: Path, taxi_rows: list[dict[str, Any]]
) -> None:
    base = tmp_path / "taxi"
    copy_version(pushed_model_dir, base, 1)
    server = start_server(models=single_model("taxi", str(base)))
    # A non-atomic copy caught half way: variables there, saved_model.pb not yet.
    half = base / "3"
    shutil.copytree(pushed_model_dir / "variables", half / "variables")
    wait_until(lambda: states(server).get(3) == "END", what="version 3 to be refused")
    (entry,) = server.manager.statuses("taxi", 3)
    assert "no saved_model.pb" in entry.error_message and "Push versions atomically" in entry.error_message
    assert predict(server, taxi_rows[:1]).headers["x-model-version"] == "1"
    # The copy finishes: the directory changed, so the version is retried and served.
    for item in pushed_model_dir.iterdir():
        if item.name != "variables":
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, half / item.name)
    wait_until(lambda: states(server).get(3) == "AVAILABLE", what="version 3 to load once complete")
    assert predict(server, taxi_rows[:1]).headers["x-model-version"] == "3"


def test_removing_the_serving_version_falls_back(
    start_server: Any, pushed_model_dir: Path, tmp_path: Path, taxi_rows: list[dict[str, Any]]
) -> None:
    base = tmp_path / "taxi"
    copy_version(pushed_model_dir, base, 1)
    copy_version(pushed_model_dir, base, 2)
    server = start_server(models=single_model("taxi", str(base)))
    assert states(server) == {2: "AVAILABLE"}  # latest 1: version 1 is not loaded
    shutil.rmtree(base / "2")
    wait_until(lambda: states(server) == {1: "AVAILABLE", 2: "END"}, what="fall back to version 1")
    assert predict(server, taxi_rows[:1]).headers["x-model-version"] == "1"
    assert predict(server, taxi_rows[:1], "/v1/models/taxi/versions/2").status_code == 404


def test_a_vanished_base_path_keeps_serving_and_odd_names_are_skipped(
    start_server: Any, tiny_model_dir: Path, tmp_path: Path
) -> None:
    base = tmp_path / "tiny"
    copy_version(tiny_model_dir, base, 1)
    server = start_server(models=single_model("tiny", str(base)), file_system_poll_wait_seconds=0.1)
    body = json.dumps({"instances": [{"x": 1.0, "n": 1, "tag": "a"}]})
    url = f"{server.rest_url}/v1/models/tiny:predict"
    # Names that are digits to str.isdigit() but not version numbers to TF Serving (ASCII digits only).
    (base / "\u00b2").mkdir()  # superscript two
    (base / "\u0663").mkdir()  # Arabic-Indic three
    (base / "7").write_text("a file, not a version directory")
    # A base path that disappears (moved, NFS hiccup) unloads nothing, as in TF Serving.
    moved = tmp_path / "moved"
    base.rename(moved)
    time.sleep(0.5)  # several polls
    assert states(server, "tiny") == {1: "AVAILABLE"}
    assert httpx.post(url, content=body, timeout=30).json()["predictions"][0]["doubled"] == 2.0
    moved.rename(base)
    # The poller survived all of that: a new version still loads.
    copy_version(tiny_model_dir, base, 5)
    wait_until(lambda: states(server, "tiny") == {5: "AVAILABLE", 1: "END"}, what="version 5 to load")
    assert httpx.post(url, content=body, timeout=30).headers["x-model-version"] == "5"


def test_label_rollback_through_the_config_file_and_grpc(
    start_server: Any, pushed_model_dir: Path, tmp_path: Path, taxi_rows: list[dict[str, Any]]
) -> None:
    base = tmp_path / "taxi"
    copy_version(pushed_model_dir, base, 1)
    copy_version(pushed_model_dir, base, 2)

    def config(stable: int) -> str:
        return f"""model_config_list {{ config {{
            name: "taxi" base_path: "{base}" model_platform: "tensorflow"
            model_version_policy {{ specific {{ versions: 1 versions: 2 }} }}
            version_labels {{ key: "stable" value: {stable} }}
            version_labels {{ key: "canary" value: 2 }} }} }}"""

    config_file = tmp_path / "models.config"
    config_file.write_text(config(2))
    server = start_server(model_config_file=str(config_file), model_config_file_poll_wait_seconds=0.1)
    assert states(server) == {1: "AVAILABLE", 2: "AVAILABLE"}
    assert predict(server, taxi_rows[:1], "/v1/models/taxi/labels/stable").headers["x-model-version"] == "2"
    labelled = httpx.get(f"{server.rest_url}/v1/models/taxi/labels/canary", timeout=30).json()
    assert labelled["model_version_status"][0]["version"] == "2"

    config_file.write_text(config(1))  # roll back: move the label
    wait_until(lambda: server.manager.labels("taxi") == {"stable": 1, "canary": 2}, what="label reload")
    assert predict(server, taxi_rows[:1], "/v1/models/taxi/labels/stable").headers["x-model-version"] == "1"
    assert predict(server, taxi_rows[:1], "/v1/models/taxi/versions/2").headers["x-model-version"] == "2"

    # gRPC ModelService can move labels too; a label on a version that is not available is refused.
    def reload(stable: int) -> Any:
        request = model_management_pb2.ReloadConfigRequest()
        text_format.Parse(config(stable), request.config)
        with grpc.insecure_channel(server.grpc_target) as channel:
            return model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(
                request, timeout=60
            )

    with pytest.raises(grpc.RpcError) as refused:  # as TF Serving: the failure is the RPC's status
        reload(9)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "version 9 refused" in refused.value.details()
    with grpc.insecure_channel(server.grpc_target) as channel, pytest.raises(grpc.RpcError) as empty:
        model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(
            model_management_pb2.ReloadConfigRequest(), timeout=60
        )
    assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Only ModelConfigList is currently supported" in empty.value.details()
    assert server.manager.labels("taxi") == {"stable": 1, "canary": 2}
    assert reload(2).status.error_code == 0
    assert predict(server, taxi_rows[:1], "/v1/models/taxi/labels/stable").headers["x-model-version"] == "2"


def test_a_label_on_a_version_not_yet_pushed_applies_once_it_is_available(
    start_server: Any, tiny_model_dir: Path, tmp_path: Path
) -> None:
    base = tmp_path / "tiny"
    copy_version(tiny_model_dir, base, 1)
    config_file = tmp_path / "models.config"
    config_file.write_text(
        f"""model_config_list {{ config {{ name: "tiny" base_path: "{base}" model_platform: "tensorflow"
        model_version_policy {{ all {{ }} }} version_labels {{ key: "stable" value: 2 }} }} }}"""
    )
    server = start_server(model_config_file=str(config_file), file_system_poll_wait_seconds=0.1)
    url = f"{server.rest_url}/v1/models/tiny/labels/stable:predict"
    body = json.dumps({"instances": [{"x": 1.0, "n": 1, "tag": "a"}]})
    early = httpx.post(url, content=body, timeout=30)
    assert early.status_code == 400 and "Unrecognized servable version label: stable" in early.json()["error"]
    copy_version(tiny_model_dir, base, 2)
    wait_until(lambda: server.manager.labels("tiny") == {"stable": 2}, what="the label to apply")
    assert httpx.post(url, content=body, timeout=30).headers["x-model-version"] == "2"


def test_version_policies(start_server: Any, tiny_model_dir: Path, tmp_path: Path) -> None:
    base = tmp_path / "tiny"
    for v in (1, 2, 3):
        copy_version(tiny_model_dir, base, v)
    (base / "not-a-version").mkdir()
    (base / "4.tmp").mkdir()
    latest2 = start_server(models=(ModelSpec("tiny", str(base), VersionPolicy("latest", num_versions=2)),))
    assert states(latest2, "tiny") == {3: "AVAILABLE", 2: "AVAILABLE"}
    every = start_server(models=(ModelSpec("tiny", str(base), VersionPolicy("all")),))
    assert states(every, "tiny") == {1: "AVAILABLE", 2: "AVAILABLE", 3: "AVAILABLE"}
    specific = start_server(models=(ModelSpec("tiny", str(base), VersionPolicy("specific", versions=(1,))),))
    assert states(specific, "tiny") == {1: "AVAILABLE"}
    copy_version(tiny_model_dir, base, 4)
    wait_until(
        lambda: states(latest2, "tiny") == {4: "AVAILABLE", 3: "AVAILABLE", 2: "END"},
        what="latest 2 to move on",
    )
    time.sleep(0.5)
    assert states(specific, "tiny") == {1: "AVAILABLE"}


def _warmup_file(version_dir: Path, inputs: dict[str, np.ndarray]) -> None:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tiny"
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
    (version_dir / "assets.extra").mkdir()
    with tf.io.TFRecordWriter(str(version_dir / "assets.extra" / "tf_serving_warmup_requests")) as writer:
        writer.write(log.SerializeToString())


def test_warmup_requests_run_before_a_version_serves(
    start_server: Any, tiny_model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = tmp_path / "tiny"
    good = tmp_path / "good"
    shutil.copytree(tiny_model_dir, good)
    _warmup_file(
        good, {"x": np.array([1.0], np.float32), "n": np.array([1]), "tag": np.array([b"w"], dtype=object)}
    )
    copy_version(good, base, 1)
    with caplog.at_level("INFO", logger="serving.models"):
        server = start_server(models=single_model("tiny", str(base)))
    assert states(server, "tiny") == {1: "AVAILABLE"}
    assert "version 1 AVAILABLE" in caplog.text and "1 warmup requests" in caplog.text
    # A warmup request the version cannot answer keeps it out of service.
    bad = tmp_path / "bad"
    shutil.copytree(tiny_model_dir, bad)
    _warmup_file(bad, {"x": np.array([1.0], np.float32)})
    copy_version(bad, base, 2)
    wait_until(lambda: states(server, "tiny").get(2) == "END", what="version 2 warmup failure")
    (entry,) = server.manager.statuses("tiny", 2)
    assert "warmup request 1" in entry.error_message and "missing: n, tag" in entry.error_message
    assert states(server, "tiny")[1] == "AVAILABLE"


def _records(version_dir: Path) -> list[Any]:
    path = str(version_dir / WARMUP_FILE)
    return [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]


def test_the_pushed_version_carries_warmup_requests_its_signatures_accept(pushed_model_dir: Path) -> None:
    records = _records(pushed_model_dir)
    assert 0 < len(records) <= 1000  # TF Serving refuses a version with more
    loaded = tf.saved_model.load(str(pushed_model_dir))
    answers: dict[int, dict[str, np.ndarray]] = {}
    for log in records:
        assert log.WhichOneof("log_type") == "predict_log"
        request = log.predict_log.request
        signature = request.model_spec.signature_name
        fn = loaded.signatures[signature]
        specs = fn.structured_input_signature[1]
        assert set(request.inputs) == set(specs)
        for key, tensor in request.inputs.items():
            assert tensor.dtype == specs[key].dtype.as_datatype_enum, key
        inputs = {key: tf.constant(tf.make_ndarray(t)) for key, t in request.inputs.items()}
        probabilities = fn(**inputs)["probabilities"].numpy()
        assert ((probabilities >= 0) & (probabilities <= 1)).all()
        answers.setdefault(len(probabilities), {})[signature] = probabilities
    assert sorted(answers) == [1, 8]
    for by_signature in answers.values():  # the same eval rows, raw and as tf.Examples
        assert set(by_signature) == {"serving_default", "serving_tf_example"}
        assert by_signature["serving_default"] == pytest.approx(by_signature["serving_tf_example"], abs=1e-6)


def test_tfxp_serve_replays_the_pushed_warmup_before_the_version_serves(
    start_server: Any, pushed_model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    count = len(_records(pushed_model_dir))
    base = tmp_path / "taxi"
    version_dir = copy_version(pushed_model_dir, base, 1)
    with caplog.at_level("INFO", logger="serving.models"):
        server = start_server(models=single_model("taxi", str(base)))
    assert states(server) == {1: "AVAILABLE"}
    assert "version 1 AVAILABLE" in caplog.text and f", {count} warmup requests)" in caplog.text
    metrics = httpx.get(f"{server.rest_url}/monitoring/prometheus/metrics", timeout=30).text
    replayed = ':tensorflow:serving:model_warmup_request_count_total{model_name="taxi",model_version="1"}'
    assert f"{replayed} {count}.0" in metrics
    timed = f':tensorflow:serving:model_warmup_latency_count{{model_path="{version_dir}",status="OK"}}'
    assert f"{timed} 1.0" in metrics
