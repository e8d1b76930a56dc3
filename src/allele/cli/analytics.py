"""``allele analytics nab`` and ``allele analytics detect``: anomaly detection from the shell.

``nab`` runs a detector over a NAB corpus and prints NAB's scores; ``detect`` replays a stored
series through a detector and shows a sparkline, the detections and optionally an HTML chart.

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


@analytics_app.command("detect")
def detect(
    name: str = typer.Argument(..., help="Stored metric name, e.g. allele_system_cpu_percent."),
    store_uri: str | None = typer.Option(
        None, "--store", help="Store URI (default: $ALLELE_STORE_URI or sqlite:///allele.db)."
    ),
    since: str | None = typer.Option(
        None, "--since", help="Only points from then on: 15m, 2h, 7d or an ISO 8601 time."
    ),
    detector: str = typer.Option("residual_novelty", "--detector", help="Streaming detector."),
    threshold: float = typer.Option(
        0.9, "--threshold", min=0.0, max=1.0, help="Score at which a row is a detection."
    ),
    html: Path | None = typer.Option(None, "--html", help="Write an HTML chart to this file."),
    width: int = typer.Option(60, "--width", min=1, max=1000, help="Sparkline width."),
    top: int = typer.Option(10, "--top", min=0, max=10_000, help="Detections to list."),
) -> None:
    """Replay a stored series through a detector: sparkline, detections, optional HTML chart."""
    import time

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from allele.errors import AlleleError
    from allele.observability.ml_analytics.anomaly.history import detect_history
    from allele.observability.ml_analytics.charts import series_chart_html, sparkline
    from allele.observability.store import open_store
    from allele.observability.store.epoch import parse_since

    out = Console(soft_wrap=True)
    err = Console(stderr=True, soft_wrap=True)
    try:
        start = parse_since(since, time.time()) if since is not None else None
        with open_store(store_uri) as store:
            series = [(k, p) for k, p in store.iter_series(name, start, None) if len(p)]
        if not series:
            err.print(f"no stored points of {escape(name)!r}")
            raise typer.Exit(2)
        pages = []
        for key, points in series:
            labels = dict(key.labels)
            ts, values = points.timestamps.tolist(), points.values.tolist()
            _, found = detect_history(
                name, ts, values, labels=labels, detector=detector, threshold=threshold
            )
            where = ",".join(f"{k}={v}" for k, v in labels.items())
            out.print(f"[bold]{escape(name)}[/bold]{{{escape(where)}}}: {len(values)} points")
            out.print(sparkline(values, width))
            out.print(f"{len(found)} detections at score >= {threshold:g} ({detector})")
            if found and top:
                table = Table("time (UTC)", "value", "expected", "score", "type", "severity")
                for d in sorted(found, key=lambda d: -d.anomaly_score)[:top]:
                    table.add_row(
                        f"{d.timestamp:%Y-%m-%d %H:%M:%S}",
                        f"{d.actual_value:.6g}",
                        f"{d.expected_value:.6g}",
                        f"{d.anomaly_score:.3f}",
                        d.anomaly_type.value,
                        d.severity.value,
                    )
                out.print(table)
            if html is not None:
                from datetime import UTC, datetime

                stamps = [datetime.fromtimestamp(t, UTC) for t in ts]
                pages.append(
                    series_chart_html(
                        stamps,
                        values,
                        title=f"{name} {{{where}}}",
                        detections=[(d.timestamp, d.actual_value) for d in found],
                        detection_labels=[
                            f"{d.anomaly_type.value} ({d.anomaly_score:.3f})" for d in found
                        ],
                    )
                )
        if html is not None:
            html.parent.mkdir(parents=True, exist_ok=True)
            # One self-contained page per series: FILE, then FILE-2, FILE-3... for more.
            for i, page in enumerate(pages):
                path = html if i == 0 else html.with_stem(f"{html.stem}-{i + 1}")
                path.write_text(page, encoding="utf-8")
                out.print(f"chart written to {path}")
    except AlleleError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
