"""One loaded model version (a servable): its signatures, and predict/classify/regress on it.

The checks and messages follow TF Serving's predict_util / classifier /
regressor, with the offending input named and the fix said.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from serving.codec import TensorSpec
from serving.errors import Code, ServingError, code_from_tf_error, invalid

logger = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000  # TF Serving's limit


class LoadError(Exception):
    """A version that cannot be served; ``code`` is reported in its status."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclasses.dataclass(frozen=True)
class Signature:
    name: str
    method_name: str
    inputs: Mapping[str, TensorSpec]
    outputs: Mapping[str, TensorSpec]
    fn: Any  # a ConcreteFunction; None for entries that cannot be called (__saved_model_init_op)
    tf_dtypes: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # input key -> tf.DType
    flat_inputs: tuple[str, ...] | None = None  # see _flat_inputs

    @property
    def batchable(self) -> bool:
        """Whether requests can be concatenated along dimension 0 and split back."""
        specs = list(self.inputs.values()) + list(self.outputs.values())
        return bool(self.inputs) and all(
            s.shape is not None and len(s.shape) >= 1 and s.shape[0] == -1 for s in specs
        )


class Servable:
    """A loaded SavedModel version. Immutable once built; shared by in-flight requests."""

    def __init__(self, model_name: str, version: int, path: Path, signature_defs: Any, loaded: Any) -> None:
        self.model_name = model_name
        self.version = version
        self.path = path
        self.signature_defs = signature_defs  # tensorflow.serving.SignatureDefMap
        self._loaded = loaded  # keeps the functions' captured resources alive
        from tensorflow.python.framework import dtypes

        fns = getattr(loaded, "signatures", {})
        self.signatures = {
            key: Signature(
                key,
                sd.method_name,
                _specs(sd.inputs),
                _specs(sd.outputs),
                fns[key] if key in fns else None,
                # DType objects, not names: converting by name costs ~30 us per input and call.
                {k: dtypes.as_dtype(info.dtype) for k, info in sd.inputs.items() if info.dtype},
                _flat_inputs(fns.get(key), sd.inputs),
            )
            for key, sd in signature_defs.signature_def.items()
        }

    def signature(self, name: str) -> Signature:
        key = name or DEFAULT_SIGNATURE
        sig = self.signatures.get(key)
        if sig is None or sig.fn is None:
            callable_names = sorted(k for k, s in self.signatures.items() if s.fn is not None)
            raise invalid(
                f'Serving signature name: "{key}" not found in signature def of model {self.model_name!r} '
                f"version {self.version}; its signatures are: {', '.join(callable_names) or 'none'}"
            )
        return sig

    def call(self, sig: Signature, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one signature on already-checked inputs."""
        import tensorflow as tf

        try:
            tensors = {k: tf.constant(v, dtype=sig.tf_dtypes[k]) for k, v in inputs.items()}
            if sig.flat_inputs is not None:
                result = sig.fn._call_flat([tensors[k] for k in sig.flat_inputs], sig.fn.captured_inputs)
            else:
                result = sig.fn(**tensors)
        except tf.errors.OpError as exc:
            raise ServingError(
                code_from_tf_error(exc.error_code), _model_error(sig, inputs, exc.message)
            ) from exc
        except (TypeError, ValueError) as exc:
            raise invalid(_model_error(sig, inputs, f"signature {sig.name!r}: {exc}")) from exc
        return {k: np.asarray(v.numpy()) for k, v in result.items()}

    def __repr__(self) -> str:
        return f"Servable({self.model_name!r}, {self.version})"


def _flat_inputs(fn: Any, inputs: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The order of a signature function's flat inputs, when it can be called by that order.

    ``fn(**tensors)`` re-checks and re-binds every argument against the function's
    structured signature on each call: about 0.2 ms of Python per call for the taxi
    model, a third of the call. check_predict_inputs has already checked names and
    dtypes against the SignatureDef (shapes are the model's business, as in TF Serving
    and in TF's own fallback when the structured check fails), so Servable.call goes
    straight to ``_call_flat``, in the ``_arg_keywords`` order that TensorFlow's own
    flat-signature path (ConcreteFunction._call_with_flat_signature, TF 2.16) uses.
    None, and the public call, for any function that does not fit that pattern.
    """
    keywords = getattr(fn, "_arg_keywords", None)
    if (
        keywords is None
        or not callable(getattr(fn, "_call_flat", None))
        or sorted(keywords) != sorted(inputs)
        or len(fn.inputs) != len(keywords) + len(fn.captured_inputs)
        or any(t.dtype.as_datatype_enum != inputs[k].dtype for t, k in zip(fn.inputs, keywords))
    ):
        return None
    return tuple(keywords)


def _tf_message(text: str) -> str:
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
    return f"{hint}; the model failed with: {_tf_message(message)}" if hint else _tf_message(message)


def _specs(infos: Mapping[str, Any]) -> dict[str, TensorSpec]:
    from tensorflow.python.framework import dtypes

    out = {}
    for key, info in infos.items():
        dtype = dtypes.as_dtype(info.dtype).name if info.dtype else "invalid"
        shape = None if info.tensor_shape.unknown_rank else tuple(d.size for d in info.tensor_shape.dim)
        out[key] = TensorSpec(key, dtype, shape)
    return out


# ---------------------------------------------------------------------------
# Loading


def load_servable(model_name: str, version: int, path: Path) -> Servable:
    """Load one version directory; raises LoadError saying what is wrong with it."""
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow_serving.apis import get_model_metadata_pb2

    pb, pbtxt = path / "saved_model.pb", path / "saved_model.pbtxt"
    if not pb.is_file() and not pbtxt.is_file():
        raise LoadError(
            Code.NOT_FOUND,
            f"no saved_model.pb in {path}: the version is incomplete (still being copied?). "
            "Push versions atomically: write to a hidden temporary directory, then rename it.",
        )
    from google.protobuf import message, text_format

    saved_model = saved_model_pb2.SavedModel()
    try:
        if pb.is_file():
            saved_model.ParseFromString(pb.read_bytes())
        else:
            text_format.Parse(pbtxt.read_text(), saved_model)
    except (message.DecodeError, text_format.ParseError, OSError) as exc:
        raise LoadError(Code.DATA_LOSS, f"{pb if pb.is_file() else pbtxt} is corrupt: {exc}") from exc
    graphs = [mg for mg in saved_model.meta_graphs if "serve" in mg.meta_info_def.tags]
    if not graphs:
        raise LoadError(Code.NOT_FOUND, f"{path} has no MetaGraph tagged 'serve'")
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    for key, sd in graphs[0].signature_def.items():
        signature_defs.signature_def[key].CopyFrom(sd)
    try:
        loaded = tf.saved_model.load(str(path), tags=["serve"])
    except Exception as exc:  # noqa: BLE001 - TF raises many types on a corrupt model (IndexError on a
        # truncated variables file); all mean "do not serve this version", and the caller reports it.
        message = exc.message if isinstance(exc, tf.errors.OpError) else f"{type(exc).__name__}: {exc}"
        raise LoadError(Code.DATA_LOSS, f"cannot load SavedModel {path}: {_tf_message(message)}") from exc
    return Servable(model_name, version, path, signature_defs, loaded)


def warm_up(servable: Servable) -> int:
    """Replay ``assets.extra/tf_serving_warmup_requests`` (TFRecord of PredictionLog)."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = servable.path / WARMUP_FILE
    if not path.is_file():
        return 0
    count = 0
    try:
        for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
            count += 1
            if count > MAX_WARMUP_RECORDS:
                raise LoadError(
                    Code.INVALID_ARGUMENT, f"{path}: more than {MAX_WARMUP_RECORDS} warmup records"
                )
            log = prediction_log_pb2.PredictionLog.FromString(record)
            _replay(servable, log)
    except tf.errors.OpError as exc:
        raise LoadError(
            Code.DATA_LOSS, f"{path}: unreadable warmup file: {_tf_message(exc.message)}"
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


# ---------------------------------------------------------------------------
# Predict


def check_predict_inputs(sig: Signature, inputs: Mapping[str, np.ndarray]) -> int | None:
    """Check names and dtypes against the signature; return the batch size if the request can be batched.

    Shapes are left to the model, as TF Serving does: its documented half_plus_two
    example feeds ``{"instances": [1.0, 2.0, 5.0]}`` (shape [3]) to an input the
    SignatureDef declares [-1, 1]. A request whose shapes do not fit the SignatureDef
    is never merged into a batch (None), and if the model rejects it, the error
    names the input (shape_mismatch).
    """
    missing = sorted(set(sig.inputs) - set(inputs))
    extra = sorted(set(inputs) - set(sig.inputs))
    if missing or extra:
        raise invalid(
            f"signature {sig.name!r} takes inputs {', '.join(sorted(sig.inputs))};"
            + (f" missing: {', '.join(missing)}" if missing else "")
            + (f" unexpected: {', '.join(extra)}" if extra else "")
        )
    for key, arr in inputs.items():
        spec = sig.inputs[key]
        if not _dtype_ok(arr, spec):
            raise invalid(
                f"input {key!r}: got dtype {_dtype_name(arr)}, the signature expects {spec.describe()}"
            )
    if shape_mismatch(sig, inputs):
        return None
    batch = {arr.shape[0] for arr in inputs.values() if arr.ndim}
    return batch.pop() if len(batch) == 1 else None


def shape_mismatch(sig: Signature, inputs: Mapping[str, np.ndarray]) -> str:
    """How the inputs' shapes differ from the SignatureDef's ("" if they fit)."""
    for key, arr in inputs.items():
        spec = sig.inputs.get(key)
        if spec is None or spec.shape is None:
            continue
        if arr.ndim != len(spec.shape) or any(
            d not in (-1, n) for d, n in zip(spec.shape, arr.shape, strict=True)
        ):
            return f"input {key!r}: got shape {list(arr.shape)}, the signature expects {spec.describe()}" + (
                " (row format: one scalar per instance)" if len(spec.shape) == 1 else ""
            )
    sizes = sorted({arr.shape[0] for arr in inputs.values() if arr.ndim})
    if sig.batchable and len(sizes) > 1:
        return f"inputs of signature {sig.name!r} have different batch sizes {sizes}"
    return ""


def _dtype_ok(arr: np.ndarray, spec: TensorSpec) -> bool:
    if spec.dtype == "string":
        return arr.dtype.kind in "OSU"
    if spec.dtype == "bfloat16":
        return arr.dtype.kind == "f"
    return arr.dtype == np.dtype(spec.np_dtype)


def _dtype_name(arr: np.ndarray) -> str:
    return "string" if arr.dtype.kind in "OSU" else str(arr.dtype)


def output_filter(sig: Signature, wanted: Iterable[str]) -> list[str]:
    """The outputs a Predict request asks for ([] for all), checked as TF Serving's predict_util does."""
    names: list[str] = []
    for alias in wanted:
        if alias not in sig.outputs:
            raise invalid(
                f"output tensor alias not found in signature: {alias} "
                f"Outputs expected to be in the set {{{','.join(sorted(sig.outputs))}}}."
            )
        if alias in names:
            raise invalid(f"duplicate output tensor alias: {alias}")
        names.append(alias)
    return names


# ---------------------------------------------------------------------------
# Classify and regress


def _classify_problem(sig: Signature) -> str:
    """Why TF Serving would refuse to classify with this signature ("" if it would not)."""
    if len(sig.inputs) != 1:
        return "Expected one input Tensor."
    if len(sig.outputs) not in (1, 2):
        return f"Expected one or two output Tensors, found {len(sig.outputs)}"
    if "inputs" not in sig.inputs:
        return f"No classification inputs found in SignatureDef: the input is {next(iter(sig.inputs))!r}"
    if "classes" not in sig.outputs and "scores" not in sig.outputs:
        return 'Expected classification signature outputs to contain at least one of "classes" or "scores"'
    return _examples_input_problem(sig)


def _regress_problem(sig: Signature) -> str:
    """Why TF Serving would refuse to regress with this signature ("" if it would not)."""
    if len(sig.inputs) != 1:
        return "Expected one input Tensor."
    if len(sig.outputs) != 1:
        return "Expected one output Tensor."
    if "inputs" not in sig.inputs:
        return f"No regression inputs found in SignatureDef: the input is {next(iter(sig.inputs))!r}"
    if "outputs" not in sig.outputs:
        return f"No regression outputs found in SignatureDef: the output is {next(iter(sig.outputs))!r}"
    return _examples_input_problem(sig)


def _examples_input_problem(sig: Signature) -> str:
    if sig.inputs["inputs"].dtype != "string":
        return "the 'inputs' input must be a string tensor of serialized tf.Examples"
    return ""


def _example_signature(servable: Servable, name: str, api: str, problem_of: Any) -> Signature:
    """The signature to classify or regress with, by TF Serving 2.16's rules.

    TF Serving runs with --enable_signature_method_name_check=false by default, so a
    signature qualifies by its inputs and outputs (a TF2 model's signatures all say
    "predict"): one input named "inputs" that takes serialized tf.Examples, and
    "classes"/"scores" outputs (classify) or one "outputs" output (regress).
    """
    sig = servable.signature(name)
    problem = problem_of(sig)
    if problem:
        supporting = sorted(
            k for k, s in servable.signatures.items() if s.fn is not None and not problem_of(s)
        )
        raise invalid(
            f"signature {sig.name!r} of model {servable.model_name!r} does not support {api}: {problem} "
            + (
                f"Signatures that support {api}: {', '.join(supporting)}."
                if supporting
                else f"This model has no {api} signature; use :predict."
            )
        )
    return sig


def classify_signature(servable: Servable, name: str) -> Signature:
    return _example_signature(servable, name, "classify", _classify_problem)


def regress_signature(servable: Servable, name: str) -> Signature:
    return _example_signature(servable, name, "regress", _regress_problem)


def serialized_examples(input_proto: Any) -> list[bytes]:
    """A tensorflow.serving.Input as serialized tf.Examples (context merged in)."""
    kind = input_proto.WhichOneof("kind")
    if kind == "example_list":
        return [e.SerializeToString() for e in input_proto.example_list.examples]
    if kind == "example_list_with_context":
        ctx = input_proto.example_list_with_context.context.SerializeToString()
        return [ctx + e.SerializeToString() for e in input_proto.example_list_with_context.examples]
    raise invalid("Input is empty: set example_list or example_list_with_context")


def example_inputs(sig: Signature, examples: list[bytes]) -> dict[str, np.ndarray]:
    if not examples:
        raise invalid("no examples to score: send at least one")
    arr = np.empty(len(examples), dtype=np.object_)
    arr[:] = examples
    return {next(iter(sig.inputs)): arr}


def classification_results(
    sig: Signature, outputs: Mapping[str, np.ndarray], num_examples: int
) -> list[list[tuple[bytes, float]]]:
    """Per example: (label, score) pairs, checked as TF Serving's PostProcessClassificationResult."""
    classes, scores = outputs.get("classes"), outputs.get("scores")
    for name, arr, dtype_ok, dtype in (
        ("classes", classes, classes is not None and classes.dtype.kind in "OSU", "DT_STRING"),
        ("scores", scores, scores is not None and scores.dtype == np.float32, "DT_FLOAT"),
    ):
        if arr is None:
            continue
        if arr.ndim != 2:
            raise invalid(
                f"Expected Tensor shape: [batch_size num_classes] but got {list(arr.shape)} ({name})"
            )
        if not dtype_ok:
            raise invalid(f"Expected {name} Tensor of {dtype}. Got: {arr.dtype}")
        if arr.shape[0] != num_examples:
            raise invalid(f"Expected {name} output batch size of {num_examples}. Got: {arr.shape[0]}")
    if classes is not None and scores is not None and classes.shape != scores.shape:
        raise invalid(
            "Tensors class and score should match in dim_size(1). "
            f"Got {classes.shape[1]} vs. {scores.shape[1]}"
        )
    ref = scores if scores is not None else classes
    assert ref is not None
    return [
        [
            (
                classes[i, j] if classes is not None else b"",
                float(scores[i, j]) if scores is not None else 0.0,
            )
            for j in range(ref.shape[1])
        ]
        for i in range(ref.shape[0])
    ]


def regression_results(sig: Signature, outputs: Mapping[str, np.ndarray], num_examples: int) -> list[float]:
    """One value per example, checked as TF Serving's PostProcessRegressionResult."""
    values = outputs["outputs"]
    if values.dtype != np.float32:
        raise invalid(f"Expected output Tensor of DT_FLOAT. Got: {values.dtype}")
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise invalid(
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] "
            f"but got {list(values.shape)}"
        )
    if values.shape[0] != num_examples:
        raise invalid(
            f"Input batch size did not match output batch size: {num_examples} vs. {values.shape[0]}"
        )
    return [float(v) for v in values]
