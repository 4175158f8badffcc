"""``tfxp data`` (spans, drift) and ``tfxp schema diff|validate``. The commands only parse and print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from validation.drift import Distance

app = typer.Typer(
    help="Data over time: cut spans, measure drift between datasets.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
console = Console(highlight=False, soft_wrap=True)


def _fail(message: str, code: int = 1) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def _schema_file(schema: Path | None) -> Path:
    from pipeline.config import project_root

    return schema.resolve() if schema is not None else project_root() / "schema" / "schema.pbtxt"


SchemaOpt = typer.Option(None, "--schema", help="Schema with the comparators (default: schema/schema.pbtxt).")


@app.command("spans")
def spans(
    source: Path = typer.Argument(Path("data"), help="A CSV file or a directory of CSV files."),
    out: Path = typer.Option(
        ..., "--out", help="Directory to write span-1/, span-2/... into (new or empty)."
    ),
    by: str = typer.Option("year", "--by", help="year, quarter or month."),
    column: str = typer.Option("trip_start_timestamp", "--column", help="The Unix-time column to cut on."),
) -> None:
    """Cut a CSV into span directories by time, for a profile with data.span_pattern: span-{SPAN}/*.csv."""
    from pipeline.cli import _quiet_environment

    _quiet_environment()
    from pipeline.data_check import DataError
    from validation.spans import SPAN_PATTERN, cut_spans

    try:
        made = cut_spans(source.resolve(), out.resolve(), by, column)
    except DataError as exc:
        _fail(str(exc))
    console.print(f"{len(made)} spans by {by} in {out}:")
    for span in made:
        console.print(f"  span {span.number:>3}  {span.period:<8} {span.rows:>7} rows  {span.path}")
    console.print(
        f"Run one: tfxp run --data {out} --span-pattern '{SPAN_PATTERN}' --span {made[0].number}"
        if made
        else "No rows."
    )


def print_distances(rows: list[Distance], title: str, word: str = "DRIFT") -> None:
    console.print(title)
    console.print(f"  {'feature':<26} {'comparator':<10} {'distance':>9} {'threshold':>9}  verdict")
    for d in rows:
        verdict = f"[red]{word}[/]" if d.exceeded else "[green]ok[/]"
        console.print(
            f"  {d.feature:<26} {d.comparator:<10} {d.distance:>9.4f} {d.threshold:>9.4f}  {verdict}"
        )


@app.command("drift")
def drift(
    baseline: Path = typer.Argument(
        ..., help="The earlier data: CSV file or directory, or a span directory."
    ),
    current: Path = typer.Argument(..., help="The later data, compared with the baseline."),
    schema: Path | None = SchemaOpt,
    skew: bool = typer.Option(
        False, "--skew", help="Use the skew comparators (baseline = training, current = serving)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Per-feature distances between two datasets, with the schema's thresholds; exit 1 if any is exceeded."""
    from pipeline.cli import _quiet_environment

    _quiet_environment()
    from pipeline.data_check import DataError
    from validation.drift import compare, read_schema
    from validation.stats import statistics

    try:
        parsed = read_schema(_schema_file(schema))
        rows = compare(
            statistics(baseline.resolve()), statistics(current.resolve()), parsed, "skew" if skew else "drift"
        )
    except DataError as exc:
        _fail(str(exc))
    exceeded = [d for d in rows if d.exceeded]
    if as_json:
        print(
            json.dumps(
                {
                    "baseline": str(baseline),
                    "current": str(current),
                    "kind": "skew" if skew else "drift",
                    "features": [d.to_dict() for d in rows],
                    "exceeded": [d.feature for d in exceeded],
                },
                indent=2,
            )
        )
    else:
        print_distances(rows, f"{'Skew' if skew else 'Drift'} from {baseline} to {current}:")
        console.print(
            f"{len(exceeded)} of {len(rows)} features beyond threshold"
            + (f": {', '.join(d.feature for d in exceeded)}" if exceeded else "")
        )
    raise typer.Exit(1 if exceeded else 0)


def schema_diff(
    proposed: Path = typer.Argument(..., help="The proposed schema (e.g. from `tfxp schema infer`)."),
    curated: Path | None = typer.Argument(
        None, help="The schema to compare with (default: schema/schema.pbtxt)."
    ),
) -> None:
    """The differences between two schemas, one line each; exit 1 if there are any."""
    from pipeline.data_check import DataError
    from validation.drift import read_schema
    from validation.schema_diff import diff_schemas

    try:
        lines = diff_schemas(read_schema(_schema_file(curated)), read_schema(proposed.resolve()))
    except DataError as exc:
        _fail(str(exc))
    if not lines:
        console.print(f"No differences between {_schema_file(curated)} and {proposed}.")
        return
    console.print(f"{len(lines)} difference(s) from {_schema_file(curated)} to {proposed}:")
    for line in lines:
        console.print(f"  {escape(line)}")
    raise typer.Exit(1)


def schema_validate(
    path: Path = typer.Argument(
        ..., help="A CSV file, a directory of CSV files, or TFRecord tf.Examples (a request log)."
    ),
    environment: str | None = typer.Option(
        None, "--environment", help="TRAINING or SERVING (serving data has no label columns)."
    ),
    schema: Path | None = SchemaOpt,
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Check data against the curated schema, running no pipeline; exit 1 if there are anomalies."""
    from pipeline.cli import _quiet_environment

    _quiet_environment()
    from pipeline.data_check import DataError
    from validation.drift import read_schema, validate
    from validation.stats import statistics

    try:
        parsed = read_schema(_schema_file(schema))
        found = validate(statistics(path.resolve()), parsed, environment)
    except DataError as exc:
        _fail(str(exc))
    if as_json:
        print(
            json.dumps(
                {
                    "path": str(path),
                    "environment": environment,
                    "anomalies": [
                        {"feature": a.feature, "kind": a.kind, "description": a.description} for a in found
                    ],
                },
                indent=2,
            )
        )
    elif found:
        console.print(
            f"{len(found)} anomal{'y' if len(found) == 1 else 'ies'} in {path} against {_schema_file(schema)}"
            f"{f' ({environment})' if environment else ''}:"
        )
        for a in found:
            console.print(f"  - {escape(a.feature)}: {escape(a.kind)}: {escape(a.description)}")
    else:
        console.print(
            f"No anomalies: {path} matches {_schema_file(schema)}{f' ({environment})' if environment else ''}."
        )
    raise typer.Exit(1 if found else 0)


def schema_update(
    data: Path = typer.Option(..., "--data", help="The new data: a CSV file or a directory of CSV files."),
    schema: Path | None = SchemaOpt,
    out: Path = typer.Option(
        Path("schema/updated_schema.pbtxt"), "--out", help="Where to write the updated schema (never the one in use)."
    ),
) -> None:
    """Propose the smallest change to the curated schema that makes the new data valid (TFDV's update_schema)."""
    from pipeline.cli import _quiet_environment

    _quiet_environment()
    from google.protobuf import text_format

    from pipeline.data_check import DataError
    from validation.drift import read_schema
    from validation.schema_diff import diff_schemas, header_comments, update_schema
    from validation.stats import statistics

    curated_path = _schema_file(schema)
    if out.resolve() == curated_path:
        _fail(f"--out {out} is the schema in use: write the update elsewhere, review it, then copy it over")
    try:
        curated = read_schema(curated_path)
        updated = update_schema(curated, statistics(data.resolve()))
    except DataError as exc:
        _fail(str(exc))
    lines = diff_schemas(curated, updated)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        header_comments(curated_path.read_text())
        + f"# Updated by `tfxp schema update` for {data}: review the changes below, then copy over.\n"
        + text_format.MessageToString(updated)
    )
    if not lines:
        console.print(f"No change needed: {data} is valid against {curated_path}. Wrote {out} unchanged.")
        return
    console.print(f"{len(lines)} change(s) make {data} valid against {curated_path}; written to {out}:")
    for line in lines:
        console.print(f"  {escape(line)}")
    console.print(f"Review them, then: cp {out} {curated_path}")


def register(root: typer.Typer, schema_app: typer.Typer) -> None:
    """Mount ``tfxp data`` and add ``diff`` and ``validate`` to ``tfxp schema``."""
    root.add_typer(app, name="data")
    schema_app.command("diff")(schema_diff)
    schema_app.command("validate")(schema_validate)
    schema_app.command("update")(schema_update)
