"""Model base paths on filesystems other than the local disk, and pushes to object stores.

TensorFlow's ``ram://`` filesystem is a real non-local filesystem that runs
here: the same tf.io.gfile calls that read gs:// read it. It lives in this
process, so the server runs in-process (the ``start_server`` fixture). TF's
GCS client has no endpoint override (its base URL is fixed at
https://www.googleapis.com/storage/v1/), so a loopback fake of the GCS JSON API
cannot be put behind ``gs://``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import tensorflow as tf

from pipeline.components.pusher import copy_order, publish
from serving.config import parse_model_config, single_model
from tests.serving.conftest import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
BODY = json.dumps({"instances": [{"x": 1.0, "n": 1, "tag": "a"}]})


def ram_base() -> str:
    """A fresh base path on TensorFlow's in-memory filesystem."""
    return f"ram://models-{uuid.uuid4().hex[:8]}/tiny"


def states(server: Any) -> dict[int, str]:
    return {s.version: s.state for s in server.manager.statuses("tiny")}


def predict(server: Any) -> httpx.Response:
    return httpx.post(f"{server.rest_url}/v1/models/tiny:predict", content=BODY, timeout=30)


def test_a_ram_base_path_is_served_and_hot_swapped(start_server: Any, tiny_model_dir: Path) -> None:
    base = ram_base()
    first, v1 = publish(str(tiny_model_dir), base)
    assert first == f"{base}/{v1}" and tf.io.gfile.exists(f"{first}/variables/variables.index")
    (spec,) = single_model("tiny", base)
    assert spec.base_path == base  # not turned into a local path
    server = start_server(models=(spec,))
    assert states(server) == {v1: "AVAILABLE"}
    response = predict(server)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"][0]["doubled"] == 2.0
    assert response.headers["x-model-version"] == str(v1)
    metadata = httpx.get(f"{server.rest_url}/v1/models/tiny/metadata", timeout=30).json()
    assert "single" in metadata["metadata"]["signature_def"]["signature_def"]
    _, v2 = publish(str(tiny_model_dir), base)
    assert v2 > v1
    wait_until(lambda: states(server) == {v2: "AVAILABLE", v1: "END"}, what="the ram:// version to swap")
    assert predict(server).headers["x-model-version"] == str(v2)


def test_a_model_config_keeps_a_scheme_base_path_as_given(tmp_path: Path) -> None:
    base = ram_base()
    text = f'model_config_list {{ config {{ name: "tiny" base_path: "{base}" }} }}'
    (spec,) = parse_model_config(text, str(tmp_path / "models.config"))
    assert spec.base_path == base


def test_an_unknown_scheme_stops_tfxp_serve_in_one_line(tmp_path: Path) -> None:
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "pipeline.cli", "serve", "--port", "0", "--rest_api_port", "0"]
    result = subprocess.run(
        [*command, "--model_base_path", "foo://bucket/taxi"],
        capture_output=True,
        text=True,
        timeout=60,  # today's code would serve nothing, forever
        env={**os.environ, "PYTHONPATH": path},
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: base_path of model 'taxi'='foo://bucket/taxi' is invalid: TensorFlow has no filesystem for "
        "foo:// (built in: gs://, ram://; s3:// and hdfs:// come with `pip install tensorflow-io`); use a "
        "local path or a scheme TensorFlow reads"
    )


def test_a_push_to_an_object_store_is_loaded_only_once_saved_model_pb_lands(
    start_server: Any, tiny_model_dir: Path
) -> None:
    base = ram_base()
    _, v1 = publish(str(tiny_model_dir), base)
    server = start_server(models=single_model("tiny", base))
    assert states(server) == {v1: "AVAILABLE"}
    v2 = v1 + 1
    plan = copy_order(str(tiny_model_dir), f"{base}/{v2}")
    names = [os.path.relpath(src, tiny_model_dir) for src, _ in plan]
    assert names[-1] == "saved_model.pb" and "variables/variables.index" in names[:-1]
    assert plan[-1][1] == f"{base}/{v2}/saved_model.pb"
    # The object-by-object copy, caught before its last object: every file but saved_model.pb.
    for src, dst in plan[:-1]:
        tf.io.gfile.makedirs(os.path.dirname(dst))
        tf.io.gfile.copy(src, dst)
    wait_until(lambda: states(server).get(v2) == "END", what="the incomplete version to be refused")
    (entry,) = server.manager.statuses("tiny", v2)
    assert entry.error_code is not None and "no saved_model.pb" in entry.error_message
    assert states(server)[v1] == "AVAILABLE"
    assert predict(server).headers["x-model-version"] == str(v1)
    src, dst = plan[-1]
    tf.io.gfile.copy(src, dst)  # the last object lands: the version is complete
    wait_until(lambda: states(server) == {v2: "AVAILABLE", v1: "END"}, what="the completed version to load")
    assert predict(server).headers["x-model-version"] == str(v2)
