"""``allele serve-metrics``: a Prometheus ``/metrics`` endpoint for a store.

Run in its own process, the server has no live collector to read: it serves the latest values
per series from the store that monitored programs flush into (``--store``, default
``$ALLELE_STORE_URI``). Inside a monitored program, serve the live collector instead:
``MetricsServer(metrics_asgi_app(collector)).start()``.
"""

from __future__ import annotations

import typer

from allele.cli import app


@app.command("serve-metrics")
def serve_metrics(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
    port: int = typer.Option(9464, "--port", help="Port to bind (0: any free port)."),
    store_uri: str | None = typer.Option(
        None, "--store", help="Store URI (default: $ALLELE_STORE_URI or sqlite:///allele.db)."
    ),
    window_s: float = typer.Option(
        600.0, "--window", help="Seconds of points behind each summary's quantiles."
    ),
    summaries: bool = typer.Option(
        False,
        "--summaries",
        help="Expose histograms as summaries (exact quantiles; not aggregatable).",
    ),
    include_stale: bool = typer.Option(
        False,
        "--include-stale",
        help="Also expose series of writers that stopped, stamped with their last time.",
    ),
) -> None:
    """Serve the latest stored metrics in the Prometheus text format at /metrics."""
    from rich.console import Console
    from rich.markup import escape

    from allele.errors import AlleleError
    from allele.observability.export.prometheus import metrics_asgi_app
    from allele.observability.export.server import MetricsServer
    from allele.observability.store import open_store

    console = Console(stderr=True, soft_wrap=True)
    try:
        store = open_store(store_uri)
        app = metrics_asgi_app(
            store,
            window_s=window_s,
            distributions="summary" if summaries else "histogram",
            include_stale=include_stale,
        )
        server = MetricsServer(app, host, port)
    except (AlleleError, OSError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(code=2) from exc
    # Printed plainly (no markup) and flushed: scripts and tests read the bound port from it.
    typer.echo(f"Serving metrics of {store!r} at {server.url}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
