"""tensorflow_model_server flags a deployment passes, as TF Serving's own tests exercise them.

gRPC on a unix socket (testPredictUDS), gRPC channel arguments (testGoodGrpcChannelArgs),
the monitoring config's Prometheus path (testPrometheusEndpoint), and the error for a
malformed model config (testBadModelConfig); out-of-scope flags stop start-up.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving.config import (
    PROMETHEUS_PATH,
    parse_grpc_channel_arguments,
    parse_monitoring_config,
    single_model,
)
from tests.conftest import REPO_ROOT
from tests.serving.conftest import build_shapeless_tf1_model

MODEL = "half_plus_three"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TF1 model without signature shapes at version 123: y = 0.5 x + 3."""
    path = tmp_path_factory.mktemp("models") / MODEL
    build_shapeless_tf1_model(path / "123", bias=3.0)
    return path


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A short directory: pytest's tmp_path can exceed the 107 bytes a unix socket path holds."""
    path = Path(tempfile.mkdtemp(prefix="tfxp-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def predict_y(target: str, x: Any) -> list[float]:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.asarray(x, np.float32)))
    with grpc.insecure_channel(target) as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)
    assert response.model_spec.version.value == 123
    return list(response.outputs["y"].float_val)


def test_predict_over_a_unix_socket(start_server: Any, base: Path, socket_dir: Path) -> None:
    path = socket_dir / "grpc.sock"
    server = start_server(models=single_model(MODEL, str(base)), grpc_socket_path=str(path))
    assert stat.S_ISSOCK(path.stat().st_mode)
    assert server.grpc_socket_target == f"unix:{path}"
    assert predict_y(server.grpc_socket_target, [[2.0]]) == [4.0]
    assert predict_y(server.grpc_target, [[2.0]]) == [4.0]  # and TCP as before
    server.stop()
    assert not path.exists()  # gRPC removes its socket file


def test_a_socket_path_that_cannot_be_bound_stops_start_up(start_server: Any, base: Path) -> None:
    with pytest.raises(OSError, match="cannot bind gRPC to unix:/.*check --grpc_socket_path"):
        start_server(models=single_model(MODEL, str(base)), grpc_socket_path="/nonexistent-dir/grpc.sock")


def test_channel_arguments_reach_the_grpc_server(start_server: Any, base: Path) -> None:
    # TF Serving's testGoodGrpcChannelArgs arguments, plus a receive limit small enough to see.
    arguments = parse_grpc_channel_arguments(
        "grpc.max_connection_age_ms=2000,grpc.lb_policy_name=grpclb,grpc.max_receive_message_length=1024"
    )
    limited = start_server(models=single_model(MODEL, str(base)), grpc_channel_arguments=arguments)
    assert predict_y(limited.grpc_target, [[2.0]]) == [4.0]
    large = np.ones((1000, 1), np.float32)  # a request of about 4 KB
    with pytest.raises(grpc.RpcError) as info:
        predict_y(limited.grpc_target, large)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # The limit is the argument's: the server's own default takes the same request.
    default = start_server(models=single_model(MODEL, str(base)))
    assert predict_y(default.grpc_target, large) == [3.5] * 1000


def test_the_monitoring_config_moves_the_metrics_path(start_server: Any, base: Path) -> None:
    path = parse_monitoring_config('prometheus_config { enable: true path: "/my/metrics" }')
    server = start_server(models=single_model(MODEL, str(base)), prometheus_path=path)
    assert predict_y(server.grpc_target, [[2.0]]) == [4.0]
    metrics = httpx.get(f"{server.rest_url}/my/metrics", timeout=30)
    assert metrics.status_code == 200 and "# TYPE" in metrics.text
    assert (
        ':tensorflow:serving:request_count_total{api="predict",entrypoint="GRPC",'
        f'model_name="{MODEL}",model_version="123",status="OK"}} 1.0'
    ) in metrics.text
    assert httpx.get(f"{server.rest_url}{PROMETHEUS_PATH}", timeout=30).status_code == 404
    # enable: false exports no metrics at all, as in TF Serving.
    off = start_server(models=single_model(MODEL, str(base)), prometheus_path=None)
    for url in ("/my/metrics", PROMETHEUS_PATH):
        assert httpx.get(f"{off.rest_url}{url}", timeout=30).status_code == 404


def tfxp_serve(*flags: str, cwd: Path) -> subprocess.CompletedProcess:
    """``tfxp serve`` in a subprocess, importing this checkout's code (PYTHONPATH first)."""
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    command = [sys.executable, "-m", "pipeline.cli", "serve", "--port", "0", "--rest_api_port", "0", *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=cwd)


def test_a_malformed_model_config_stops_tfxp_serve_with_tf_servings_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad_model_config.txt"
    bad.write_text("improperly formatted file")  # TF Serving's testdata/bad_model_config.txt
    result = tfxp_serve("--model_config_file", str(bad), cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {bad}: Error parsing text-format tensorflow.serving.ModelServerConfig: 1:1 : "
        'Message type "tensorflow.serving.ModelServerConfig" has no field named "improperly".'
    )


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--enable_profiler", "error: --enable_profiler: the TensorFlow profiler service is out of scope"),
        ("--prefer_tflite_model=true", "error: --prefer_tflite_model: TensorFlow Lite models are out of"),
    ],
)
def test_out_of_scope_flags_stop_tfxp_serve_in_one_line(flag: str, message: str, tmp_path: Path) -> None:
    result = tfxp_serve("--model_base_path", str(tmp_path / MODEL), flag, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(message)
