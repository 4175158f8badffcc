"""TF Serving's gRPC API: tensorflow.serving.PredictionService and ModelService.

Implemented on the servicer bases that ship in tensorflow-serving-api, so the
stock stubs (``prediction_service_pb2_grpc.PredictionServiceStub``...) work
unchanged. Failures abort with the same canonical code REST maps to HTTP.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any, TypeVar

import grpc
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from serving.classify_regress import (
    classify_signature,
    example_inputs,
    regress_signature,
    serialized_examples,
)
from serving.config import specs_from_proto
from serving.errors import Code, ServingError, invalid
from serving.grpc_codec import (
    fill_classifications,
    fill_model_spec,
    fill_regressions,
    request_tensors,
    typed_tensor_proto,
)
from serving.predict import check_predict_inputs, output_filter
from serving.servable import split_joint
from serving.service import REQUEST_ID_HEADER, ServingCore, metadata_response, request_id, status_response
from serving.signatures import DEFAULT_SIGNATURE

logger = logging.getLogger(__name__)
CLASSIFY_METHOD = "tensorflow/serving/classify"  # InferenceTask.method_name values
REGRESS_METHOD = "tensorflow/serving/regress"
T = TypeVar("T")


class _Base:
    def __init__(self, core: ServingCore) -> None:
        self.core = core

    def _handle(
        self, api: str, spec: Any, context: grpc.ServicerContext, fn: Callable[..., T], admit: bool
    ) -> T:
        started = time.perf_counter()
        model = self.core.metric_model_name(spec.name)
        version_box: list[int | None] = [None]
        status = Code.CANCELLED.name
        try:
            with self.core.admission("GRPC") if admit else contextlib.nullcontext():
                result = fn(version_box)
            status = "OK"
            return result
        except ServingError as exc:
            status = exc.code.name
            context.abort(grpc.StatusCode[exc.code.name], exc.message)
            raise  # unreachable: abort raises
        except Exception as exc:  # noqa: BLE001 - answer INTERNAL and log it; never drop a request silently
            status = Code.INTERNAL.name
            logger.exception("gRPC %s failed", api)
            context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")
            raise
        finally:
            self.core.metrics.observe(
                model, version_box[0], api, "GRPC", status, time.perf_counter() - started
            )

    def _resolve(self, spec: Any, box: list[int | None]) -> Any:
        choice = spec.WhichOneof("version_choice")
        version = spec.version.value if choice == "version" else None
        label = spec.version_label if choice == "version_label" else None
        if not spec.name:
            raise invalid("model_spec.name is empty: name the model to query")
        servable = self.core.resolve(spec.name, version, label)
        box[0] = servable.version
        return servable

    def _run(self, servable: Any, sig: Any, inputs: dict, rows: int | None, deadline: float) -> Any:
        """The model call's outputs (run on this thread when the queue is idle, else on a worker)."""
        future = self.core.submit(servable, sig, inputs, rows, deadline)
        try:
            return future.result(None if deadline == math.inf else max(deadline - time.monotonic(), 0.0))
        except futures.TimeoutError:
            future.cancel()
            raise ServingError(
                Code.DEADLINE_EXCEEDED, "Deadline exceeded: the client's deadline passed"
            ) from None


def _request_id(context: grpc.ServicerContext) -> str:
    """The client's x-request-id metadata, or a new id; sent back as initial metadata."""
    given = dict(context.invocation_metadata() or ()).get(REQUEST_ID_HEADER.lower())
    rid = request_id(given if isinstance(given, str) else None)
    context.send_initial_metadata(((REQUEST_ID_HEADER.lower(), rid),))
    return rid


def _version_choice(spec: Any) -> str:
    """A ModelSpec's version choice, for comparing tasks: "latest", "version N" or "label L"."""
    choice = spec.WhichOneof("version_choice")
    if choice == "version":
        return f"version {spec.version.value}"
    if choice == "version_label":
        return f"label {spec.version_label!r}"
    return "latest"


def _deadline(context: grpc.ServicerContext) -> float:
    """The client's deadline on the time.monotonic() clock (infinite when it set none)."""
    remaining = context.time_remaining()
    return math.inf if remaining is None else time.monotonic() + remaining


