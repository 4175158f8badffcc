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
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import Any

import numpy as np

from serving.config import BatchingOptions
from serving.errors import Code, ServingError
from serving.inference import Servable, Signature

logger = logging.getLogger(__name__)

Outputs = dict[str, np.ndarray]


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
    def __init__(self, threads: int, batching: BatchingOptions | None = None) -> None:
        self._batching = batching
        self._pending: deque[_Task] = deque()
        self._lock = threading.Lock()
        # The wake-up conditions of waiting workers (all on self._lock), most recently idle last.
        self._idle: list[threading.Condition] = []
        self._closed = False
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
    ) -> Future:
        """Queue one signature call; the future resolves to its outputs (or a ServingError)."""
        future: Future = Future()
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
            self._run(batch)

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
        if not live:
            return
        first = live[0]
        try:
            if len(live) == 1:
                first.future.set_result(first.servable.call(first.signature, first.inputs))
                return
            merged = {k: np.concatenate([t.inputs[k] for t in live]) for k in first.inputs}
            outputs = first.servable.call(first.signature, merged)
            total = sum(t.rows for t in live)
            for name, arr in outputs.items():
                if arr.ndim == 0 or arr.shape[0] != total:
                    raise ServingError(
                        Code.INTERNAL,
                        f"batched output {name!r} has shape {list(arr.shape)}, expected {total} rows; "
                        "this signature cannot be batched: run without --enable_batching",
                    )
            start = 0
            for task in live:
                end = start + task.rows
                task.future.set_result({k: v[start:end] for k, v in outputs.items()})
                start = end
        except ServingError as exc:
            for task in live:
                if not task.future.done():
                    task.future.set_exception(exc)
        except Exception as exc:  # noqa: BLE001 - report any model failure to the callers, never drop it
            logger.exception("model call failed for %s", first.servable)
            error = ServingError(Code.INTERNAL, f"model call failed: {type(exc).__name__}: {exc}")
            for task in live:
                if not task.future.done():
                    task.future.set_exception(error)
