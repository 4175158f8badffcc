"""The worker threads that run model calls, with optional server-side batching.

Without batching each request is one call. With batching, a worker takes the
oldest request and merges queued requests for the same version and signature
into it (concatenated on dimension 0) up to ``max_batch_size`` rows, waiting at
most ``batch_timeout_micros`` for more; results are split back per request.
With the default timeout of 0 a free worker takes whatever has queued up while
the others were busy, so batches grow with load and cost nothing when idle.

The queue itself is bounded by admission (ServingCore.admission): at most
``max_queued_requests`` requests are ever queued or running.

A new request wakes the most recently idle worker (LIFO), not the one idle the
longest: at low load one thread keeps serving every call with warm caches and
TensorFlow thread-local state, instead of calls alternating between threads
(measured: a batch-1 call ran ~0.5-0.8 ms slower when round-robined over two
workers than on one).

When the server is idle (batching off, nothing queued, no model call running)
and the call is expected to take at most ``INLINE_MAX_CALL_S`` (the signature's
recent cost per row times the request's rows), ``submit`` runs it on the
caller's own thread (``run_if_idle``) and returns a resolved future, as TF Serving runs a request on the
thread that received it. That saves two thread hand-offs per request at low
load (REST p50 at batch 1 on the taxi model: ~0.2 ms); under load, or for a slow
model, requests go through the workers, so the REST event loop never waits long
on a model call.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import weakref
from collections import deque
from concurrent.futures import Future
from typing import Any

import numpy as np

from serving.config import BatchingOptions
from serving.errors import Code, ServingError
from serving.servable import Servable
from serving.signatures import Signature

logger = logging.getLogger(__name__)

Outputs = dict[str, np.ndarray]

# A call runs on the caller's thread only if it is expected to take at most this long.
INLINE_MAX_CALL_S = 0.005


@dataclasses.dataclass
class _Task:
    servable: Servable
    signature: Signature
    inputs: dict[str, np.ndarray]
    rows: int
    deadline: float
    future: Future
    key: Any  # tasks with equal keys can share a batch; None: never batched


class InferenceQueue:
    def __init__(
        self,
        threads: int,
        batching: BatchingOptions | None = None,
        inline_max_call_s: float = INLINE_MAX_CALL_S,
    ) -> None:
        self._batching = batching
        self._inline_max_call_s = inline_max_call_s
        self._pending: deque[_Task] = deque()
        self._lock = threading.Lock()
        # The wake-up conditions of waiting workers (all on self._lock), most recently idle last.
        self._idle: list[threading.Condition] = []
        self._closed = False
        self._calls = 0  # model calls taken (by a worker or run_if_idle) and not yet finished
        # Recent call time per servable and signature (an average that halves the weight of older calls).
        self._call_s: weakref.WeakKeyDictionary[Servable, dict[str, float]] = weakref.WeakKeyDictionary()
        self._threads = [
            threading.Thread(target=self._work, name=f"inference-{i}", daemon=True) for i in range(threads)
        ]
        for t in self._threads:
            t.start()

    def submit(
        self,
        servable: Servable,
        signature: Signature,
        inputs: dict[str, np.ndarray],
        rows: int | None,
        deadline: float,
        inline: bool = True,
    ) -> Future:
        """Queue one signature call; the future resolves to its outputs (or a ServingError).

        With ``inline`` (the default), an idle queue runs a short call right here
        (run_if_idle) and returns an already-resolved future.
        """
        future: Future = Future()
        if inline:
            try:
                outputs = self.run_if_idle(servable, signature, inputs, rows, deadline)
            except ServingError as exc:
                future.set_exception(exc)
                return future
            if outputs is not None:
                future.set_result(outputs)
                return future
        batchable = self._batching is not None and signature.batchable and rows is not None
        key = (id(servable), signature.name) if batchable else None
        task = _Task(servable, signature, inputs, rows or 0, deadline, future, key)
        with self._lock:
            if self._closed:
                raise ServingError(Code.UNAVAILABLE, "the server is shutting down")
            self._pending.append(task)
            if self._idle:
                self._idle.pop().notify()  # LIFO: the warmest worker (see the module docstring)
        return future

    def run_if_idle(
        self,
        servable: Servable,
        signature: Signature,
        inputs: dict[str, np.ndarray],
        rows: int | None,
        deadline: float,
    ) -> Outputs | None:
        """Run the call on this thread if the queue is idle and the call is known to be short.

        "Short" scales with the request: the signature's recent cost per row times this
        request's rows, so one large request after many small ones still goes to a worker.
        Returns None (having done nothing) otherwise: then submit() it. Raises ServingError.
        """
        if time.monotonic() > deadline:
            raise ServingError(Code.DEADLINE_EXCEEDED, "Deadline exceeded before the model ran")
        with self._lock:
            per_row = self._call_s.get(servable, {}).get(signature.name)
            idle = (
                self._batching is None
                and not self._closed
                and not self._pending
                and self._calls == 0
                and per_row is not None
                and per_row * max(rows or 1, 1) <= self._inline_max_call_s
            )
            if not idle:
                return None
            self._calls += 1
        try:
            outputs = self._call(servable, signature, inputs, rows)
        finally:
            with self._lock:
                self._calls -= 1
        if time.monotonic() > deadline:
            raise ServingError(Code.DEADLINE_EXCEEDED, "Deadline exceeded while the model ran")
        return outputs

    def _call(
        self, servable: Servable, signature: Signature, inputs: dict[str, np.ndarray], rows: int | None
    ) -> Outputs:
        """One model call, timed (per row); any failure becomes a ServingError."""
        started = time.perf_counter()
        try:
            outputs = servable.call(signature, inputs)
        except ServingError:
            raise
        except Exception as exc:  # noqa: BLE001 - report any model failure to the callers, never drop it
            logger.exception("model call failed for %s", servable)
            raise ServingError(Code.INTERNAL, f"model call failed: {type(exc).__name__}: {exc}") from exc
        per_row = (time.perf_counter() - started) / max(rows or 1, 1)
        with self._lock:
            costs = self._call_s.setdefault(servable, {})
            previous = costs.get(signature.name)
            costs[signature.name] = per_row if previous is None else (previous + per_row) / 2
        return outputs

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pending, self._pending = list(self._pending), deque()
            for wake in self._idle:
                wake.notify()
        for task in pending:
            if task.future.set_running_or_notify_cancel():
                task.future.set_exception(ServingError(Code.UNAVAILABLE, "the server is shutting down"))
        for t in self._threads:
            t.join(timeout=30)

    def _work(self) -> None:
        wake = threading.Condition(self._lock)  # this worker's own, so submit() can pick which one wakes
        while True:
            batch = self._next_batch(wake)
            if batch is None:
                return
            try:
                self._run(batch)
            except BaseException as exc:  # noqa: BLE001 - a worker must outlive any batch, and answer it
                logger.exception("inference worker: a batch failed unexpectedly")
                error = ServingError(Code.INTERNAL, f"inference failed: {type(exc).__name__}: {exc}")
                for task in batch:
                    if not task.future.done():
                        task.future.set_exception(error)

    def _wait(self, wake: threading.Condition, timeout: float | None = None) -> None:
        """Wait (holding self._lock) until submit() or close() picks this worker, or the timeout."""
        self._idle.append(wake)
        try:
            wake.wait(timeout)
        finally:
            if wake in self._idle:  # timed out (or woke spuriously) without being picked
                self._idle.remove(wake)

    def _next_batch(self, wake: threading.Condition) -> list[_Task] | None:
        with self._lock:
            while not self._pending:
                if self._closed:
                    return None
                self._wait(wake)
            first = self._pending.popleft()
            self._calls += 1  # until _run has called the model (or found nothing to call)
            batch = [first]
            if first.key is None or self._batching is None:
                return batch
            limit = self._batching.max_batch_size
            rows = first.rows
            wait_until = time.monotonic() + self._batching.batch_timeout_micros / 1e6
            while rows < limit:
                keep: deque[_Task] = deque()
                for task in self._pending:
                    if task.key == first.key and rows + task.rows <= limit:
                        batch.append(task)
                        rows += task.rows
                    else:
                        keep.append(task)
                self._pending = keep
                remaining = wait_until - time.monotonic()
                if rows >= limit or remaining <= 0 or self._closed:
                    break
                self._wait(wake, remaining)
            return batch

    def _run(self, batch: list[_Task]) -> None:
        now = time.monotonic()
        live = []
        for task in batch:
            if not task.future.set_running_or_notify_cancel():
                continue  # the caller gave up (timed out) while it was queued
            if task.deadline <= now:
                task.future.set_exception(
                    ServingError(Code.DEADLINE_EXCEEDED, "Deadline exceeded while the request was queued")
                )
                continue
            live.append(task)
        outputs: Outputs = {}
        error: ServingError | None = None
        try:
            if not live:
                return
            first = live[0]
            inputs = first.inputs
            if len(live) > 1:
                inputs = {k: np.concatenate([t.inputs[k] for t in live]) for k in first.inputs}
            outputs = self._call(first.servable, first.signature, inputs, sum(t.rows for t in live) or None)
        except ServingError as exc:
            error = exc
        except Exception as exc:  # noqa: BLE001 - e.g. inputs that cannot be concatenated; never drop callers
            logger.exception("batched call failed for %s", live[0].servable)
            error = ServingError(Code.INTERNAL, f"batched model call failed: {type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._calls -= 1  # before the results go out, so a caller that got one sees the queue idle
        if error is None:
            try:
                error = _split(outputs, live)
            except Exception as exc:  # noqa: BLE001 - e.g. an output that is not an array
                error = ServingError(Code.INTERNAL, f"cannot split the batch's outputs: {exc}")
        if error is not None:
            for task in live:
                if not task.future.done():
                    task.future.set_exception(error)


def _split(outputs: Outputs, live: list[_Task]) -> ServingError | None:
    """Hand each task of a batch its rows of the outputs (or return why that cannot be done)."""
    if len(live) == 1:
        live[0].future.set_result(outputs)
        return None
    total = sum(t.rows for t in live)
    for name, arr in outputs.items():
        if arr.ndim == 0 or arr.shape[0] != total:
            return ServingError(
                Code.INTERNAL,
                f"batched output {name!r} has shape {list(arr.shape)}, expected {total} rows; "
                "this signature cannot be batched: run without --enable_batching",
            )
    start = 0
    for task in live:
        end = start + task.rows
        task.future.set_result({k: v[start:end] for k, v in outputs.items()})
        start = end
    return None
