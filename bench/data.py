"""Bigger data for the scaling runs: the sample resampled with small jitter (never committed)."""

from __future__ import annotations

import csv
import random
import statistics
from pathlib import Path

# Decimal columns move by up to 5% of their standard deviation (and stay within
# the sample's range, so the schema's domains hold); timestamps by up to 10 minutes.
JITTER_STDS = 0.05
TIMESTAMP_JITTER_SECONDS = 600
TIMESTAMP_COLUMN = "trip_start_timestamp"


def _is_decimal(values: list[str]) -> bool:
    present = [v for v in values if v != ""]
    try:
        return bool(present) and any("." in v for v in present) and all(float(v) == float(v) for v in present)
    except ValueError:
        return False


def scaled_csv(source: Path, factor: int, out_dir: Path, seed: int = 0) -> Path:
    """``source`` once as is, plus (factor - 1) × its rows drawn with replacement and jittered.

    Decimal columns move by up to 5% of their standard deviation, clipped to the
    sample's range, and the timestamp by up to 10 minutes, so the copies are new
    rows (in their own hash buckets), not duplicates, within the schema's domains.
    """
    with open(source, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    columns = list(zip(*rows, strict=True))
    decimal = {}
    for i, values in enumerate(columns):
        if _is_decimal(list(values)):
            numbers = [float(v) for v in values if v != ""]
            decimal[i] = (min(numbers), max(numbers), JITTER_STDS * statistics.pstdev(numbers))
    stamp = header.index(TIMESTAMP_COLUMN) if TIMESTAMP_COLUMN in header else None
    stamps = [int(v) for v in columns[stamp] if v != ""] if stamp is not None else [0]
    first, last = min(stamps), max(stamps)
    rng = random.Random(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "data.csv"
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
        for _ in range((factor - 1) * len(rows)):
            row = list(rng.choice(rows))
            for i, (low, high, step) in decimal.items():
                if row[i]:
                    row[i] = f"{min(max(float(row[i]) + rng.uniform(-step, step), low), high):.6g}"
            if stamp is not None and row[stamp]:
                moved = int(row[stamp]) + rng.randint(-TIMESTAMP_JITTER_SECONDS, TIMESTAMP_JITTER_SECONDS)
                row[stamp] = str(min(max(moved, first), last))
            writer.writerow(row)
    return out
