"""TF1 SavedModels (graph-mode MetaGraphs, no TF2 object graph): run in a session over the MetaGraph.

This is how TF Serving runs every SavedModel (SavedModelBundle: a Session over
the MetaGraph, loaded by the session-based loader). TF2's tf.saved_model.load
re-traces a TF1 graph's signatures with placeholders shaped from the
SignatureDef, which fails for old exports whose TensorInfo has no shape (TF
Serving's testdata ``saved_model_half_plus_three``: "Shape must be rank 1 but is
rank 0" in its ParseExample). A session feeds the graph's own placeholders, so
such models load and run as they do in TF Serving.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from serving.servable import Servable, joint_key
from serving.signatures import Outputs, Run, Signature, tensor_specs

logger = logging.getLogger(__name__)


class _Callables:
    """Session callables by (feed tensors, fetch tensors), made once: making one prunes the graph.

    A callable is TensorFlow's ``Session::MakeCallable``. Unlike ``Session.run``, it does
    not check a fed array's shape against the tensor's static shape in Python, just as
    TF Serving's C++ session does not: TF Serving's documented half_plus_three request
    feeds ``[1.0, 2.0, 5.0]`` (shape [3]) to ``x``, whose placeholder is [?, 1], and
    gets ``[3.5, 4.0, 5.5]``; Session.run would refuse it.
    """

    _MAX = 64  # MultiInference can ask for any combination of signatures; keep the memory bounded

    def __init__(self, session: Any) -> None:
        self.session = session
        self._made: dict[tuple[tuple[str, ...], tuple[str, ...]], Any] = {}
        self._lock = threading.Lock()

    def get(self, feeds: tuple[str, ...], fetches: tuple[str, ...]) -> Any:
        from tensorflow.core.protobuf import config_pb2

        key = (feeds, fetches)
        with self._lock:
            made = self._made.get(key)
        if made is None:
            options = config_pb2.CallableOptions(feed=list(feeds), fetch=list(fetches))
            # The API behind make_callable's fast path (tf_keras graph mode uses it too): public
            # make_callable with a feed_list falls back to Session.run and its shape check.
            made = self.session._make_callable_from_options(options)
            with self._lock:
                if len(self._made) < self._MAX:
                    made = self._made.setdefault(key, made)
        return made

    def evaluate(self, fed: Mapping[str, np.ndarray], wanted: Iterable[str]) -> dict[str, np.ndarray]:
        """The values of the ``wanted`` tensors with ``fed`` fed (tensor names), in one session call.

        A wanted tensor that is also fed is answered with the fed value, as Python's
        Session.run does; the C++ callable refuses a tensor both fed and fetched (a
        signature that echoes an input, like the tests' tiny model's ``tag_bytes``).
        """
        wanted = set(wanted)
        feeds = tuple(sorted(fed))
        fetches = tuple(sorted(wanted - set(fed)))
        values = {}
        if fetches:
            computed = self.get(feeds, fetches)(*[fed[name] for name in feeds])
            values = dict(zip(fetches, computed, strict=True))
        return {name: np.asarray(values[name] if name in values else fed[name]) for name in wanted}

    def warm(self, feeds: Iterable[str], fetches: Iterable[str]) -> None:
        """Make the callable ``evaluate`` will use, so that the first request does not pay for it."""
        fed = tuple(sorted(set(feeds)))
        self.get(fed, tuple(sorted(set(fetches) - set(fed))))


@dataclasses.dataclass(frozen=True)
class SessionCall:
    """A signature as a session call: feeds by input alias, fetches by output alias (a signatures.Run)."""

    callables: _Callables
    feeds: Mapping[str, str]  # input alias -> tensor name
    fetches: Mapping[str, str]  # output alias -> tensor name
    np_dtypes: Mapping[str, Any]  # input alias -> the fed tensor's numpy dtype

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> Outputs:
        fed = {self.feeds[a]: np.asarray(v, dtype=self.np_dtypes[a]) for a, v in inputs.items()}
        values = self.callables.evaluate(fed, self.fetches.values())
        return {alias: values[name] for alias, name in self.fetches.items()}


def load(model_name: str, version: int, path: str, tags: Sequence[str], signature_defs: Any) -> Servable:
    """Load a version into its own graph and session; TensorFlow's errors propagate (loading reports them)."""
    import tensorflow as tf
    from tensorflow.python.util import deprecation

    threads = tf.config.threading
    config = tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=threads.get_intra_op_parallelism_threads(),
        inter_op_parallelism_threads=threads.get_inter_op_parallelism_threads(),
        allow_soft_placement=True,  # a graph exported with GPU placements still runs on CPU
    )
    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph, config=config)
    try:
        # The loader's deprecation notice says to use tf.saved_model.load: the very loader that
        # cannot load these models. Silenced, so it does not mislead whoever reads the log.
        with graph.as_default(), deprecation.silence():
            # Restores the variables and runs the init op (tables), as TF Serving's loader does.
            tf.compat.v1.saved_model.loader.load(session, list(tags), path)
        graph.finalize()  # requests only run the graph; nothing may add to it
        callables = _Callables(session)
        signatures = {
            key: Signature(
                key,
                sd.method_name,
                tensor_specs(sd.inputs),
                tensor_specs(sd.outputs),
                _call(callables, key, sd),
            )
            for key, sd in signature_defs.signature_def.items()
        }
    except BaseException:
        session.close()
        raise
    return Servable(model_name, version, path, signature_defs, signatures, _joint_run, session, "session")


