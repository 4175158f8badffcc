"""Serving fixtures: the pipeline's pushed model, a tiny TF1-style model, and servers that always stop.

The tiny model is a real SavedModel built with TensorFlow's SavedModelBuilder.
It has what the taxi model lacks: classify and regress signatures, several
outputs (one ``*_bytes``), integer and 2-D inputs, and a "sleep" signature to
make calls slow on purpose (overload and timeout tests).
"""

from __future__ import annotations

import csv
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DATA_CSV

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TINY_BIAS = 1.0


def build_tiny_model(export_dir: Path) -> Path:
    """A SavedModel with predict, classify and regress signatures (TF1 SavedModelBuilder)."""
    import tensorflow as tf

    v1 = tf.compat.v1
    with tf.Graph().as_default(), v1.Session() as sess:
        bias = v1.get_variable("bias", initializer=tf.constant(TINY_BIAS))
        # serving_default: several inputs and outputs.
        x = v1.placeholder(tf.float32, [None], name="x")
        n = v1.placeholder(tf.int64, [None], name="n")
        tag = v1.placeholder(tf.string, [None], name="tag")
        default = v1.saved_model.predict_signature_def(
            {"x": x, "n": n, "tag": tag},
            {
                "doubled": 2.0 * x,
                "n_plus_one": n + 1,
                "tag_bytes": tag,
                "shout": tf.strings.upper(tag),
            },
        )
        # single: one 2-D input, one output.
        pairs = v1.placeholder(tf.float32, [None, 2], name="pairs")
        single = v1.saved_model.predict_signature_def(
            {"pairs": pairs}, {"sum": tf.reduce_sum(pairs, axis=1) + bias}
        )
        # sleep: waits `micros` (scalar) then echoes it; for overload and timeout tests.
        micros = v1.placeholder(tf.int64, [], name="micros")
        from tensorflow.python.data.experimental.ops import testing as data_testing

        slept = (
            tf.data.Dataset.range(1)
            .apply(data_testing.sleep(micros))
            .reduce(tf.constant(0, tf.int64), lambda a, b: a + b)
        )
        sleep = v1.saved_model.predict_signature_def({"micros": micros}, {"slept": slept + micros})
        # classify / regress over serialized tf.Examples with one float feature "x".
        serialized = v1.placeholder(tf.string, [None], name="tf_example")
        fx = tf.io.parse_example(
            serialized, {"x": tf.io.FixedLenFeature([1], tf.float32, default_value=[0.0])}
        )["x"]
        p = tf.sigmoid(fx[:, 0])
        scores = tf.stack([1.0 - p, p], axis=1)
        classes = tf.tile(tf.constant([["neg", "pos"]]), [tf.shape(fx)[0], 1])
        classify = v1.saved_model.classification_signature_def(serialized, classes, scores)
        regress = v1.saved_model.regression_signature_def(serialized, 2.0 * fx + bias)
        sess.run(v1.global_variables_initializer())
        builder = v1.saved_model.Builder(str(export_dir))
        builder.add_meta_graph_and_variables(
            sess,
            ["serve"],
            signature_def_map={
                "serving_default": default,
                "single": single,
                "sleep": sleep,
                "classify": classify,
                "regress": regress,
            },
        )
        builder.save()
    return export_dir


def build_half_plus_three(export_dir: Path) -> Path:
    """A model like TF Serving's testdata ``saved_model_half_plus_three``, which its REST docs query.

    TF1 graph: serialized tf.Examples are parsed for a float feature ``x`` ([batch, 1]);
    ``y = 0.5 * x + 3``. serving_default feeds ``x`` itself (declared [-1, 1]), and
    "tensorflow/serving/regress" / "tensorflow/serving/classify" take the examples.
    """
    import tensorflow as tf

    v1 = tf.compat.v1
    with tf.Graph().as_default(), v1.Session() as sess:
        half = v1.get_variable("a", initializer=tf.constant(0.5))
        three = v1.get_variable("b", initializer=tf.constant(3.0))
        serialized = v1.placeholder(tf.string, [None], name="tf_example")
        x = tf.identity(tf.io.parse_example(serialized, {"x": tf.io.FixedLenFeature([1], tf.float32)})["x"])
        y = tf.identity(half * x + three, name="y")
        sigs = v1.saved_model
        builder = v1.saved_model.Builder(str(export_dir))
        sess.run(v1.global_variables_initializer())
        builder.add_meta_graph_and_variables(
            sess,
            ["serve"],
            signature_def_map={
                "serving_default": sigs.predict_signature_def({"x": x}, {"y": y}),
                "tensorflow/serving/regress": sigs.regression_signature_def(serialized, y),
                "tensorflow/serving/classify": sigs.classification_signature_def(serialized, None, y),
            },
        )
        builder.save()
    return export_dir


