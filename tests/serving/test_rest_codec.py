"""JSON <-> tensor rules of TF Serving's REST API (util/json_tensor.cc), checked value by value."""

from __future__ import annotations

import base64
import json
import math

import numpy as np
import pytest

from serving import rest_requests, rest_responses
from serving.errors import Code, ServingError
from serving.signatures import TensorSpec

TAXI_LIKE = {
    "fare": TensorSpec("fare", "float32", (-1,)),
    "trip_seconds": TensorSpec("trip_seconds", "int64", (-1,)),
    "company": TensorSpec("company", "string", (-1,)),
}
PAIRS = {"pairs": TensorSpec("pairs", "float32", (-1, 2))}


def test_row_format_builds_one_batch_per_input() -> None:
    doc = {
        "instances": [
            {"fare": 1.5, "trip_seconds": 60, "company": "A"},
            {"fare": 2, "trip_seconds": 0, "company": ""},
        ]
    }
    inputs, columnar = rest_requests.predict_inputs(doc, TAXI_LIKE)
    assert not columnar
    assert inputs["fare"].dtype == np.float32 and inputs["fare"].tolist() == [1.5, 2.0]
    assert inputs["trip_seconds"].dtype == np.int64 and inputs["trip_seconds"].tolist() == [60, 0]
    assert inputs["company"].tolist() == [b"A", b""]


def test_columnar_format_and_single_input_plain_values() -> None:
    inputs, columnar = rest_requests.predict_inputs({"inputs": [[1, 2], [3.5, 4]]}, PAIRS)
    assert columnar and inputs["pairs"].shape == (2, 2) and inputs["pairs"].tolist() == [[1, 2], [3.5, 4]]
    inputs, columnar = rest_requests.predict_inputs({"instances": [[1, 2], [3, 4], [5, 6]]}, PAIRS)
    assert not columnar and inputs["pairs"].shape == (3, 2)
    # A single input may also be named in each instance.
    inputs, _ = rest_requests.predict_inputs({"instances": [{"pairs": [1, 2]}]}, PAIRS)
    assert inputs["pairs"].tolist() == [[1.0, 2.0]]


def test_nan_and_infinity_tokens_are_accepted_for_floats() -> None:
    doc = rest_requests.parse_json_object(
        b'{"inputs": {"fare": [NaN, Infinity, -Infinity], "trip_seconds": [1,2,3], "company": ["a","b","c"]}}'
    )
    inputs, _ = rest_requests.predict_inputs(doc, TAXI_LIKE)
    fare = inputs["fare"]
    assert math.isnan(fare[0]) and fare[1] == np.inf and fare[2] == -np.inf


def test_b64_values_decode_to_bytes() -> None:
    raw = b"\x00\xffbinary"
    spec = {"blob": TensorSpec("blob", "string", (-1,))}
    inputs, _ = rest_requests.predict_inputs({"instances": [{"b64": base64.b64encode(raw).decode()}]}, spec)
    assert inputs["blob"].tolist() == [raw]
    # As absl::Base64Unescape (TF Serving): padding optional, whitespace (line-wrapped base64) skipped.
    wrapped = base64.encodebytes(raw * 40).decode()  # 76-column lines
    assert "\n" in wrapped
    inputs, _ = rest_requests.predict_inputs({"instances": [{"b64": "aGVsbG8"}, {"b64": wrapped}]}, spec)
    assert inputs["blob"].tolist() == [b"hello", raw * 40]


def test_columnar_inputs_read_only_the_signatures_keys() -> None:
    doc = {"inputs": {"fare": [1.5], "trip_seconds": [3], "company": ["a"], "tips": [9]}}
    inputs, columnar = rest_requests.predict_inputs(doc, TAXI_LIKE)
    assert columnar and sorted(inputs) == ["company", "fare", "trip_seconds"]
    assert inputs["fare"].tolist() == [1.5] and inputs["company"].tolist() == [b"a"]


