"""``make bench-serving`` (serving/bench.py): the first request after a swap, with and without warm-up.

No timing is asserted: only that both are measured, side by side, on real swaps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from serving.bench import first_request_after_swap


def test_first_request_after_a_swap_is_measured_with_and_without_warmup(
    pushed_model_dir: Path, taxi_rows: list[dict[str, Any]]
) -> None:
    body = json.dumps({"instances": taxi_rows[:1]}).encode()
    result = first_request_after_swap(pushed_model_dir, body, repeats=1)
    assert set(result) == {"without_warmup_ms", "with_warmup_ms", "runs_ms"}
    assert result["without_warmup_ms"] > 0 and result["with_warmup_ms"] > 0
    assert {k: len(v) for k, v in result["runs_ms"].items()} == {"without_warmup": 1, "with_warmup": 1}