class PredictionService(_Base, prediction_service_pb2_grpc.PredictionServiceServicer):
    def Predict(self, request: Any, context: grpc.ServicerContext) -> Any:
        def run(box: list[int | None]) -> Any:
            servable = self._resolve(request.model_spec, box)
            try:
                sig = servable.signature(request.model_spec.signature_name)
            except ServingError as exc:  # FAILED_PRECONDITION, as TF Serving's predict_util.cc
                key = request.model_spec.signature_name or DEFAULT_SIGNATURE
                raise ServingError(
                    Code.FAILED_PRECONDITION, f'Serving signature key "{key}" not found. {exc.message}'
                ) from None
            wanted = output_filter(sig, request.output_filter)
            inputs = request_tensors(request.inputs)
            rows = check_predict_inputs(sig, inputs)
            deadline = _deadline(context)
            outputs = self._run(servable, sig, inputs, rows, deadline)
            if wanted:
                outputs = {k: outputs[k] for k in wanted}
            response = predict_pb2.PredictResponse()
            fill_model_spec(response.model_spec, servable, sig.name)
            for key, value in outputs.items():
                response.outputs[key].CopyFrom(typed_tensor_proto(value))
            self.core.maybe_log(servable, sig, inputs, outputs, request_id=_request_id(context))
            return response

        return self._handle("predict", request.model_spec, context, run, admit=True)

    def _run_examples(
        self, request: Any, context: grpc.ServicerContext, box: list[int | None], pick_signature: Any
    ) -> tuple[Any, Any, list[bytes], Any]:
        """Classify and Regress alike: resolve, pick the signature, run it on the request's examples."""
        servable = self._resolve(request.model_spec, box)
        sig = pick_signature(servable, request.model_spec.signature_name)
        examples = serialized_examples(request.input)
        deadline = _deadline(context)
        outputs = self._run(servable, sig, example_inputs(sig, examples), len(examples), deadline)
        return servable, sig, examples, outputs

    def Classify(self, request: Any, context: grpc.ServicerContext) -> Any:
        def run(box: list[int | None]) -> Any:
            servable, sig, examples, outputs = self._run_examples(request, context, box, classify_signature)
            response = classification_pb2.ClassificationResponse()
            fill_model_spec(response.model_spec, servable, sig.name)
            fill_classifications(response.result, sig, outputs, len(examples))
            self.core.maybe_log(servable, sig, {}, outputs, tuple(examples), _request_id(context))
            return response

        return self._handle("classify", request.model_spec, context, run, admit=True)

    def Regress(self, request: Any, context: grpc.ServicerContext) -> Any:
        def run(box: list[int | None]) -> Any:
            servable, sig, examples, outputs = self._run_examples(request, context, box, regress_signature)
            response = regression_pb2.RegressionResponse()
            fill_model_spec(response.model_spec, servable, sig.name)
            fill_regressions(response.result, sig, outputs, len(examples))
            self.core.maybe_log(servable, sig, {}, outputs, tuple(examples), _request_id(context))
            return response

        return self._handle("regress", request.model_spec, context, run, admit=True)

    def MultiInference(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Several classify/regress signatures of one model on the same examples (multi_inference.cc).

        As in TF Serving, the signatures may read different input tensors: the examples
        are fed to all of them in one model call (Servable.joint_signature).
        """
        tasks = list(request.tasks)
        first = tasks[0].model_spec if tasks else inference_pb2.InferenceTask().model_spec

        def run(box: list[int | None]) -> Any:
            if not tasks:
                raise invalid("MultiInferenceRequest has no tasks: add one per signature to run")
            if any(not t.model_spec.name for t in tasks):
                raise invalid("Found ModelSpec with an empty model name.")
            if len({t.model_spec.name for t in tasks}) > 1:
                raise invalid("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
            choices = {_version_choice(t.model_spec) for t in tasks}
            if len(choices) > 1:
                # TF Serving 2.16 would answer every task from tasks[0]'s version; refuse instead of
                # answering a task from a version it did not ask for.
                raise invalid(
                    "All ModelSpecs in a MultiInferenceRequest must access the same model version: "
                    f"the tasks ask for {', '.join(sorted(choices))}"
                )
            servable = self._resolve(first, box)
            picked: list[Any] = []
            for task in tasks:
                name = task.model_spec.signature_name or DEFAULT_SIGNATURE
                if any(name == sig.name for _, sig in picked):
                    raise invalid(f"Duplicate evaluation of signature: {name}")
                pick = {CLASSIFY_METHOD: classify_signature, REGRESS_METHOD: regress_signature}.get(
                    task.method_name
                )
                if pick is None:
                    raise ServingError(
                        Code.UNIMPLEMENTED, f"Unsupported signature method_name: {task.method_name}"
                    )
                picked.append((task, pick(servable, name)))
            examples = serialized_examples(request.input)
            joint = servable.joint_signature([sig for _, sig in picked])
            inputs = example_inputs(joint, examples)
            outputs = self._run(servable, joint, inputs, len(examples), _deadline(context))
            response = inference_pb2.MultiInferenceResponse()
            for (task, sig), own in zip(picked, split_joint(outputs, len(picked)), strict=True):
                result = response.results.add()
                result.model_spec.CopyFrom(task.model_spec)
                fill_model_spec(result.model_spec, servable, sig.name)
                if task.method_name == CLASSIFY_METHOD:
                    fill_classifications(result.classification_result, sig, own, len(examples))
                else:
                    fill_regressions(result.regression_result, sig, own, len(examples))
            return response

        return self._handle("multi_inference", first, context, run, admit=True)

    def GetModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        def run(box: list[int | None]) -> Any:
            fields = list(request.metadata_field)
            if not fields:
                raise invalid(
                    "GetModelMetadataRequest must specify at least one metadata_field: use 'signature_def'"
                )
            unsupported = [f for f in fields if f != "signature_def"]
            if unsupported:
                raise invalid(f"Metadata field {unsupported[0]} is not supported: use 'signature_def'")
            response: get_model_metadata_pb2.GetModelMetadataResponse = metadata_response(
                self._resolve(request.model_spec, box)
            )  # type: ignore[assignment]
            return response

        return self._handle("metadata", request.model_spec, context, run, admit=False)


class ModelService(_Base, model_service_pb2_grpc.ModelServiceServicer):
    def GetModelStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        def run(box: list[int | None]) -> Any:
            spec = request.model_spec
            if not spec.name:
                raise invalid("model_spec.name is empty: name the model to query")
            # As in TF Serving, only a version narrows the status; a version_label is ignored.
            version = spec.version.value if spec.WhichOneof("version_choice") == "version" else None
            response: get_model_status_pb2.GetModelStatusResponse = status_response(
                self.core.manager.statuses(spec.name, version)
            )  # type: ignore[assignment]
            return response

        return self._handle("status", request.model_spec, context, run, admit=False)

    def HandleReloadConfigRequest(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Apply a new ModelServerConfig. As TF Serving does, a failure is the RPC's status (and
        the response's, which a stock stub never sees once the RPC fails)."""
        try:
            if request.config.WhichOneof("config") != "model_config_list":
                raise ValueError(
                    "ServerModelConfig type not supported by HandleReloadConfigRequest. "
                    "Only ModelConfigList is currently supported"
                )
            specs = specs_from_proto(request.config, "ReloadConfigRequest")
        except ValueError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        problems = self.core.manager.apply_config(specs)
        if problems:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "; ".join(problems))
        return model_management_pb2.ReloadConfigResponse()


