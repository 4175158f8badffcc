"""The inference queue: idle calls run on the caller's thread, busy or slow ones go to the workers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from serving.batching import INLINE_MAX_CALL_S, InferenceQueue
from serving.config import BatchingOptions
from serving.errors import Code, ServingError
from serving.loading import load_servable
from serving.servable import Servable

ROWS = {"x": np.array([1.5, -2.0], np.float32), "n": np.array([3, 4]), "tag": np.array([b"a", b"b"], object)}


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path) -> Servable:
    return load_servable("tiny", 1, tiny_model_dir)


@pytest.fixture
def queue() -> Iterator[InferenceQueue]:
    q = InferenceQueue(2)
    yield q
    q.close()


@pytest.fixture
def lenient_queue() -> Iterator[InferenceQueue]:
    """Runs calls of up to 100 ms inline: the "sleep" signature costs a few ms even when it does not sleep."""
    q = InferenceQueue(2, inline_max_call_s=0.1)
    yield q
    q.close()


def sleep_inputs(micros: int) -> dict[str, np.ndarray]:
    return {"micros": np.array(micros, np.int64)}


def learn(
    queue: InferenceQueue, tiny: Servable, name: str, inputs: dict[str, np.ndarray], rows: int | None = None
) -> dict:
    """Call through the workers until the queue knows the call is short; return its inline result."""
    sig = tiny.signature(name)
    for _ in range(20):  # the first calls on a fresh thread are slow; the average follows the last few
        queue.submit(tiny, sig, inputs, rows, time.monotonic() + 30, inline=False).result(30)
        outputs = queue.run_if_idle(tiny, sig, inputs, rows, time.monotonic() + 30)
        if outputs is not None:
            return outputs
    raise AssertionError(f"signature {name!r} never ran on the caller's thread")


def wait_for_calls(queue: InferenceQueue, count: int) -> None:
    """Until `count` model calls are running (bounded: 10 s)."""
    deadline = time.monotonic() + 10
    while queue._calls != count:
        assert time.monotonic() < deadline, f"never saw {count} running call(s)"
        time.sleep(0.005)


def test_idle_call_runs_on_the_callers_thread_once_known_short(tiny: Servable, queue: InferenceQueue) -> None:
    # Unknown cost: the first call goes to a worker.
    assert queue.run_if_idle(tiny, tiny.signature(""), ROWS, 2, time.monotonic() + 30) is None
    inline = learn(queue, tiny, "", ROWS, 2)
    assert inline["doubled"].tolist() == [3.0, -4.0] and inline["shout"].tolist() == [b"A", b"B"]
    # submit() takes the same path: the future it returns is already resolved. On a
    # loaded machine one inline call can itself take over INLINE_MAX_CALL_S and send
    # the next to a worker, so the average gets a few calls to settle (as in learn()).
    for _ in range(20):
        future = queue.submit(tiny, tiny.signature(""), ROWS, 2, time.monotonic() + 30)
        if future.done():
            break
        future.result(30)
    assert future.done() and future.result()["doubled"].tolist() == [3.0, -4.0]


def test_a_busy_worker_sends_calls_to_the_queue(tiny: Servable, lenient_queue: InferenceQueue) -> None:
    queue = lenient_queue
    sig, sleep = tiny.signature(""), tiny.signature("sleep")
    far = time.monotonic() + 30
    learn(queue, tiny, "", ROWS, 2)
    busy = queue.submit(tiny, sleep, sleep_inputs(400_000), None, far, inline=False)
    wait_for_calls(queue, 1)  # a worker has taken it
    assert queue.run_if_idle(tiny, sig, ROWS, 2, far) is None
    assert busy.result(30)["slept"].tolist() == 400_000
    assert queue.run_if_idle(tiny, sig, ROWS, 2, far) is not None


def test_a_large_request_after_small_ones_goes_to_a_worker(tiny: Servable, queue: InferenceQueue) -> None:
    learn(queue, tiny, "", ROWS, 2)
    # The cost is kept per row: 200,000 rows at the small requests' rate would block the caller too long.
    many = {k: np.repeat(v, 100_000) for k, v in ROWS.items()}
    assert queue.run_if_idle(tiny, tiny.signature(""), many, 200_000, time.monotonic() + 30) is None


def test_a_slow_signature_never_runs_on_the_callers_thread(tiny: Servable, queue: InferenceQueue) -> None:
    sleep = tiny.signature("sleep")
    far = time.monotonic() + 30
    slow = int(4 * INLINE_MAX_CALL_S * 1e6)  # 20 ms
    for _ in range(3):
        queue.submit(tiny, sleep, sleep_inputs(slow), None, far, inline=False).result(30)
        assert queue.run_if_idle(tiny, sleep, sleep_inputs(slow), None, far) is None


def test_batching_always_goes_through_the_queue(tiny: Servable) -> None:
    queue = InferenceQueue(1, BatchingOptions())
    try:
        sig = tiny.signature("")
        for _ in range(5):
            queue.submit(tiny, sig, ROWS, 2, time.monotonic() + 30).result(30)
            assert queue.run_if_idle(tiny, sig, ROWS, 2, time.monotonic() + 30) is None
    finally:
        queue.close()


def test_an_inline_call_past_its_deadline_is_deadline_exceeded(
    tiny: Servable, lenient_queue: InferenceQueue
) -> None:
    queue = lenient_queue
    learn(queue, tiny, "sleep", sleep_inputs(0))
    with pytest.raises(ServingError) as info:
        queue.run_if_idle(tiny, tiny.signature("sleep"), sleep_inputs(3_000), None, time.monotonic() + 0.001)
    assert info.value.code == Code.DEADLINE_EXCEEDED and "Deadline exceeded" in info.value.message


def test_one_inline_call_at_a_time(tiny: Servable, lenient_queue: InferenceQueue) -> None:
    queue = lenient_queue
    sleep = tiny.signature("sleep")
    learn(queue, tiny, "sleep", sleep_inputs(0))
    far = time.monotonic() + 30
    started = threading.Event()
    results: list[dict | None] = []

    def inline() -> None:
        started.set()
        results.append(queue.run_if_idle(tiny, sleep, sleep_inputs(300_000), None, far))

    t = threading.Thread(target=inline)
    t.start()
    started.wait(10)
    wait_for_calls(queue, 1)
    # While that call runs on its caller's thread, another caller is sent to the workers.
    assert queue.run_if_idle(tiny, sleep, sleep_inputs(0), None, far) is None
    t.join(30)
    assert results[0] is not None and results[0]["slept"].tolist() == 300_000
