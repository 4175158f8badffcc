"""Bigger data for the scaling runs: the sample resampled with small jitter (never committed)."""

from __future__ import annotations

import csv
import random
from pathlib import Path

# Relative jitter of decimal columns; timestamps move by up to 10 minutes.
RELATIVE_JITTER = 0.01
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

    Decimal columns move by a relative 1% and the timestamp by up to 10 minutes,
    so the copies are new rows (in their own hash buckets), not duplicates.
    """
    with open(source, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    columns = list(zip(*rows))
    decimal = {i for i, values in enumerate(columns) if _is_decimal(list(values))}
    stamp = header.index(TIMESTAMP_COLUMN) if TIMESTAMP_COLUMN in header else None
    rng = random.Random(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "data.csv"
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
        for _ in range((factor - 1) * len(rows)):
            row = list(rng.choice(rows))
            for i in decimal:
                if row[i]:
                    row[i] = f"{float(row[i]) * (1 + rng.uniform(-RELATIVE_JITTER, RELATIVE_JITTER)):.6g}"
            if stamp is not None and row[stamp]:
                row[stamp] = str(int(row[stamp]) + rng.randint(-TIMESTAMP_JITTER_SECONDS, TIMESTAMP_JITTER_SECONDS))
            writer.writerow(row)
    return out
