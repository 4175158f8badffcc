"""A loaded model version (a servable): find one of its signatures, call it, word its failures for the client.

How a signature is evaluated depends on how the version was loaded (a TF2
object graph, serving.object_graph, or a TF1 session over the MetaGraph,
serving.graph_session); each Signature carries its own ``run``. What a client
sees is the same either way: the same lookups, the same checks, the same errors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from serving.errors import ServingError, code_from_tf_error, invalid
from serving.predict import shape_mismatch
from serving.signatures import DEFAULT_SIGNATURE, Outputs, Run, Signature, TensorSpec

logger = logging.getLogger(__name__)

# Builds one Run that feeds the same inputs to several signatures at once (MultiInference).
JointRun = Callable[[Sequence[Signature]], Run]


class Servable:
    """A loaded SavedModel version. Immutable once built; shared by in-flight requests.

    ``runtime`` is what the signatures' runs need alive (the loaded object graph, or
    the session); it is released with the last reference to the servable, so a
    version unloaded mid-request finishes that request first.
    """

    def __init__(
        self,
        model_name: str,
        version: int,
        path: str,
        signature_defs: Any,
        signatures: Mapping[str, Signature],
        joint_run: JointRun,
        runtime: Any,
        kind: str,
    ) -> None:
        self.model_name = model_name
        self.version = version
        self.path = path
        self.signature_defs = signature_defs  # tensorflow.serving.SignatureDefMap
        self.signatures = dict(signatures)
        self.kind = kind  # "object graph" or "session", for logs
        self._joint_run = joint_run
        self._runtime = runtime

    def signature(self, name: str) -> Signature:
        key = name or DEFAULT_SIGNATURE
        sig = self.signatures.get(key)
        if sig is None or sig.run is None:
            callable_names = sorted(k for k, s in self.signatures.items() if s.run is not None)
            raise invalid(
                f'Serving signature name: "{key}" not found in signature def of model {self.model_name!r} '
                f"version {self.version}; its signatures are: {', '.join(callable_names) or 'none'}"
            )
        return sig

    def call(self, sig: Signature, inputs: Mapping[str, np.ndarray]) -> Outputs:
        """Run one signature on already-checked inputs."""
        import tensorflow as tf

        assert sig.run is not None, f"signature {sig.name!r} cannot be called"
        try:
            return sig.run(inputs)
        except tf.errors.OpError as exc:
            raise ServingError(
                code_from_tf_error(exc.error_code), _model_error(sig, inputs, exc.message)
            ) from exc
        except (TypeError, ValueError) as exc:
            raise invalid(_model_error(sig, inputs, f"signature {sig.name!r}: {exc}")) from exc

    def joint_signature(self, sigs: Sequence[Signature]) -> Signature:
        """One signature that feeds its single "inputs" input to every one of ``sigs``, in one call.

        Its outputs are keyed ``joint_key(i, alias)`` for ``sigs[i]``. This is TF Serving's
        MultiInference (multi_inference.cc): the request's examples go to the set of the
        signatures' input tensors, whichever they are, in one computation.
        """
        examples = TensorSpec("inputs", "string", None)
        outputs = {
            joint_key(i, alias): TensorSpec(joint_key(i, alias), spec.dtype, None)
            for i, sig in enumerate(sigs)
            for alias, spec in sig.outputs.items()
        }
        name = "+".join(sig.name for sig in sigs)
        return Signature(name, "", {"inputs": examples}, outputs, self._joint_run(sigs))

    def __repr__(self) -> str:
        return f"Servable({self.model_name!r}, {self.version}, {self.kind})"


def joint_key(index: int, alias: str) -> str:
    """The output key of ``sigs[index]``'s output ``alias`` in a joint signature."""
    return f"{index}/{alias}"


def split_joint(outputs: Mapping[str, np.ndarray], count: int) -> list[Outputs]:
    """A joint signature's outputs, back as one dict per signature."""
    parts: list[Outputs] = [{} for _ in range(count)]
    for key, value in outputs.items():
        index, alias = key.split("/", 1)
        parts[int(index)][alias] = value
    return parts


def tf_message(text: str) -> str:
    """The line of a TensorFlow error that says what went wrong, without its preamble and node trace."""
    lines = [line.strip() for line in (text or "").strip().splitlines()]
    skip = ("Graph execution error", "Detected at node", "<stack traces", "File ", "[[")
    meaningful = [line for line in lines if line and not line.startswith(skip)]
    if meaningful:
        return meaningful[0]
    return lines[0] if lines else "model call failed"


def _model_error(sig: Signature, inputs: Mapping[str, np.ndarray], message: str) -> str:
    """A failed call's message, led by the input whose shape does not fit the signature, if any."""
    hint = shape_mismatch(sig, inputs)
    return f"{hint}; the model failed with: {tf_message(message)}" if hint else tf_message(message)
