"""``allele dashboard``: the web dashboard over the store (runs until Ctrl-C)."""

from __future__ import annotations

import typer

from allele.cli import app


@app.command("dashboard")
def dashboard(
    host: str | None = typer.Option(
        None, "--host", help="Address to listen on (default $ALLELE_DASHBOARD_HOST, loopback)."
    ),
    port: int | None = typer.Option(
        None, "--port", min=0, max=65535, help="Port (default $ALLELE_DASHBOARD_PORT, 8080)."
    ),
    store: str | None = typer.Option(
        None, "--store", envvar="ALLELE_STORE_URI", help="Store URI (default sqlite:///allele.db)."
    ),
) -> None:
    """Serve the web dashboard and its REST API (docs at /api/v1/docs) over a store."""
    import threading

    from rich.console import Console
    from rich.markup import escape

    from allele.errors import AlleleError
    from allele.observability.dashboard.server import (
        DashboardServer,
        build_app,
        settings_defaults,
        startup_notice,
    )
    from allele.observability.dashboard.source import StoreSource
    from allele.observability.store import open_store
    from allele.observability.store.faults import safe_url

    console = Console()
    try:
        host, chosen_port, token = settings_defaults(host, port, None)
        opened = open_store(store)
        server = DashboardServer(build_app(StoreSource(opened), host, token), host, chosen_port)
        server.start()
    except AlleleError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from exc
    console.print(escape(startup_notice(host, server.port, token)), highlight=False)
    console.print(f"reading {escape(safe_url(opened.uri))}; Ctrl-C stops", highlight=False)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()
