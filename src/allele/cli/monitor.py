"""``allele monitor``: a live terminal view of components, the machine and alerts.

Components, alerts and the latest value of each series come from the observability store that
running engines flush into (``--store`` or ``$ALLELE_STORE_URI``); the system panel samples the
machine this command runs on. ``--once`` prints one frame and exits.
"""

from __future__ import annotations

import time
from typing import Any

import typer

from allele.cli import app
from allele.cli.output import fail

_STORE_HELP = "Store URI (default: $ALLELE_STORE_URI or sqlite:///allele.db)."


@app.command()
def monitor(
    store_uri: str | None = typer.Option(None, "--store", help=_STORE_HELP),
    view: str | None = typer.Option(
        None,
        "--view",
        help="Dashboard view: overview, components, alerts, series or detections "
        "(the dashboard runs on a terminal anyway; with --once or in a pipe: one snapshot).",
    ),
    watch: list[str] = typer.Option(
        [], "--watch", help='Series to draw as sparklines: name or name{label="v"} (repeatable).'
    ),
    interval: float = typer.Option(
        2.0, "--interval", min=0.1, max=3600.0, help="Seconds between refreshes."
    ),
    once: bool = typer.Option(False, "--once", help="Render one frame and exit."),
    series_limit: int = typer.Option(
        15, "--series", min=0, max=1000, help="How many of the latest series to show."
    ),
    resolved_limit: int = typer.Option(
        5, "--resolved", min=0, max=1000, help="How many recently resolved alerts to show."
    ),
    stale_after: float | None = typer.Option(
        None,
        "--stale-after",
        min=1.0,
        help="Seconds without news after which a component or writer shows as stale "
        "(default: three collection plus flush intervals, at least 60).",
    ),
) -> None:
    """Watch components, system metrics and alerts live (Ctrl-C to stop)."""
    import sys

    # On a terminal, or when a view or series is asked for: the dashboard, with its keys.
    if view is not None or watch or (not once and sys.stdout.isatty() and sys.stdin.isatty()):
        _dashboard(store_uri, view, watch, interval, once, resolved_limit)
        return
    from rich.console import Console
    from rich.live import Live

    from allele.errors import AlleleError
    from allele.observability.store import open_store
    from allele.observability.system import SystemSampler

    console = Console()
    # Created first: its CPU figures cover the time until the first frame is drawn.
    sampler = SystemSampler()
    try:
        store = open_store(store_uri)
    except AlleleError as exc:
        raise fail(exc, code=1) from exc
    try:
        from allele.observability.config import get_settings
        from allele.observability.staleness import stale_after_for

        after = stale_after if stale_after is not None else stale_after_for(get_settings())

        def frame() -> Any:
            return render_frame(
                store,
                sampler,
                series_limit=series_limit,
                resolved_limit=resolved_limit,
                stale_after_s=after,
            )

        if once:
            console.print(frame())
            return
        with Live(frame(), console=console, refresh_per_second=4, screen=False) as live:
            try:
                while True:
                    time.sleep(interval)
                    live.update(frame())
            except KeyboardInterrupt:
                pass
    finally:
        store.close()
        sampler.close()


def render_frame(
    store: Any,
    sampler: Any,
    *,
    series_limit: int = 15,
    resolved_limit: int = 5,
    stale_after_s: float = 60.0,
) -> Any:
    """One frame: a header, then the components, system, alerts and latest-series panels.

    A panel whose data cannot be read shows the error instead, so one locked table or one
    failing sensor does not blank the whole view.
    """
    from rich.console import Group
    from rich.text import Text

    from allele.observability.store.faults import safe_url

    now = time.time()
    header = Text.assemble(
        ("allele monitor", "bold"),
        f"  store {safe_url(store.uri)}  ",
        (time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now)), "dim"),
    )
    parts: list[Any] = [header]
    for build in (
        lambda: components_table(
            [c.to_dict() for c in store.load_components()], now, stale_after_s
        ),
        lambda: system_table(sampler.sample()),
        lambda: active_alerts_table([a.to_dict() for a in store.load_alerts()], resolved_limit),
        lambda: series_table(store.latest(), now, series_limit, stale_after_s),
    ):
        try:
            parts.append(build())
        except Exception as exc:  # shown in the frame; the next refresh tries again
            parts.append(Text(f"error: {exc}", style="red"))
    return Group(*parts)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _epoch(text: object) -> float | None:
    from allele.observability.clock import parse_utc

    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = parse_utc(text)
    except ValueError:
        return None
    return None if parsed is None else parsed.timestamp()


def _seconds(value: object) -> str:
    if not isinstance(value, int | float):
        return "-"
    return f"{value * 1e3:.2f} ms" if value < 1 else f"{value:.2f} s"


_HEALTH = {"healthy": "green", "degraded": "yellow", "unhealthy": "red", "unknown": "dim"}


