"""REST API v1 conformance: every route and format, against the pipeline's pushed model and the tiny model."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving.conftest import TINY_BIAS, copy_version, in_process_predictions


def post(server: Any, path: str, body: Any, **kwargs: Any) -> httpx.Response:
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(f"{server.rest_url}{path}", content=content, timeout=30, **kwargs)


def get(server: Any, path: str) -> httpx.Response:
    return httpx.get(f"{server.rest_url}{path}", timeout=30)


def assert_error(response: httpx.Response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and isinstance(body["error"], str)
    assert fragment in body["error"], body["error"]


# -- the pipeline's model ------------------------------------------------------


def test_status_reports_the_available_version(taxi_server: Any, pushed_model_dir: Path) -> None:
    version = pushed_model_dir.name
    expected = {
        "model_version_status": [
            {"version": version, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    assert get(taxi_server, "/v1/models/taxi").json() == expected
    assert get(taxi_server, f"/v1/models/taxi/versions/{version}").json() == expected
    assert get(taxi_server, "/V1/MODELS/taxi").json() == expected  # paths are case-insensitive
    # As in TF Serving, a label does not narrow the status, and the subresource is case-sensitive.
    assert get(taxi_server, "/v1/models/taxi/labels/anything").json() == expected
    assert get(taxi_server, "/v1/models/taxi/METADATA").json() == expected


def test_metadata_has_every_signature(taxi_server: Any, pushed_model_dir: Path) -> None:
    doc = get(taxi_server, "/v1/models/taxi/metadata").json()
    assert doc["model_spec"] == {"name": "taxi", "signature_name": "", "version": pushed_model_dir.name}
    sigs = doc["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "serving_tf_example", "transform_features"} <= set(sigs)
    default = sigs["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict"
    assert len(default["inputs"]) == 14
    assert default["inputs"]["fare"]["dtype"] == "DT_FLOAT"
    assert default["inputs"]["trip_seconds"]["dtype"] == "DT_INT64"
    assert default["inputs"]["company"]["dtype"] == "DT_STRING"
    assert default["inputs"]["fare"]["tensor_shape"] == {
        "dim": [{"size": "-1", "name": ""}],
        "unknown_rank": False,
    }
    assert default["outputs"]["probabilities"]["dtype"] == "DT_FLOAT"
    assert sigs["serving_tf_example"]["inputs"]["examples"]["dtype"] == "DT_STRING"
    version_doc = get(taxi_server, f"/v1/models/taxi/versions/{pushed_model_dir.name}/metadata").json()
    assert version_doc == doc


def test_row_and_columnar_predictions_equal_the_in_process_model(
    taxi_server: Any, pushed_model_dir: Path, taxi_rows: list[dict[str, Any]]
) -> None:
    expected = in_process_predictions(pushed_model_dir, taxi_rows)
    rows = post(taxi_server, "/v1/models/taxi:predict", {"instances": taxi_rows})
    assert rows.status_code == 200, rows.text
    assert list(rows.json()) == ["predictions"]
    assert rows.json()["predictions"] == pytest.approx(expected, abs=1e-6)
    assert rows.headers["x-model-version"] == pushed_model_dir.name
    columns = {k: [r[k] for r in taxi_rows] for k in taxi_rows[0]}
    cols = post(taxi_server, f"/v1/models/taxi/versions/{pushed_model_dir.name}:predict", {"inputs": columns})
    assert cols.status_code == 200, cols.text
    assert list(cols.json()) == ["outputs"]
    assert cols.json()["outputs"] == pytest.approx(expected, abs=1e-6)
    named = post(
        taxi_server,
        "/v1/models/taxi:predict",
        {"signature_name": "serving_default", "instances": taxi_rows[:2]},
    )
    assert named.json()["predictions"] == pytest.approx(expected[:2], abs=1e-6)
    # Sanity of the model itself: cash rows score far below card rows (payment_type explains the label).
    cash = [p for r, p in zip(taxi_rows, expected, strict=True) if r["payment_type"] == "Cash"]
    card = [p for r, p in zip(taxi_rows, expected, strict=True) if r["payment_type"] == "Credit Card"]
    if cash and card:
        assert max(cash) < min(card)


def test_serving_tf_example_with_b64_examples(
    taxi_server: Any, pushed_model_dir: Path, taxi_rows: list[dict[str, Any]]
) -> None:
    import numpy as np
    import tensorflow as tf

    def example(row: dict[str, Any]) -> bytes:
        feature = {}
        for k, v in row.items():
            if isinstance(v, str):
                if v:
                    feature[k] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()]))
            elif isinstance(v, float):
                if not math.isnan(v):
                    feature[k] = tf.train.Feature(float_list=tf.train.FloatList(value=[v]))
            else:
                feature[k] = tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))
        return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()

    serialized = [example(r) for r in taxi_rows[:4]]
    fn = tf.saved_model.load(str(pushed_model_dir)).signatures["serving_tf_example"]
    expected = np.asarray(fn(examples=tf.constant(serialized))["probabilities"]).tolist()
    body = {
        "signature_name": "serving_tf_example",
        "instances": [{"b64": base64.b64encode(s).decode()} for s in serialized],
    }
    response = post(taxi_server, "/v1/models/taxi:predict", body)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == pytest.approx(expected, abs=1e-6)


def test_nan_and_infinity_inputs_do_not_crash(taxi_server: Any, taxi_rows: list[dict[str, Any]]) -> None:
    row = dict(taxi_rows[0], fare=math.nan, trip_miles=math.nan, company="", payment_type="")
    body = json.dumps({"instances": [row]})  # json writes NaN tokens, which TF Serving accepts
    assert "NaN" in body
    response = post(taxi_server, "/v1/models/taxi:predict", body)
    assert response.status_code == 200, response.text
    (p,) = response.json()["predictions"]
    assert 0.0 <= p <= 1.0
    inf = post(
        taxi_server, "/v1/models/taxi:predict", json.dumps({"instances": [dict(taxi_rows[0], fare=math.inf)]})
    )
    assert inf.status_code == 200, inf.text
    (q,) = json.loads(inf.text)["predictions"]  # may be NaN: written as a NaN token, still parseable
    assert math.isnan(q) or 0.0 <= q <= 1.0


def test_classify_on_a_predict_model_says_why(taxi_server: Any, taxi_rows: list[dict[str, Any]]) -> None:
    response = post(taxi_server, "/v1/models/taxi:classify", {"examples": [{"fare": 1.0}]})
    assert_error(response, 400, "does not support classify")
    assert "use :predict" in response.json()["error"]
    assert_error(
        post(taxi_server, "/v1/models/taxi:regress", {"examples": [{"fare": 1.0}]}),
        400,
        "does not support regress",
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "fragment"),
    [
        ("POST", "/v1/models/nope:predict", {"instances": [1]}, 404, "not found for request: Latest(nope)"),
        (
            "POST",
            "/v1/models/taxi/versions/1:predict",
            {"instances": [1]},
            404,
            "Specific(taxi, 1): version 1",
        ),
        (
            "POST",
            "/v1/models/taxi/labels/stable:predict",
            {"instances": [1]},
            400,
            "Unrecognized servable version label: stable",
        ),
        ("GET", "/v1/models/taxi/versions/1", None, 404, "Could not find version 1"),
        ("GET", "/v1/models/nope", None, 404, "Could not find any versions of model nope"),
        ("GET", "/v1/models/taxi/labels/stable/metadata", None, 400, "Unrecognized servable version label"),
        ("POST", "/v1/models/..%2F..:predict", {"instances": [1]}, 404, "not served"),
        ("POST", "/v1/models/%2e%2e%2f%2e%2e%2fetc%2fpasswd:predict", {"instances": [1]}, 404, "not served"),
        ("GET", "/v1/models/..%2F..%2Ftmp", None, 404, "Could not find any versions of model ../../tmp"),
        ("POST", "/v1/models/taxi:PREDICT", {"instances": [1]}, 400, "Malformed request"),
        ("POST", "/v1/models/taxi:predict?debug=1", {"instances": [1]}, 400, "Malformed request"),
        ("GET", "/v1/models/taxi?debug=1", None, 404, "Could not find any versions of model taxi?debug=1"),
        ("POST", "/v1/models/taxi:explain", {}, 400, "Malformed request"),
        ("POST", "/v1/models/taxi/versions/x:predict", {}, 400, "Malformed request"),
        ("GET", "/v1/models/taxi:predict", None, 400, "Malformed request"),
        ("POST", "/v1/models/taxi", {}, 400, "Malformed request"),
        ("PUT", "/v1/models/taxi", {}, 400, "Malformed request"),
        ("GET", "/v1/models", None, 400, "Missing model name"),
        ("POST", "/v1/models/taxi:predict", b"{not json", 400, "JSON Parse error"),
        ("POST", "/v1/models/taxi:predict", {"instances": [], "inputs": {}}, 400, "not both"),
        (
            "POST",
            "/v1/models/taxi:predict",
            {"signature_name": "nope", "instances": [1]},
            400,
            "serving_tf_example",
        ),
        (
            "POST",
            "/v1/models/taxi:predict",
            {"signature_name": 3, "instances": [1]},
            400,
            "'signature_name' key must be a string value",
        ),
        ("POST", "/v1/models/taxi:predict", {"instances": [{"fare": 1.0}]}, 400, "missing: company"),
        ("POST", "/v1/models/taxi:predict", {"inputs": {"fare": [1]}}, 400, "missing: company"),
    ],
)
def test_errors_have_tf_serving_codes_and_clear_messages(
    taxi_server: Any, method: str, path: str, body: Any, status: int, fragment: str
) -> None:
    content = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    response = httpx.request(method, f"{taxi_server.rest_url}{path}", content=content, timeout=30)
    assert_error(response, status, fragment)


def test_wrong_dtype_names_the_feature(taxi_server: Any, taxi_rows: list[dict[str, Any]]) -> None:
    response = post(
        taxi_server, "/v1/models/taxi:predict", {"instances": [dict(taxi_rows[0], trip_seconds="long")]}
    )
    assert_error(response, 400, "'trip_seconds'")
    assert "int64" in response.json()["error"]
    response = post(
        taxi_server, "/v1/models/taxi:predict", {"instances": [dict(taxi_rows[0], fare=[1.0, 2.0])]}
    )
    # The model rejects it; the error names the input and its expected shape before TensorFlow's words.
    assert_error(response, 400, "input 'fare': got shape [1, 2], the signature expects float32[-1]")
    assert "the model failed with: ConcatOp" in response.json()["error"]


def test_prometheus_metrics(
    taxi_server: Any, pushed_model_dir: Path, taxi_rows: list[dict[str, Any]]
) -> None:
    post(taxi_server, "/v1/models/taxi:predict", {"instances": taxi_rows[:1]})
    post(taxi_server, "/v1/models/taxi:predict", b"{")
    text = get(taxi_server, "/monitoring/prometheus/metrics").text
    version = pushed_model_dir.name
    ok = (
        ':tensorflow:serving:request_count_total{api="predict",entrypoint="REST",model_name="taxi",'
        f'model_version="{version}",status="OK"}}'
    )
    assert ok in text
    assert 'status="INVALID_ARGUMENT"' in text
    assert ":tensorflow:serving:request_latency_bucket{" in text
    labels = f'model_name="taxi",model_version="{version}"'
    assert f':tensorflow:serving:model_version_state{{{labels},state="AVAILABLE"}} 1.0' in text
    assert f':tensorflow:serving:load_attempt_count_total{{{labels},status="AVAILABLE"}} 1.0' in text
    # Unknown model names never become label values.
    post(taxi_server, "/v1/models/made-up-name:predict", {"instances": [1]})
    assert "made-up-name" not in get(taxi_server, "/monitoring/prometheus/metrics").text


# -- the tiny model: several outputs, *_bytes, 2-D inputs, classify and regress ---


@pytest.fixture
def tiny_server(start_server: Any, tiny_model_dir: Path, tmp_path: Path) -> Any:
    from serving.config import single_model

    copy_version(tiny_model_dir, tmp_path / "tiny", 1)
    return start_server(models=single_model("tiny", str(tmp_path / "tiny")))


def test_several_outputs_and_bytes_outputs(tiny_server: Any) -> None:
    # b"\xffz" is not UTF-8: a non-_bytes string output comes back b64-encoded, not as broken JSON.
    rows = [
        {"x": 1.5, "n": 1, "tag": "ab"},
        {"x": -2, "n": -5, "tag": {"b64": base64.b64encode(b"\xffz").decode()}},
    ]
    response = post(tiny_server, "/v1/models/tiny:predict", {"instances": rows})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "predictions": [
            {
                "doubled": 3.0,
                "n_plus_one": 2,
                "shout": "AB",
                "tag_bytes": {"b64": base64.b64encode(b"ab").decode()},
            },
            {"doubled": -4.0, "n_plus_one": -4, "shout": {"b64": "/1o="}, "tag_bytes": {"b64": "/3o="}},
        ]
    }
    columnar = post(tiny_server, "/v1/models/tiny:predict", {"inputs": {"x": [0.5], "n": [7], "tag": ["q"]}})
    assert columnar.json() == {
        "outputs": {"doubled": [1.0], "n_plus_one": [8], "shout": ["Q"], "tag_bytes": [{"b64": "cQ=="}]}
    }


def test_two_dimensional_inputs_and_shapes_left_to_the_model(tiny_server: Any) -> None:
    rows = post(
        tiny_server, "/v1/models/tiny:predict", {"signature_name": "single", "instances": [[1, 2], [3, 4.5]]}
    )
    assert rows.json() == {"predictions": [3.0 + TINY_BIAS, 7.5 + TINY_BIAS]}
    cols = post(tiny_server, "/v1/models/tiny:predict", {"signature_name": "single", "inputs": [[1, 1]]})
    assert cols.json() == {"outputs": [2.0 + TINY_BIAS]}
    # As in TF Serving, a shape the SignatureDef does not declare goes to the model, which sums 3 here.
    wide = post(
        tiny_server, "/v1/models/tiny:predict", {"signature_name": "single", "instances": [[1, 2, 3]]}
    )
    assert wide.json() == {"predictions": [6.0 + TINY_BIAS]}
    # ...and one the model cannot take is a 400 naming the input and the shape the signature declares.
    bad = post(tiny_server, "/v1/models/tiny:predict", {"signature_name": "single", "inputs": [1, 2]})
    assert_error(bad, 400, "input 'pairs': got shape [2], the signature expects float32[-1,2]")


def test_classify_and_regress_results(tiny_server: Any) -> None:
    def sigmoid(v: float) -> float:
        return 1 / (1 + math.exp(-v))

    body = {"signature_name": "classify", "context": {"x": 0.0}, "examples": [{"x": 2.0}, {}]}
    response = post(tiny_server, "/v1/models/tiny:classify", body)
    assert response.status_code == 200, response.text
    (first, second) = response.json()["results"]
    assert [c[0] for c in first] == ["neg", "pos"]
    assert first[1][1] == pytest.approx(sigmoid(2.0), abs=1e-6) and first[0][1] == pytest.approx(
        1 - sigmoid(2.0), abs=1e-6
    )
    assert second[1][1] == pytest.approx(0.5)  # the context's x=0 applies to the second example
    regress = post(
        tiny_server,
        "/v1/models/tiny:regress",
        {"signature_name": "regress", "examples": [{"x": 3.0}, {"x": -1.0}]},
    )
    assert regress.json() == {"results": [2 * 3.0 + TINY_BIAS, 2 * -1.0 + TINY_BIAS]}
    on_predict = post(tiny_server, "/v1/models/tiny:classify", {"examples": [{"x": 1.0}]})
    assert_error(on_predict, 400, "Signatures that support classify: classify")
    assert_error(
        post(
            tiny_server, "/v1/models/tiny:regress", {"signature_name": "classify", "examples": [{"x": 1.0}]}
        ),
        400,
        "does not support regress",
    )