def _call(callables: _Callables, key: str, sd: Any) -> SessionCall | None:
    """The session call of one SignatureDef; None if it cannot be fed and fetched by tensor name."""
    import tensorflow as tf

    if key.startswith("__saved_model"):
        return None  # the init op, already run by the loader
    infos = [*sd.inputs.values(), *sd.outputs.values()]
    if any(info.WhichOneof("encoding") != "name" for info in infos):
        logger.warning("signature %r has sparse or composite tensors; it is not served", key)
        return None
    feeds = {alias: info.name for alias, info in sd.inputs.items()}
    fetches = {alias: info.name for alias, info in sd.outputs.items()}
    try:
        graph = callables.session.graph
        np_dtypes = {a: graph.get_tensor_by_name(n).dtype.as_numpy_dtype for a, n in feeds.items()}
        for name in fetches.values():
            graph.get_tensor_by_name(name)
    except (KeyError, ValueError) as exc:
        logger.warning("signature %r names tensors the graph does not have (%s); it is not served", key, exc)
        return None
    try:
        callables.warm(feeds.values(), fetches.values())
    except tf.errors.OpError as exc:  # requests will get the same error, as in TF Serving
        logger.warning("signature %r cannot run: %s", key, (exc.message or str(exc)).splitlines()[0])
    return SessionCall(callables, feeds, fetches, np_dtypes)


def _joint_run(sigs: Sequence[Signature]) -> Run:
    """One session call: the examples fed to every signature's input tensor, all their outputs fetched."""
    calls = [sig.run for sig in sigs]
    assert all(isinstance(c, SessionCall) for c in calls), "a session servable's signatures are SessionCalls"
    callables = calls[0].callables  # type: ignore[union-attr]
    feeds = {name for c in calls for name in c.feeds.values()}  # type: ignore[union-attr]
    fetches = {name for c in calls for name in c.fetches.values()}  # type: ignore[union-attr]

    def run(inputs: Mapping[str, np.ndarray]) -> Outputs:
        (examples,) = inputs.values()
        values = callables.evaluate({name: np.asarray(examples, dtype=object) for name in feeds}, fetches)
        return {
            joint_key(i, alias): values[name]
            for i, c in enumerate(calls)
            for alias, name in c.fetches.items()  # type: ignore[union-attr]
        }

    return run
