"""Cut a CSV into span directories by time, for ExampleGen's ``{SPAN}`` input.

Rows are copied as text, byte for byte apart from line endings: no value is
re-formatted. Spans are numbered 1, 2, ... in time order; ``spans.json`` in the
output directory maps each number to its period.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import json
from pathlib import Path

from pipeline.data_check import CSV_PATTERN, DataError, check_csv_dir

PERIODS = ("year", "quarter", "month")
SPAN_DIR = "span-{SPAN}"
SPAN_PATTERN = f"{SPAN_DIR}/*.csv"
MANIFEST = "spans.json"


@dataclasses.dataclass(frozen=True)
class Span:
    number: int
    period: str
    rows: int
    path: Path


def _period(seconds: int, by: str) -> str:
    t = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    if by == "year":
        return f"{t.year}"
    if by == "quarter":
        return f"{t.year}-Q{(t.month - 1) // 3 + 1}"
    return f"{t.year}-{t.month:02d}"


def cut_spans(source: Path, out: Path, by: str = "year", column: str = "trip_start_timestamp") -> list[Span]:
    """Split ``source`` (a CSV file or a directory of them) into ``out/span-N/data.csv``.

    Raises DataError naming the file and line of a row without a usable
    timestamp, or an ``out`` that already holds spans (nothing is overwritten).
    """
    if by not in PERIODS:
        raise DataError(f"--by {by!r} is not a period: use one of {', '.join(PERIODS)}")
    root, pattern = (source.parent, source.name) if source.is_file() else (source, CSV_PATTERN)
    report = check_csv_dir(str(root), required=(column,), pattern=pattern)
    existing = sorted(out.glob("span-*")) if out.is_dir() else []
    if existing:
        raise DataError(
            f"{out} already holds spans ({', '.join(p.name for p in existing[:3])}...): "
            "give an empty or new --out directory; nothing was written"
        )
    groups: dict[str, list[list[str]]] = {}
    for path in report.files:
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            index = header.index(column)
            for row in reader:
                if not row:
                    continue
                try:
                    period = _period(int(float(row[index])), by)
                except (ValueError, OverflowError, OSError):
                    raise DataError(
                        f"{path} line {reader.line_num}: {column}={row[index]!r} is not a Unix time in seconds; "
                        "fix the row, or pass --column with the time column"
                    ) from None
                groups.setdefault(period, []).append(row)
    spans = []
    for number, period in enumerate(sorted(groups), start=1):
        directory = out / SPAN_DIR.replace("{SPAN}", str(number))
        directory.mkdir(parents=True)
        with open(directory / "data.csv", "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(report.columns)
            writer.writerows(groups[period])
        spans.append(Span(number, period, len(groups[period]), directory))
    manifest = {
        "by": by,
        "column": column,
        "source": str(source),
        "spans": {s.number: s.period for s in spans},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return spans


def span_periods(root: Path) -> dict[int, str]:
    """Span number -> period, from a ``spans.json`` that ``cut_spans`` wrote (empty if none)."""
    path = root / MANIFEST
    if not path.is_file():
        return {}
    return {int(k): v for k, v in json.loads(path.read_text()).get("spans", {}).items()}