def build_shapeless_tf1_model(export_dir: Path, bias: float) -> Path:
    """A TF1 graph whose SignatureDefs carry no shapes, as old exporters wrote them.

    Like TF Serving's testdata ``saved_model_half_plus_three``: its TensorInfos have no
    ``tensor_shape``, so tf.saved_model.load re-traces the signatures with rank-0
    placeholders and fails in ParseExample; TF Serving (and a session) load it.

    - serving_default: ``y = 0.5 * x + bias`` on a placeholder ``x`` of no shape.
    - regress: examples (placeholder ``tf_example``) -> ``0.5 * x + bias``.
    - classify: examples fed to another placeholder, ``tf_example_2`` -> classes
      ["neg", "pos"], scores [1 - sigmoid(y), sigmoid(y)] with y as in regress.
    """
    import tensorflow as tf

    v1 = tf.compat.v1

    def info(tensor: Any) -> Any:
        proto = v1.saved_model.utils.build_tensor_info(tensor)
        proto.ClearField("tensor_shape")
        return proto

    def signature(inputs: dict[str, Any], outputs: dict[str, Any], method: str) -> Any:
        return v1.saved_model.signature_def_utils.build_signature_def(
            {k: info(v) for k, v in inputs.items()}, {k: info(v) for k, v in outputs.items()}, method
        )

    def from_examples(serialized: Any) -> Any:
        spec = {"x": tf.io.FixedLenFeature([1], tf.float32, default_value=[0.0])}
        return half * tf.io.parse_example(serialized, spec)["x"] + offset  # [batch, 1]

    with tf.Graph().as_default(), v1.Session() as sess:
        half = v1.get_variable("a", initializer=tf.constant(0.5))
        offset = v1.get_variable("b", initializer=tf.constant(float(bias)))
        x = v1.placeholder(tf.float32, name="x")
        examples = v1.placeholder(tf.string, name="tf_example")
        examples_2 = v1.placeholder(tf.string, name="tf_example_2")
        p = tf.sigmoid(from_examples(examples_2))
        scores = tf.concat([1.0 - p, p], axis=1)
        classes = tf.tile(tf.constant([["neg", "pos"]]), [tf.shape(scores)[0], 1])
        sess.run(v1.global_variables_initializer())
        builder = v1.saved_model.Builder(str(export_dir))
        builder.add_meta_graph_and_variables(
            sess,
            ["serve"],
            signature_def_map={
                "serving_default": signature(
                    {"x": x}, {"y": tf.identity(half * x + offset, name="y")}, "tensorflow/serving/predict"
                ),
                "regress": signature(
                    {"inputs": examples}, {"outputs": from_examples(examples)}, "tensorflow/serving/regress"
                ),
                "classify": signature(
                    {"inputs": examples_2},
                    {"classes": classes, "scores": scores},
                    "tensorflow/serving/classify",
                ),
            },
        )
        builder.save()
    return export_dir


