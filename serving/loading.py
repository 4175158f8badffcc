"""Loading a version directory into a Servable, and warming it up before it takes traffic.

A SavedModel whose serving MetaGraph has a TF2 object graph (tf.saved_model.save,
Keras) loads with tf.saved_model.load (serving.object_graph). A graph-mode TF1
export (SavedModelBuilder, Estimator) has none, and runs in a session over its
MetaGraph (serving.graph_session), as TF Serving runs it.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from models.warmup import MAX_RECORDS as MAX_WARMUP_RECORDS
from models.warmup import WARMUP_FILE
from serving import graph_session, object_graph
from serving.classify_regress import (
    classification_results,
    classify_signature,
    example_inputs,
    regress_signature,
    regression_results,
    serialized_examples,
)
from serving.errors import Code, ServingError
from serving.predict import check_predict_inputs
from serving.servable import Servable, tf_message

logger = logging.getLogger(__name__)

SERVE_TAG = "serve"


class LoadError(Exception):
    """A version that cannot be served; ``code`` is reported in its status."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def load_servable(model_name: str, version: int, path: str | os.PathLike[str]) -> Servable:
    """Load one version directory (a local path or any tf.io.gfile URL); raises LoadError saying why not."""
    import tensorflow as tf
    from tensorflow_serving.apis import get_model_metadata_pb2

    path = os.fspath(path)

    meta_graph = _serving_meta_graph(path)
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    for key, sd in meta_graph.signature_def.items():
        signature_defs.signature_def[key].CopyFrom(sd)
    try:
        tags = list(meta_graph.meta_info_def.tags)
        if has_object_graph(meta_graph):
            return object_graph.load(model_name, version, path, tags, signature_defs)
        return graph_session.load(model_name, version, path, tags, signature_defs)
    except Exception as exc:  # noqa: BLE001 - TF raises many types on a corrupt model (IndexError on a
        # truncated variables file); all mean "do not serve this version", and the caller reports it.
        message = exc.message if isinstance(exc, tf.errors.OpError) else f"{type(exc).__name__}: {exc}"
        raise LoadError(Code.DATA_LOSS, f"cannot load SavedModel {path}: {tf_message(message)}") from exc


def has_object_graph(meta_graph: Any) -> bool:
    """Whether a MetaGraph was saved by TF2 (tf.saved_model.save): it then carries the objects to restore."""
    return len(meta_graph.object_graph_def.nodes) > 0


def _serving_meta_graph(path: str) -> Any:
    """The MetaGraph tagged exactly {"serve"} (TF Serving's default --saved_model_tags), else the first
    that has the tag."""
    import tensorflow as tf
    from google.protobuf import message, text_format
    from tensorflow.core.protobuf import saved_model_pb2

    pb, pbtxt = os.path.join(path, "saved_model.pb"), os.path.join(path, "saved_model.pbtxt")
    found = next((f for f in (pb, pbtxt) if tf.io.gfile.exists(f)), None)
    if found is None:
        raise LoadError(
            Code.NOT_FOUND,
            f"no saved_model.pb in {path}: the version is incomplete (still being copied?). "
            "Push versions atomically: a rename into place, or saved_model.pb copied last "
            "(pipeline/components/pusher.py does both).",
        )
    saved_model = saved_model_pb2.SavedModel()
    try:
        with tf.io.gfile.GFile(found, "rb") as f:
            data = f.read()
        if found == pb:
            saved_model.ParseFromString(data)
        else:
            text_format.Parse(data.decode(), saved_model)
    except (message.DecodeError, text_format.ParseError, UnicodeDecodeError, tf.errors.OpError) as exc:
        raise LoadError(Code.DATA_LOSS, f"{found} is corrupt: {exc}") from exc
    graphs = [mg for mg in saved_model.meta_graphs if SERVE_TAG in mg.meta_info_def.tags]
    if not graphs:
        raise LoadError(Code.NOT_FOUND, f"{path} has no MetaGraph tagged '{SERVE_TAG}'")
    exact = [mg for mg in graphs if set(mg.meta_info_def.tags) == {SERVE_TAG}]
    return (exact or graphs)[0]


def warm_up(servable: Servable) -> int:
    """Replay ``assets.extra/tf_serving_warmup_requests`` (TFRecord of PredictionLog)."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(servable.path, WARMUP_FILE)
    if not tf.io.gfile.exists(path):
        return 0
    count = 0
    try:
        for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
            count += 1
            if count > MAX_WARMUP_RECORDS:
                raise LoadError(
                    Code.INVALID_ARGUMENT, f"{path}: more than {MAX_WARMUP_RECORDS} warmup records"
                )
            log = prediction_log_pb2.PredictionLog.FromString(record)
            _replay(servable, log)
    except tf.errors.OpError as exc:
        raise LoadError(
            Code.DATA_LOSS, f"{path}: unreadable warmup file: {tf_message(exc.message)}"
        ) from exc
    except ServingError as exc:
        raise LoadError(exc.code, f"warmup request {count} in {path} failed: {exc.message}") from exc
    return count


def _replay(servable: Servable, log: Any) -> None:
    import tensorflow as tf

    kind = log.WhichOneof("log_type")
    if kind == "predict_log":
        req = log.predict_log.request
        sig = servable.signature(req.model_spec.signature_name)
        inputs = {k: tf.make_ndarray(v) for k, v in req.inputs.items()}
        check_predict_inputs(sig, inputs)
        servable.call(sig, inputs)
    elif kind == "classify_log":
        req = log.classify_log.request
        sig = classify_signature(servable, req.model_spec.signature_name)
        examples = serialized_examples(req.input)
        classification_results(sig, servable.call(sig, example_inputs(sig, examples)), len(examples))
    elif kind == "regress_log":
        req = log.regress_log.request
        sig = regress_signature(servable, req.model_spec.signature_name)
        examples = serialized_examples(req.input)
        regression_results(sig, servable.call(sig, example_inputs(sig, examples)), len(examples))
    else:
        raise ServingError(Code.UNIMPLEMENTED, f"warmup records of type {kind} are not supported")
