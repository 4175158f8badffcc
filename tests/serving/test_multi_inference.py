"""gRPC MultiInference when the tasks' signatures read different input tensors (multi_inference.cc).

TF Serving feeds the request's examples to the set of the tasks' input tensors in
one computation. Its testMultiInferenceTf2 runs regress_x_to_y and classify_x_to_y
of a TF2 half_plus_two, whose signatures are separate functions with separate
inputs; the TF1 model here feeds two different placeholders of one graph.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import inference_pb2, prediction_service_pb2_grpc

from serving.config import ModelSpec, ServerOptions
from serving.loading import load_servable
from tests.serving.conftest import build_shapeless_tf1_model

REGRESS = "tensorflow/serving/regress"
CLASSIFY = "tensorflow/serving/classify"


def build_tf2_half_plus_two(export_dir: Path) -> Path:
    """Like TF Serving's saved_model_half_plus_two_tf2_cpu: y = 0.5 x + 2, one function per signature."""
    import tensorflow as tf

    class Model(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = tf.Variable(0.5), tf.Variable(2.0)

        def _y(self, inputs: Any) -> Any:
            spec = {"x": tf.io.FixedLenFeature([1], tf.float32, default_value=[0.0])}
            return self.a * tf.io.parse_example(inputs, spec)["x"] + self.b

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def regress_x_to_y(self, inputs: Any) -> Any:
            return {"outputs": self._y(inputs)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def classify_x_to_y(self, inputs: Any) -> Any:
            return {"scores": self._y(inputs)}

    model = Model()
    signatures = {"regress_x_to_y": model.regress_x_to_y, "classify_x_to_y": model.classify_x_to_y}
    tf.saved_model.save(model, str(export_dir), signatures=signatures)
    return export_dir


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from serving.server import start_server

    base = tmp_path_factory.mktemp("models")
    build_tf2_half_plus_two(base / "tf2" / "123")
    build_shapeless_tf1_model(base / "tf1" / "1", bias=3.0)
    models = (ModelSpec("tf2", str(base / "tf2")), ModelSpec("tf1", str(base / "tf1")))
    handle = start_server(ServerOptions(models=models, port=0, rest_api_port=0, inference_threads=2))
    yield handle
    handle.stop()


def multi_request(model: str, tasks: list[tuple[str, str]], xs: list[float]) -> Any:
    request = inference_pb2.MultiInferenceRequest()
    for signature, method in tasks:
        task = request.tasks.add(method_name=method)
        task.model_spec.name = model
        task.model_spec.signature_name = signature
    for x in xs:
        request.input.example_list.examples.add().features.feature["x"].float_list.value.append(x)
    return request


def call(server: Any, request: Any) -> Any:
    with grpc.insecure_channel(server.grpc_target) as channel:
        return prediction_service_pb2_grpc.PredictionServiceStub(channel).MultiInference(request, timeout=30)


def test_tf2_signatures_on_different_inputs_as_in_tf_servings_test(server: Any) -> None:
    signature_defs = server.manager.resolve("tf2").signature_defs.signature_def
    inputs = {signature_defs[k].inputs["inputs"].name for k in ("regress_x_to_y", "classify_x_to_y")}
    assert len(inputs) == 2  # what used to be refused: "Input tensor must be the same for all Signatures"
    request = multi_request("tf2", [("regress_x_to_y", REGRESS), ("classify_x_to_y", CLASSIFY)], [2.0])
    regress, classify = call(server, request).results
    assert regress.regression_result.regressions[0].value == 3.0
    assert classify.classification_result.classifications[0].classes[0].score == 3.0
    for result, signature in ((regress, "regress_x_to_y"), (classify, "classify_x_to_y")):
        assert (result.model_spec.name, result.model_spec.signature_name) == ("tf2", signature)
        assert result.model_spec.version.value == 123


def test_tf1_signatures_on_different_placeholders(server: Any) -> None:
    request = multi_request("tf1", [("classify", CLASSIFY), ("regress", REGRESS)], [2.0, -6.0])
    classify, regress = call(server, request).results
    assert [r.value for r in regress.regression_result.regressions] == [4.0, 0.0]
    scores = [[(c.label, c.score) for c in e.classes] for e in classify.classification_result.classifications]
    p = 1 / (1 + math.exp(-4.0))
    near = [[(label, pytest.approx(score, abs=1e-6)) for label, score in e] for e in scores]
    assert near == [[("neg", 1 - p), ("pos", p)], [("neg", 0.5), ("pos", 0.5)]]


def test_one_session_call_feeds_every_input_tensor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tensorflow as tf

    from serving.graph_session import _Callables

    servable = load_servable("tf1", 1, build_shapeless_tf1_model(tmp_path / "1", bias=3.0))
    joint = servable.joint_signature([servable.signature("regress"), servable.signature("classify")])
    fed: list[set[str]] = []
    evaluate = _Callables.evaluate

    def counting(self: Any, feeds: Any, wanted: Any) -> Any:
        fed.append(set(feeds))
        return evaluate(self, feeds, wanted)

    monkeypatch.setattr(_Callables, "evaluate", counting)
    example = tf.train.Example()
    example.features.feature["x"].float_list.value.append(2.0)
    outputs = servable.call(joint, {"inputs": np.array([example.SerializeToString()], object)})
    assert fed == [{"tf_example:0", "tf_example_2:0"}]
    assert outputs["0/outputs"].tolist() == [[4.0]] and outputs["1/scores"].shape == (1, 2)


def test_tasks_must_share_the_model_and_its_version(server: Any) -> None:
    request = multi_request("tf2", [("regress_x_to_y", REGRESS), ("classify_x_to_y", CLASSIFY)], [2.0])
    request.tasks[1].model_spec.name = "tf1"
    with pytest.raises(grpc.RpcError) as names:
        call(server, request)
    assert names.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "must access the same model name" in names.value.details()
    request.tasks[1].model_spec.name = "tf2"
    request.tasks[1].model_spec.version.value = 123
    with pytest.raises(grpc.RpcError) as versions:
        call(server, request)
    assert versions.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "the tasks ask for latest, version 123" in versions.value.details()