@pytest.mark.parametrize(
    ("doc", "specs", "fragment"),
    [
        ({"instances": [1], "inputs": [1]}, PAIRS, "not both"),
        ({}, PAIRS, "Missing 'inputs' or 'instances'"),
        ({"instances": []}, PAIRS, "No values in 'instances'"),
        ({"instances": [{"fare": 1.0, "trip_seconds": 1}]}, TAXI_LIKE, "missing: company"),
        (
            {"instances": [{"fare": 1.0, "trip_seconds": 1, "company": "a", "tips": 1}]},
            TAXI_LIKE,
            "unexpected: tips",
        ),
        ({"instances": [{"fare": 1.0, "trip_seconds": 1.5, "company": "a"}]}, TAXI_LIKE, "'trip_seconds'"),
        (
            {"instances": [{"fare": "1.0", "trip_seconds": 1, "company": "a"}]},
            TAXI_LIKE,
            "not of expected type float32",
        ),
        (
            {"instances": [{"fare": 1.0, "trip_seconds": 1, "company": 7}]},
            TAXI_LIKE,
            "not of expected type string",
        ),
        (
            {"instances": [{"fare": True, "trip_seconds": 1, "company": "a"}]},
            TAXI_LIKE,
            "not of expected type float32",
        ),
        (
            {"instances": [{"fare": 1e39, "trip_seconds": 1, "company": "a"}]},
            TAXI_LIKE,
            "without loss of precision",
        ),
        (
            {"instances": [{"fare": 1.0, "trip_seconds": 2**64, "company": "a"}]},
            TAXI_LIKE,
            "out of range for int64",
        ),
        ({"instances": [[1, 2], [3]]}, PAIRS, "instances[1]"),
        ({"inputs": [[1, 2], [3]]}, PAIRS, "ragged"),
        ({"instances": [1, 2]}, TAXI_LIKE, "plain list"),
        ({"inputs": [1.0]}, TAXI_LIKE, "several inputs"),
        ({"instances": [{"b64": "***"}]}, {"s": TensorSpec("s", "string", (-1,))}, "base64"),
        ({"inputs": {"fare": [1.0], "company": ["a"]}}, TAXI_LIKE, "Missing named input: trip_seconds in"),
    ],
)
def test_bad_predict_bodies_are_invalid_argument_naming_the_problem(
    doc: dict, specs: dict, fragment: str
) -> None:
    with pytest.raises(ServingError) as info:
        rest_requests.predict_inputs(doc, specs)
    assert info.value.code is Code.INVALID_ARGUMENT and info.value.http_status == 400
    assert fragment in info.value.message


@pytest.mark.parametrize("body", [b"", b"{", b"[1, 2]", b'{"instances": [1,]}', b"\xff\xfe"])
def test_malformed_json_is_a_400(body: bytes) -> None:
    with pytest.raises(ServingError) as info:
        rest_requests.parse_json_object(body)
    assert info.value.http_status == 400 and ("JSON" in info.value.message)


def test_response_formats_follow_tf_serving() -> None:
    one = {"probabilities": np.array([0.2, 0.5], dtype=np.float32)}
    assert json.loads(rest_responses.predict_response(one, columnar=False)) == {"predictions": [0.2, 0.5]}
    assert json.loads(rest_responses.predict_response(one, columnar=True)) == {"outputs": [0.2, 0.5]}
    two = {"a": np.array([1, 2]), "b_bytes": np.array([b"x", b"\x00"], dtype=object)}
    rows = json.loads(rest_responses.predict_response(two, columnar=False))
    assert rows == {
        "predictions": [{"a": 1, "b_bytes": {"b64": "eA=="}}, {"a": 2, "b_bytes": {"b64": "AA=="}}]
    }
    cols = json.loads(rest_responses.predict_response(two, columnar=True))
    assert cols == {"outputs": {"a": [1, 2], "b_bytes": [{"b64": "eA=="}, {"b64": "AA=="}]}}


def test_floats_are_written_like_tf_serving() -> None:
    arr = np.array([0.2, 1.0, 9000000.0, 3e-5, 0.18903968, np.nan, np.inf, -np.inf], dtype=np.float32)
    text = rest_responses.encode_tensor(arr)
    # Six significant digits when they round-trip, else nine (max_digits10); '.0' on whole
    # numbers; NaN/Infinity tokens.
    assert text == "[0.2,1.0,9e+06,3e-05,0.189039677,NaN,Infinity,-Infinity]"
    assert json.loads(text)[4] == pytest.approx(0.18903968)


def test_rows_with_mismatched_output_batches_are_refused() -> None:
    with pytest.raises(ServingError, match="batch size"):
        rest_responses.predict_response({"a": np.zeros(2), "b": np.zeros(3)}, columnar=False)
    uneven = {"a": np.zeros(2), "b": np.zeros(3)}
    assert json.loads(rest_responses.predict_response(uneven, columnar=True)) == {
        "outputs": {"a": [0.0, 0.0], "b": [0.0, 0.0, 0.0]}
    }


def test_examples_from_json_merge_context_and_type_features() -> None:
    import tensorflow as tf

    doc = {
        "context": {"city": "chicago", "x": 1.0},
        "examples": [{"x": 2.5, "n": [1, 2]}, {"b": {"b64": "AAE="}}],
    }
    examples = [tf.train.Example.FromString(e) for e in rest_requests.examples_from_json(doc)]
    first = examples[0].features.feature
    assert list(first["x"].float_list.value) == [2.5]  # the example's own value wins over the context
    assert list(first["n"].int64_list.value) == [1, 2]
    assert list(first["city"].bytes_list.value) == [b"chicago"]
    assert list(examples[1].features.feature["b"].bytes_list.value) == [b"\x00\x01"]
    assert list(examples[1].features.feature["x"].float_list.value) == [1.0]


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({}, "'examples'"),
        ({"examples": []}, "empty"),
        ({"examples": [{"x": [1, "a"]}]}, "mixes value types"),
        ({"examples": [{"x": None}]}, "unexpected JSON type"),
        ({"examples": [3]}, "must be a JSON object"),
    ],
)
def test_bad_examples_are_invalid(doc: dict, fragment: str) -> None:
    with pytest.raises(ServingError) as info:
        rest_requests.examples_from_json(doc)
    assert info.value.http_status == 400 and fragment in info.value.message