def create_grpc_server(core: ServingCore, host: str, port: int) -> tuple[grpc.Server, int]:
    """A started-ready (not started) gRPC server and the port it bound.

    It also listens on ``--grpc_socket_path`` if set. ``--grpc_channel_arguments`` go
    in after this server's own options, so a deployment's value wins, as in TF Serving.
    """
    options = core.options
    limit = options.max_queued_requests
    channel_options: dict[str, int | str] = {
        "grpc.max_receive_message_length": options.max_request_bytes,
        "grpc.max_send_message_length": 256 * 1024 * 1024,
    }
    channel_options.update(options.grpc_channel_arguments)
    server = grpc.server(
        # Enough threads to refuse excess inference calls quickly (admission answers UNAVAILABLE,
        # as REST answers 503) and to keep status/metadata calls flowing under load.
        futures.ThreadPoolExecutor(max_workers=min(limit + 8, 64), thread_name_prefix="grpc"),
        # A hard cap on RPCs held at once, and so on request memory (gRPC answers RESOURCE_EXHAUSTED).
        maximum_concurrent_rpcs=limit + 32,
        options=list(channel_options.items()),
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(core), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(core), server)
    address = f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
    bound = _bind(server, address, "the port is in use or the address is invalid; choose another --port")
    if options.grpc_socket_path:
        # gRPC replaces a stale socket file, but not a regular file, nor a missing directory.
        _bind(
            server,
            f"unix:{options.grpc_socket_path}",
            "its directory must exist and the path must not be a regular file; check --grpc_socket_path",
        )
    return server, bound


def _bind(server: grpc.Server, address: str, hint: str) -> int:
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:  # grpcio raises where older releases returned 0
        bound = 0
    if bound == 0:
        raise OSError(f"cannot bind gRPC to {address}: {hint}")
    return bound