def components_table(
    components: list[dict[str, Any]], now: float, stale_after_s: float = 60.0
) -> Any:
    """A table of stored component snapshots: health, operations, errors, latency, heartbeat.

    A snapshot older than ``stale_after_s`` comes from an engine that has stopped writing
    (its process ended): its health is shown as ``stale``, with the last health it reported.
    """
    from rich.markup import escape
    from rich.table import Table

    from allele.observability.staleness import is_stale

    table = Table(title=f"Components ({len(components)})", title_justify="left")
    for name, justify in (
        ("component", "left"),
        ("type", "left"),
        ("health", "left"),
        ("ops", "right"),
        ("errors", "right"),
        ("p50", "right"),
        ("p95", "right"),
        ("heartbeat", "right"),
        ("updated", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for item in components:
        perf = item.get("performance") or {}
        health = str(item.get("health", "unknown"))
        heartbeat = _epoch(item.get("last_heartbeat"))
        updated = _epoch(item.get("timestamp"))
        rate = perf.get("error_rate")
        errors = f"{perf.get('error_count', 0)}" + (
            f" ({rate:.1%})" if isinstance(rate, int | float) and rate else ""
        )
        if is_stale(updated, now, stale_after_s):
            shown = f"[dim]stale (was {escape(health)})[/]"
        else:
            shown = f"[{_HEALTH.get(health, 'white')}]{escape(health)}[/]"
        table.add_row(
            escape(str(item.get("component_id", "?"))),
            escape(str(item.get("component_type", "?"))),
            shown,
            str(perf.get("operation_count", 0)),
            errors,
            _seconds(perf.get("latency_p50_s")),
            _seconds(perf.get("latency_p95_s")),
            _age(None if heartbeat is None else now - heartbeat),
            _age(None if updated is None else now - updated),
        )
    return table


def system_table(sample: Any) -> Any:
    """A one-row table of the local machine and this process (a ``SystemMetrics``)."""
    from rich.table import Table

    gib = 1024**3
    table = Table(title="System (this machine)", title_justify="left")
    for name in ("cpu", "cores", "load 1m", "memory", "disk", "process rss", "gpu"):
        table.add_column(name, justify="right")
    gpu = sample.gpu
    gpu_text = (
        ", ".join(f"{d.name}: {d.memory_used_bytes / gib:.1f} GiB" for d in gpu.devices)
        if gpu.available and gpu.devices
        else "none"
    )
    table.add_row(
        f"{sample.cpu_percent:.0f}%",
        str(sample.cpu_count),
        "-" if sample.load_average_1m is None else f"{sample.load_average_1m:.2f}",
        f"{sample.memory_percent:.0f}% of {sample.memory_total_bytes / gib:.1f} GiB",
        "-" if sample.disk_percent is None else f"{sample.disk_percent:.0f}%",
        f"{sample.process_rss_bytes / 2**20:.0f} MiB",
        gpu_text,
    )
    return table


def active_alerts_table(alerts: list[dict[str, Any]], resolved_limit: int) -> Any:
    """Pending and firing alerts, then the most recently resolved ones."""
    from rich.text import Text

    from allele.cli.alerts import alerts_table

    active = [a for a in alerts if a.get("state") != "resolved"]
    resolved = [a for a in alerts if a.get("state") == "resolved"][:resolved_limit]
    shown = active + resolved
    if not shown:
        return Text("Alerts: none stored", style="green")
    title = f"Alerts ({len(active)} active, {len(resolved)} recently resolved)"
    return alerts_table(shown, title=title)


def series_table(stats: list[Any], now: float, limit: int, stale_after_s: float = 60.0) -> Any:
    """The ``limit`` most recently written series with their latest value and the number of
    points ever written to them (``Store.latest()`` rows); a series whose writer (its
    ``instance``) has written nothing for ``stale_after_s`` is marked stale."""
    from rich.markup import escape
    from rich.table import Table

    from allele.observability.staleness import instance_of, is_stale, last_seen

    seen = last_seen((s.key.labels, s.last_ts) for s in stats)

    latest = sorted(stats, key=lambda s: s.last_ts, reverse=True)[:limit]
    table = Table(title=f"Latest series ({len(latest)} of {len(stats)})", title_justify="left")
    table.add_column("metric")
    table.add_column("labels", overflow="fold")
    table.add_column("last", justify="right")
    table.add_column("points", justify="right")
    table.add_column("age", justify="right")
    for s in latest:
        # component_type repeats what the component id already says.
        labels = ", ".join(f"{k}={v}" for k, v in s.key.labels if k != "component_type")
        age = _age(now - s.last_ts)
        if is_stale(seen.get(instance_of(s.key.labels)), now, stale_after_s):
            age = f"[dim]{age} stale[/]"
        table.add_row(
            escape(s.key.name), escape(labels or "-"), f"{s.last_value:.6g}", str(s.count), age
        )
    return table


def _dashboard(
    store_uri: str | None,
    view: str | None,
    watch: list[str],
    interval: float,
    once: bool,
    resolved_limit: int,
) -> None:
    """The terminal dashboard (``allele.observability.dashboard.terminal``) over the store."""
    from rich.console import Console
    from rich.markup import escape
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from allele.errors import AlleleError
    from allele.observability.dashboard.source import StoreSource
    from allele.observability.dashboard.terminal import run
    from allele.observability.store import open_store

    try:
        with open_store(store_uri) as store:
            try:  # shown without its password; an unparsable URI by its scheme only
                shown = make_url(store.uri).render_as_string(hide_password=True)
            except (ArgumentError, ValueError):
                shown = store.uri.split(":", 1)[0]
            run(
                StoreSource(store),
                view=view or "overview",
                watch=watch,
                interval=interval,
                once=once,
                title=f"store {shown}",
                resolved_limit=resolved_limit,
            )
    except AlleleError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(code=1) from exc
