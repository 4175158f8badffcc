"""What REST and gRPC share: admission, model lookup, the inference queue, metrics and request logs.

Both front ends go through the same ServingCore, so they answer with the same
versions, limits and errors.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import Future

import numpy as np

from serving.batching import InferenceQueue
from serving.config import ServerOptions
from serving.errors import Code, ServingError
from serving.metrics import Metrics
from serving.models import ModelManager
from serving.request_log import LogRecord, RequestLogger
from serving.servable import Servable
from serving.signatures import Signature

logger = logging.getLogger(__name__)


class ServingCore:
    def __init__(self, options: ServerOptions, manager: ModelManager, metrics: Metrics) -> None:
        self.options = options
        self.manager = manager
        self.metrics = metrics
        self.queue = InferenceQueue(
            options.worker_threads, options.batching if options.enable_batching else None
        )
        self.request_log: RequestLogger | None = None
        if options.request_log.enabled:
            self.request_log = RequestLogger(options.request_log, on_drop=metrics.request_log_dropped.inc)
        self._admitted = 0
        self._lock = threading.Lock()

    def close(self) -> None:
        self.queue.close()
        if self.request_log is not None:
            self.request_log.close()

    @contextlib.contextmanager
    def admission(self, entrypoint: str) -> Iterator[None]:
        """Admit one inference request, or refuse it (UNAVAILABLE) when the server is full."""
        limit = self.options.max_queued_requests
        with self._lock:
            if self._admitted >= limit:
                refused = True
            else:
                refused = False
                self._admitted += 1
        if refused:
            self.metrics.rejected.labels(entrypoint, "overloaded").inc()
            raise ServingError(
                Code.UNAVAILABLE,
                f"server overloaded: {limit} requests are already queued or running "
                "(--max_queued_requests); retry with backoff",
            )
        try:
            yield
        finally:
            with self._lock:
                self._admitted -= 1

    def resolve(self, name: str, version: int | None, label: str | None) -> Servable:
        return self.manager.resolve(name, version, label)

    def submit(
        self,
        servable: Servable,
        sig: Signature,
        inputs: dict[str, np.ndarray],
        rows: int | None,
        deadline: float,
        inline: bool = True,
    ) -> Future:
        return self.queue.submit(servable, sig, inputs, rows, deadline, inline)

    def metric_model_name(self, name: str) -> str:
        """Label value for metrics: only served names, so arbitrary URLs cannot blow up cardinality."""
        return name if self.manager.has_model(name) else ""

    def maybe_log(
        self,
        servable: Servable,
        sig: Signature,
        inputs: Mapping[str, np.ndarray],
        outputs: Mapping[str, np.ndarray],
        examples: tuple[bytes, ...] = (),
        request_id: str = "",
    ) -> None:
        if self.request_log is None or not self.request_log.sample():
            return
        self.request_log.log(
            LogRecord(
                servable.model_name, servable.version, sig.name, time.time(), inputs, outputs, examples, request_id
            )
        )


REQUEST_ID_HEADER = "X-Request-Id"  # REST header; gRPC metadata key x-request-id
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


def request_id(given: str | None) -> str:
    """The client's request id if it is a sane token, else a new one (returned to the client either way)."""
    return given if given and _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


# ---------------------------------------------------------------------------
# Status and metadata, as the TF Serving protos (gRPC sends them; REST writes them as JSON).


def status_response(statuses: list) -> object:
    """A GetModelStatusResponse for ModelManager.statuses(...)."""
    from tensorflow_serving.apis import get_model_status_pb2

    response = get_model_status_pb2.GetModelStatusResponse()
    for st in statuses:
        entry = response.model_version_status.add()
        entry.version = st.version
        entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(st.state)
        entry.status.SetInParent()
        if st.error_code is not None:
            entry.status.error_code = st.error_code.value
            entry.status.error_message = st.error_message
    return response


def metadata_response(servable: Servable) -> object:
    """A GetModelMetadataResponse with the ``signature_def`` field, as TF Serving returns."""
    from tensorflow_serving.apis import get_model_metadata_pb2

    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = servable.model_name
    response.model_spec.version.value = servable.version
    response.metadata["signature_def"].Pack(servable.signature_defs)
    return response
