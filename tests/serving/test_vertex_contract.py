"""``tfxp serve --vertex``: Vertex AI's custom-container contract, over loopback.

Vertex AI sets AIP_HTTP_PORT, AIP_PREDICT_ROUTE, AIP_HEALTH_ROUTE and AIP_STORAGE_URI
(a copy of the uploaded artifact_uri: the SavedModel itself, no version directories)
and sends ``{"instances": [...], "parameters": ...}`` to the predict route; the health
route must answer 200 only once the model is loaded. The server binds 127.0.0.1 here
(``--host``); the image binds 0.0.0.0, --vertex's default.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from serving.commands import vertex_options
from serving.server import start_server
from tests.conftest import REPO_ROOT
from tests.serving.conftest import wait_until

PREDICT_ROUTE = "/v1/endpoints/123/deployedModels/456:predict"
HEALTH_ROUTE = "/v1/endpoints/123/deployedModels/456"
INSTANCES = [{"x": 1.5, "n": 2, "tag": "ab"}, {"x": -4.0, "n": 0, "tag": "z"}]
# The tiny model's serving_default on INSTANCES (tests/serving/conftest.py): 2x, n + 1, tag as bytes, upper.
EXPECTED = [
    {"doubled": 3.0, "n_plus_one": 3, "tag_bytes": {"b64": base64.b64encode(b"ab").decode()}, "shout": "AB"},
    {"doubled": -8.0, "n_plus_one": 1, "tag_bytes": {"b64": base64.b64encode(b"z").decode()}, "shout": "Z"},
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def aip_env(storage_uri: str, port: int) -> dict[str, str]:
    return {
        "AIP_HTTP_PORT": str(port),
        "AIP_PREDICT_ROUTE": PREDICT_ROUTE,
        "AIP_HEALTH_ROUTE": HEALTH_ROUTE,
        "AIP_STORAGE_URI": storage_uri,
    }


def copy_saved_model(src: Path, dst: Path) -> None:
    """Copy a SavedModel's files into ``dst``, saved_model.pb last (as the Pusher does)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("saved_model.pb"), dirs_exist_ok=True)
    shutil.copy(src / "saved_model.pb", dst / "saved_model.pb")


def image_entrypoint() -> list[str]:
    """The serving image's ENTRYPOINT, with its ``python`` as this interpreter."""
    lines = (REPO_ROOT / "serving" / "Dockerfile.vertex").read_text().splitlines()
    (entrypoint,) = [json.loads(line.split(" ", 1)[1]) for line in lines if line.startswith("ENTRYPOINT ")]
    assert entrypoint[0] == "python"
    return [sys.executable, *entrypoint[1:]]


def run_image(env: dict[str, str], *flags: str) -> subprocess.Popen:
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("AIP_")}
    return subprocess.Popen(
        [*image_entrypoint(), *flags],
        env={**base_env, **env, "PYTHONPATH": path},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def image_server(tiny_model_dir: Path, tmp_path: Path) -> Iterator[str]:
    """The image's entrypoint on loopback over a Vertex-style model copy; yields its base URL."""
    storage = tmp_path / "model"
    copy_saved_model(tiny_model_dir, storage)
    port = free_port()
    process = run_image(aip_env(str(storage), port), "--host", "127.0.0.1", "--model_name", "tiny")
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            return httpx.get(url + HEALTH_ROUTE, timeout=5).status_code == 200
        except httpx.TransportError:
            return False  # the port opens once the model is loaded

    try:
        wait_until(healthy, timeout=120, what="the health route to answer 200")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_the_image_entrypoint_answers_vertex_routes_as_tf_serving_routes(image_server: str) -> None:
    health = httpx.get(image_server + HEALTH_ROUTE, timeout=30)
    assert health.json()["model_version_status"][0]["version"] == "1"
    assert health.json()["model_version_status"][0]["state"] == "AVAILABLE"
    vertex = httpx.post(
        image_server + PREDICT_ROUTE, json={"instances": INSTANCES, "parameters": {}}, timeout=30
    )
    tf_serving = httpx.post(f"{image_server}/v1/models/tiny:predict", json={"instances": INSTANCES}, timeout=30)
    assert vertex.status_code == tf_serving.status_code == 200
    assert vertex.json() == tf_serving.json() == {"predictions": EXPECTED}
    assert vertex.headers["X-Model-Version"] == "1"


def test_health_is_503_until_the_model_loads_then_200(tiny_model_dir: Path, tmp_path: Path) -> None:
    storage = tmp_path / "model"
    storage.mkdir()
    options = vertex_options(
        aip_env(str(storage), free_port()), host="127.0.0.1", model_name="tiny", file_system_poll_wait_seconds=0.2
    )
    assert options.port is None  # REST only
    with start_server(options) as server:
        assert server.grpc_port is None
        before = httpx.get(server.rest_url + HEALTH_ROUTE, timeout=30)
        assert before.status_code == 503
        assert "has no available version yet" in before.json()["error"]
        assert httpx.post(server.rest_url + PREDICT_ROUTE, json={"instances": INSTANCES}).status_code == 404
        copy_saved_model(tiny_model_dir, storage)
        wait_until(lambda: httpx.get(server.rest_url + HEALTH_ROUTE, timeout=30).status_code == 200)
        after = httpx.post(server.rest_url + PREDICT_ROUTE, json={"instances": INSTANCES}, timeout=30)
        assert after.json() == {"predictions": EXPECTED}


def test_numeric_version_directories_still_work(tiny_model_dir: Path, tmp_path: Path) -> None:
    storage = tmp_path / "model"
    copy_saved_model(tiny_model_dir, storage / "7")
    copy_saved_model(tiny_model_dir, storage / "3")
    options = vertex_options(aip_env(str(storage), free_port()), host="127.0.0.1")
    with start_server(options) as server:
        response = httpx.post(server.rest_url + PREDICT_ROUTE, json={"instances": INSTANCES[:1]}, timeout=30)
        assert response.json() == {"predictions": EXPECTED[:1]}
        assert response.headers["X-Model-Version"] == "7"
        status = httpx.get(f"{server.rest_url}/v1/models/model", timeout=30).json()  # "model": the default name
        assert [s["version"] for s in status["model_version_status"]] == ["7"]


def test_a_missing_storage_uri_stops_the_image_in_one_line(tmp_path: Path) -> None:
    env = aip_env("", free_port())
    del env["AIP_STORAGE_URI"]
    process = run_image(env, "--host", "127.0.0.1")
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines() == [
        "error: --vertex: AIP_STORAGE_URI is not set; Vertex AI sets it to the model's directory, "
        "to run locally set it to a SavedModel directory"
    ]


@pytest.mark.parametrize(
    ("env", "flags", "message"),
    [
        ({"AIP_HTTP_PORT": "http"}, {}, "AIP_HTTP_PORT='http' is invalid: use a TCP port, 1 to 65535"),
        ({}, {"model_base_path": "/models/taxi"}, "--model_base_path does not apply with --vertex"),
        ({"AIP_PREDICT_ROUTE": "predict"}, {}, "AIP_PREDICT_ROUTE='predict' is invalid: use an absolute URL"),
    ],
)
def test_bad_vertex_settings_are_refused(env: dict[str, str], flags: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        vertex_options({**aip_env("/models/taxi", 8080), **env}, **flags)
    assert "\n" not in str(info.value)
