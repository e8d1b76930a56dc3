"""``allele metrics ...``: read what the observability store holds.

Exit codes: 0 written (also when nothing matched: a note says so on standard error), 2 bad
input, a store that cannot be read, or an output file that cannot be written.
"""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path

import typer

from allele.cli import app

metrics_app = typer.Typer(help="Stored metrics: export series and alerts.", no_args_is_help=True)
app.add_typer(metrics_app, name="metrics")


class ExportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    PARQUET = "parquet"


class ExportWhat(StrEnum):
    SERIES = "series"
    ALERTS = "alerts"


@metrics_app.command("export")
def export(
    fmt: ExportFormat = typer.Option(..., "--format", "-f", help="File format."),
    store_uri: str | None = typer.Option(
        None, "--store", help="Store URI (default: $ALLELE_STORE_URI or sqlite:///allele.db)."
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="File to write (default: standard output; JSON/CSV only)."
    ),
    name: str | None = typer.Option(None, "--name", help="Only this metric."),
    since: str | None = typer.Option(
        None, "--since", help="Only points from then on: 15m, 2h, 7d or an ISO 8601 time."
    ),
    what: ExportWhat = typer.Option(ExportWhat.SERIES, "--what", help="Series or alerts."),
) -> None:
    """Export stored series (or alerts) as JSON, CSV or Parquet."""
    from rich.console import Console
    from rich.markup import escape

    from allele.errors import AlleleError
    from allele.observability.export.files import export_alerts, export_series
    from allele.observability.store import open_store
    from allele.observability.store.epoch import parse_since

    err = Console(stderr=True, soft_wrap=True)
    try:
        start = parse_since(since, time.time()) if since is not None else None
        with open_store(store_uri) as store:
            if what is ExportWhat.ALERTS:
                count = export_alerts(store, fmt.value, output)
                noun = "alert(s)"
            else:
                count = export_series(store, fmt.value, output, name=name, since=start)
                noun = "point(s)"
    except AlleleError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(code=2) from exc
    except OSError as exc:  # the output file: a missing directory, no permission, disk full
        target = output or "standard output"
        err.print(f"[red]error:[/red] cannot write {escape(f'{target}: {exc}')}")
        raise typer.Exit(code=2) from exc
    if count == 0:
        filters = [
            f"--{flag} {value}" for flag, value in (("name", name), ("since", since)) if value
        ]
        err.print(
            f"note: no stored {noun.removesuffix('(s)')}s matched"
            + (f" ({', '.join(filters)})" if filters else "")
            + (f"; wrote an empty export to {output}" if output is not None else ""),
            markup=False,
        )
    elif output is not None:
        err.print(f"wrote {count} {noun} to {output}")