def build_tf2_example_model(export_dir: Path) -> Path:
    """A TF2 SavedModel (tf.saved_model.save) whose classify/regress signatures say "predict".

    Every TF2 signature has method_name "tensorflow/serving/predict"; TF Serving 2.16
    classifies and regresses with them anyway, by their "inputs"/"classes"/"scores"/
    "outputs" names. "flat_scores" returns rank-1 scores, which TF Serving refuses.
    """
    import tensorflow as tf

    examples = tf.TensorSpec([None], tf.string)

    class Model(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = tf.Variable(2.0)

        def _x(self, inputs: Any) -> Any:
            spec = {"x": tf.io.FixedLenFeature([1], tf.float32, default_value=[0.0])}
            return tf.io.parse_example(inputs, spec)["x"]  # [batch, 1]

        @tf.function(input_signature=[examples])
        def cls(self, inputs: Any) -> Any:
            p = tf.sigmoid(self.weight * self._x(inputs))
            classes = tf.tile(tf.constant([["neg", "pos"]]), [tf.shape(p)[0], 1])
            return {"classes": classes, "scores": tf.concat([1.0 - p, p], axis=1)}

        @tf.function(input_signature=[examples])
        def reg(self, inputs: Any) -> Any:
            return {"outputs": self.weight * self._x(inputs)}

        @tf.function(input_signature=[examples])
        def flat_scores(self, inputs: Any) -> Any:
            return {"scores": self.weight * self._x(inputs)[:, 0]}

    model = Model()
    signatures = {"serving_default": model.reg, "cls": model.cls, "reg": model.reg}
    signatures["flat_scores"] = model.flat_scores
    tf.saved_model.save(model, str(export_dir), signatures=signatures)
    return export_dir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A version directory of the tiny model (copy it before changing it)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "1")


WAIT_S = 60


def wait_until(predicate: Callable[[], Any], timeout: float = WAIT_S, what: str = "condition") -> Any:
    """Poll until ``predicate()`` is truthy (and return it), or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def copy_version(src: Path, base: Path, version: int) -> Path:
    """Copy a version dir into ``base/<version>`` atomically, as the Pusher does."""
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".tmp-{version}"
    shutil.copytree(src, tmp)
    os.rename(tmp, base / str(version))
    return base / str(version)


@pytest.fixture
def start_server() -> Iterator[Callable[..., Any]]:
    """``start_server(**ServerOptions fields)`` on free loopback ports; all stopped at teardown."""
    from serving.config import ServerOptions
    from serving.server import start_server as start

    started = []

    def make(**fields: Any) -> Any:
        fields.setdefault("port", 0)
        fields.setdefault("rest_api_port", 0)
        fields.setdefault("host", "127.0.0.1")
        fields.setdefault("file_system_poll_wait_seconds", 0.2)
        fields.setdefault("inference_threads", 2)
        handle = start(ServerOptions(**fields))
        started.append(handle)
        return handle

    yield make
    for handle in started:
        handle.stop()


@pytest.fixture(scope="session")
def taxi_server(pushed_model_dir: Path) -> Iterator[Any]:
    """One server over the pipeline's pushed model (read only), shared by conformance tests."""
    from serving.config import ServerOptions, single_model
    from serving.server import start_server as start

    handle = start(
        ServerOptions(models=single_model("taxi", str(pushed_model_dir.parent)), port=0, rest_api_port=0)
    )
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def taxi_rows() -> list[dict[str, Any]]:
    """Ten rows of the real data as serving_default instances (empty cells: NaN, "" or 0)."""
    from models.features import Dtype, load_spec

    FEATURES = load_spec().features

    out = []
    with open(DATA_CSV, newline="") as f:
        for record in csv.DictReader(f):
            row: dict[str, Any] = {}
            for feat in FEATURES:
                cell = record[feat.name]
                if feat.dtype is Dtype.FLOAT:
                    row[feat.name] = float(cell) if cell else math.nan
                elif feat.dtype is Dtype.INT:
                    row[feat.name] = int(float(cell)) if cell else 0
                else:
                    row[feat.name] = cell
            out.append(row)
            if len(out) == 10:
                break
    return out


def in_process_predictions(
    version_dir: Path, rows: list[dict[str, Any]], signature: str = "serving_default"
) -> list[float]:
    """The reference: the SavedModel's own signature called in this process."""
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(str(version_dir))
    fn = loaded.signatures[signature]
    inputs = {}
    for key, spec in fn.structured_input_signature[1].items():
        values = [r[key] for r in rows]
        if spec.dtype == tf.string:
            inputs[key] = tf.constant([v.encode() for v in values])
        else:
            inputs[key] = tf.constant(np.array(values, dtype=spec.dtype.as_numpy_dtype))
    return np.asarray(fn(**inputs)["probabilities"]).tolist()
