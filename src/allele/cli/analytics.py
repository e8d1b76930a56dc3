"""``allele analytics nab`` and ``allele analytics detect``: anomaly detection from the shell.

Exit codes: 0 done, 2 bad input (unknown detector, missing or malformed data or labels).
"""

from __future__ import annotations

from pathlib import Path

import typer

from allele.cli import analytics_app


@analytics_app.command("nab")
def nab(
    data: Path = typer.Option(..., "--data", help="NAB data: <category>/<name>.csv files."),
    labels: Path = typer.Option(..., "--labels", help="NAB's combined_windows.json."),
    output: Path = typer.Option(..., "--output", help="Directory for NAB's result files."),
    detector: str = typer.Option(
        "residual_novelty", "--detector", help="Streaming detector to run (default: ours)."
    ),
) -> None:
    """Run a detector over a NAB corpus, write NAB's result files and print NAB's scores."""
    from rich.console import Console
    from rich.markup import escape

    from allele.errors import AlleleError
    from allele.observability.ml_analytics.anomaly.nab import format_report, run_nab

    try:
        report = run_nab(data, labels, output, detector)
    except AlleleError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    typer.echo(format_report(report))
    typer.echo(f"\nresults in {output / detector}")
