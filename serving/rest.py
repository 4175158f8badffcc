"""TF Serving's REST API v1 as a Starlette app (served by uvicorn).

Routes (case-insensitive, matched on the raw path as TF Serving does, so a
model name is URL-decoded only after matching and is never a filesystem path):

- ``POST /v1/models/{name}[/versions/{N}|/labels/{L}]:(predict|classify|regress)``
- ``GET  /v1/models/{name}[/versions/{N}|/labels/{L}][/metadata]``
- ``GET  /monitoring/prometheus/metrics``, or the ``prometheus_config`` path of
  ``--monitoring_config_file`` (none if it does not enable Prometheus)
- with ``tfxp serve --vertex``, Vertex AI's ``$AIP_PREDICT_ROUTE`` (POST: the model's
  ``:predict``) and ``$AIP_HEALTH_ROUTE`` (GET: 200 once a version is AVAILABLE, else 503)

Errors are ``{"error": "..."}`` with TF Serving's status codes; a body above
``max_request_bytes`` (before or after gzip decoding) is refused with 413.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import zlib
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, TypeVar
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from serving import rest_requests, rest_responses
from serving.classify_regress import (
    classification_results,
    classify_signature,
    example_inputs,
    regress_signature,
    regression_results,
)
from serving.errors import Code, ServingError, invalid
from serving.metrics import CONTENT_TYPE
from serving.predict import check_predict_inputs
from serving.service import REQUEST_ID_HEADER, ServingCore, metadata_response, request_id, status_response

logger = logging.getLogger(__name__)

_PREDICT = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)", re.I
)
_STATUS = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?", re.I
)
_LARGE_BODY = 256 * 1024  # parse bodies above this off the event loop
_MAX_INT64 = (1 << 63) - 1
_JSON = "application/json"
T = TypeVar("T")

VERSION_HEADER = "X-Model-Version"  # extra to TF Serving: which version answered


def create_app(core: ServingCore) -> Starlette:
    api = _RestApi(core)
    metrics_path = core.options.prometheus_path
    vertex = core.options.vertex

    async def dispatch(request: Request) -> Response:
        path = request.scope["path"]
        if vertex is not None:  # checked first: Vertex AI's default routes start with /v1/ too
            if path == vertex.predict and request.method == "POST":
                return await api.v1(request, route=(vertex.model, None, None, "predict"))
            if path == vertex.health and request.method == "GET":
                return api.health(vertex.model)
        if path[:4].lower() == "/v1/" or path.lower() == "/v1":
            return await api.v1(request)
        if path == metrics_path and request.method == "GET":
            return api.prometheus()
        return _error(404, f"Not found: {request.method} {path} (the API lives under /v1/models/)")

    # One catch-all route: TF Serving matches /v1/ case-insensitively, which Starlette's router does not.
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    return Starlette(routes=[Route("/{path:path}", dispatch, methods=methods)])


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(rest_responses.error_body(message), status_code=status, media_type=_JSON, headers=headers)


class _RestApi:
    def __init__(self, core: ServingCore) -> None:
        self.core = core
        self.timeout_s = core.options.rest_api_timeout_in_ms / 1000

    def prometheus(self) -> Response:
        return Response(self.core.metrics.render(), media_type=CONTENT_TYPE)

    def health(self, name: str) -> Response:
        """Vertex AI's health check: 200 with the model's status once a version is AVAILABLE, else 503."""
        try:
            self.core.resolve(name, None, None)
            _, body = self._describe("status", name, None, None)
        except ServingError as exc:
            return _error(503, exc.message)
        return Response(body, media_type=_JSON)

    async def v1(self, request: Request, route: tuple[str, None, None, str] | None = None) -> Response:
        """A TF Serving /v1/ request; ``route`` gives the match groups of a fixed route instead."""
        started = time.perf_counter()
        raw = request.scope.get("raw_path") or request.scope["path"].encode()
        path = raw.decode("latin-1").split("?", 1)[0]
        query = request.scope.get("query_string", b"")
        if query:  # TF Serving matches its routes against the path and query together
            path = f"{path}?{query.decode('latin-1')}"
        method = request.method
        rid = request_id(request.headers.get(REQUEST_ID_HEADER))
        api, model, version = "unknown", "", None
        status = Code.CANCELLED.name  # until the request completes one way or another
        try:
            if route is not None:
                groups: tuple[str | None, ...] = route
            else:
                match = None
                if method == "POST":
                    match = _PREDICT.fullmatch(path)
                elif method == "GET":
                    match = _STATUS.fullmatch(path)
                if match is None:
                    raise invalid(f"Malformed request: {method} {path}")
                groups = match.groups()
            name, version_text, label, verb = groups
            name = unquote(name or "")
            label = unquote(label) if label else None
            model = self.core.metric_model_name(name)
            requested = _version(version_text)
            # The route matches case-insensitively, the verb does not (http_rest_api_handler.cc).
            if method == "POST":
                if verb not in ("predict", "classify", "regress"):
                    raise invalid(f"Malformed request: {method} {path}")
                api = verb
                version, body = await self._infer(request, api, name, requested, label, rid)
            else:
                api = "metadata" if verb == "metadata" else "status"
                version, body = self._describe(api, name, requested, label)
            headers = {VERSION_HEADER: str(version)} if version is not None else {}
            if method == "POST":
                headers[REQUEST_ID_HEADER] = rid
            status = "OK"
            return Response(body, media_type=_JSON, headers=headers or None)
        except ServingError as exc:
            status = exc.code.name
            headers = {"Connection": "close"} if exc.http_status == 413 else {}
            if method == "POST":
                headers[REQUEST_ID_HEADER] = rid
            return _error(exc.http_status, exc.message, headers or None)
        except Exception as exc:  # noqa: BLE001 - answer 500 and log it; never drop a request silently
            status = Code.INTERNAL.name
            logger.exception("REST %s %s failed", method, path)
            return _error(500, f"internal error: {type(exc).__name__}: {exc}")
        finally:
            self.core.metrics.observe(model, version, api, "REST", status, time.perf_counter() - started)

    def _describe(
        self, api: str, name: str, version: int | None, label: str | None
    ) -> tuple[int | None, bytes]:
        from google.protobuf import json_format

        if not name:
            raise invalid("Missing model name in request.")
        if api == "status":  # a label does not narrow the status, as in TF Serving
            status = status_response(self.core.manager.statuses(name, version))
            return version, json.dumps(
                json_format.MessageToDict(status, including_default_value_fields=True)
            ).encode()
        servable = self.core.resolve(name, version, label)
        response: Any = metadata_response(servable)
        # Field by field, as TF Serving does, so the Any-packed map keeps proto field names.
        opts = {"including_default_value_fields": True, "preserving_proto_field_name": True}
        doc = {
            "model_spec": json_format.MessageToDict(response.model_spec, **opts),
            "metadata": {"signature_def": json_format.MessageToDict(servable.signature_defs, **opts)},
        }
        return servable.version, json.dumps(doc).encode()

    async def _infer(
        self, request: Request, api: str, name: str, version: int | None, label: str | None, rid: str = ""
    ) -> tuple[int, bytes]:
        with self.core.admission("REST"):
            deadline = time.monotonic() + self.timeout_s
            body = await self._read_body(request)
            large = len(body) > _LARGE_BODY
            doc = await self._maybe_off_loop(large, lambda: rest_requests.parse_json_object(body))
            servable = self.core.resolve(name, version, label)
            sig_name = rest_requests.signature_name(doc)
            if api == "predict":
                sig = servable.signature(sig_name)

                def prepare() -> tuple[dict, bool, int | None]:
                    inputs, columnar = rest_requests.predict_inputs(doc, sig.inputs)
                    return inputs, columnar, check_predict_inputs(sig, inputs)

                inputs, columnar, rows = await self._maybe_off_loop(large, prepare)
                future = self.core.submit(servable, sig, inputs, rows, deadline, inline=not large)
                outputs = await self._wait(future, deadline)

                def encode() -> bytes:
                    return rest_responses.predict_response(outputs, columnar)

                out = await self._maybe_off_loop(large, encode)
                self.core.maybe_log(servable, sig, inputs, outputs, request_id=rid)
                return servable.version, out
            sig = (classify_signature if api == "classify" else regress_signature)(servable, sig_name)
            examples = await self._maybe_off_loop(large, lambda: rest_requests.examples_from_json(doc))
            inputs = example_inputs(sig, examples)
            future = self.core.submit(servable, sig, inputs, len(examples), deadline, inline=not large)
            outputs = await self._wait(future, deadline)
            if api == "classify":
                out = rest_responses.classify_response(classification_results(sig, outputs, len(examples)))
            else:
                out = rest_responses.regress_response(regression_results(sig, outputs, len(examples)))
            self.core.maybe_log(servable, sig, {}, outputs, tuple(examples), rid)
            return servable.version, out

    async def _wait(self, future: Future, deadline: float) -> Any:
        if future.done():  # run on this thread (the queue was idle): no hand-off through the loop
            return future.result()
        # A timer that cancels the future, rather than asyncio.wait_for, which costs a Task per request.
        loop = asyncio.get_running_loop()
        waiter = asyncio.wrap_future(future, loop=loop)
        expired = []

        def expire() -> None:
            expired.append(True)
            waiter.cancel()  # also cancels the queued call; a running one finishes unobserved

        timer = loop.call_later(max(deadline - time.monotonic(), 0.0), expire)
        try:
            return await waiter
        except asyncio.CancelledError:
            if not expired:
                raise
            raise ServingError(
                Code.DEADLINE_EXCEEDED,
                f"Deadline exceeded: no result within {self.core.options.rest_api_timeout_in_ms} ms "
                "(--rest_api_timeout_in_ms)",
            ) from None
        finally:
            timer.cancel()

    @staticmethod
    async def _maybe_off_loop(large: bool, fn: Callable[[], T]) -> T:
        if not large:
            return fn()
        loop = asyncio.get_running_loop()
        result: Awaitable[T] = loop.run_in_executor(None, fn)
        return await result

    async def _read_body(self, request: Request) -> bytes:
        limit = self.core.options.max_request_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise self._too_large(f"the request body is {declared} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise self._too_large(f"the request body exceeds {limit} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
        encoding = request.headers.get("content-encoding", "").strip().lower()
        if encoding in ("", "identity"):
            return body
        if encoding == "gzip":
            return self._gunzip(body, limit)
        raise invalid(f"Content-Encoding {encoding!r} is not supported: send the body plain or gzip-encoded")

    def _gunzip(self, body: bytes, limit: int) -> bytes:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            # max_length caps the output, so a small "gzip bomb" cannot expand in memory.
            out = inflater.decompress(body, limit + 1)
        except zlib.error as exc:
            raise invalid(f"Content-Encoding gzip: the body is not valid gzip data ({exc})") from exc
        if len(out) > limit:
            raise self._too_large(f"the gzip-decoded request body exceeds {limit} bytes")
        if not inflater.eof or inflater.unused_data:
            raise invalid("Content-Encoding gzip: the body is truncated or has trailing data")
        return out

    def _too_large(self, what: str) -> ServingError:
        self.core.metrics.rejected.labels("REST", "too_large").inc()
        return ServingError(
            Code.RESOURCE_EXHAUSTED,
            f"{what}; the limit is {self.core.options.max_request_bytes} bytes (--max_request_bytes): "
            "split the request into smaller batches",
            http_status=413,
        )


def _version(text: str | None) -> int | None:
    if not text:
        return None
    value = int(text)
    if value > _MAX_INT64:
        raise invalid(f"Failed to convert version: {text} to numeric.")
    return value
