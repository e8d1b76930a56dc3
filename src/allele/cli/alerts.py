"""``allele alerts ...``: list, acknowledge and resolve the alerts persisted in the store;
``list --grouped`` shows the alert clusters (one incident each, root cause first);
``silence add|list|expire`` manages the silences the router honours.

The store holds what running engines flushed; acknowledging or resolving here records who, when
and why in the store (the running engine keeps that handling when it next saves the alert).
``ack`` and ``resolve`` take an alert id or any unique prefix of one.
Exit codes: 0 done, 1 an unknown, ambiguous or already resolved alert id, or a store that
cannot be read.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, NoReturn

import typer

from allele.cli import app

alerts_app = typer.Typer(help="Persisted alerts: list, acknowledge, resolve.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")

_STORE_HELP = "Store URI (default: $ALLELE_STORE_URI or sqlite:///allele.db)."


class StateFilter(StrEnum):
    FIRING = "firing"
    PENDING = "pending"
    RECOVERING = "recovering"
    RESOLVED = "resolved"
    ACKNOWLEDGED = "acknowledged"


def select_alerts(alerts: list[dict[str, Any]], state: StateFilter | None) -> list[dict[str, Any]]:
    """The alerts in ``state``; ``acknowledged`` means acknowledged and not yet resolved."""
    if state is None:
        return alerts
    if state is StateFilter.ACKNOWLEDGED:
        return [a for a in alerts if a.get("acknowledged_by") and a.get("state") != "resolved"]
    return [a for a in alerts if a.get("state") == state.value]


def alerts_table(alerts: list[dict[str, Any]], title: str = "Alerts") -> Any:
    """A rich table of stored alerts (newest first as given)."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, title_justify="left", expand=False, box=box.SIMPLE_HEAD)
    table.add_column("id", no_wrap=True)
    table.add_column("rule", overflow="fold")
    table.add_column("severity")
    table.add_column("state")
    table.add_column("value", justify="right")
    table.add_column("component", overflow="fold")
    table.add_column("since")
    table.add_column("handled")
    for alert in alerts:
        table.add_row(
            str(alert.get("alert_id", "")),
            str(alert.get("rule_name", "")),
            _severity(str(alert.get("severity", ""))),
            _state(str(alert.get("state", ""))),
            _value(alert),
            str((alert.get("labels") or {}).get("component_id", "-")),
            _short_time(alert.get("fired_at") or alert.get("started_at")),
            _handled(alert),
        )
    return table


def _severity(severity: str) -> str:
    color = {"info": "cyan", "warning": "yellow", "error": "red", "critical": "bold red"}
    return f"[{color.get(severity, 'white')}]{severity}[/]"


def _state(state: str) -> str:
    color = {"firing": "red", "pending": "yellow", "resolved": "green"}
    return f"[{color.get(state, 'white')}]{state}[/]"


def _value(alert: dict[str, Any]) -> str:
    value, threshold = alert.get("value"), alert.get("threshold")
    symbol = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "==", "ne": "!="}
    op = symbol.get(str(alert.get("operator", "")), "?")
    if isinstance(value, int | float) and isinstance(threshold, int | float):
        return f"{value:.4g} {op} {threshold:.4g}"
    return "-"


def _short_time(text: object) -> str:
    # ISO 8601 UTC from the store; seconds are enough on a terminal.
    return str(text)[:19].replace("T", " ") if text else "-"


def _handled(alert: dict[str, Any]) -> str:
    parts = []
    if alert.get("acknowledged_by"):
        parts.append(f"ack: {alert['acknowledged_by']}")
    if alert.get("resolved_by"):
        parts.append(f"resolved: {alert['resolved_by']}")
    return ", ".join(parts) or "-"


@alerts_app.command("list")
def list_alerts(
    state: StateFilter | None = typer.Option(
        None, "--state", help="Only alerts in this state (acknowledged = acknowledged, active)."
    ),
    store_uri: str | None = typer.Option(None, "--store", help=_STORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the alerts as JSON."),
    grouped: bool = typer.Option(
        False, "--grouped", help="List the alert clusters (incidents), root cause first."
    ),
) -> None:
    """List the stored alerts, newest first."""
    import json

    from rich.console import Console
    from rich.markup import escape

    from allele.errors import AlleleError
    from allele.observability.store import open_store

    if grouped:
        _list_clusters(store_uri, as_json)
        return
    try:
        with open_store(store_uri) as store:
            alerts = select_alerts([a.to_dict() for a in store.load_alerts()], state)
    except AlleleError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(code=1) from exc
    if as_json:
        typer.echo(json.dumps(alerts, indent=2))
        return
    console = _stdout_console()
    if not alerts:
        which = f" in state {state.value!r}" if state is not None else ""
        console.print(f"no stored alerts{which}")
        return
    console.print(alerts_table(alerts, title=f"Alerts ({len(alerts)})"))


def _stdout_console() -> Any:
    """A console on standard output; piped output gets a wide one so that rows never wrap."""
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 200))
    return console


def full_alert_id(alerts: list[dict[str, Any]], given: str) -> str:
    """Return the id of the one stored alert whose id is ``given`` or starts with it.

    An unknown id is returned unchanged (the store then reports it); a prefix shared by
    several alerts is a ValidationError listing them.
    """
    from allele.errors import ValidationError

    ids = [str(a.get("alert_id", "")) for a in alerts]
    if given in ids or not given:
        return given
    matches = [i for i in ids if i.startswith(given)]
    if len(matches) > 1:
        shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
        raise ValidationError(
            f"alert id prefix {given!r} matches {len(matches)} alerts ({shown}); give more of it"
        )
    return matches[0] if matches else given


def _handle(
    action: str, alert_id: str, by: str, comment: str | None, store_uri: str | None
) -> None:
    from rich.console import Console
    from rich.markup import escape

    from allele.errors import AlleleError
    from allele.observability.store import open_store

    try:
        with open_store(store_uri) as store:
            alert_id = full_alert_id([a.to_dict() for a in store.load_alerts()], alert_id)
            if action == "acknowledge":
                alert = store.acknowledge_alert(alert_id, by, comment)
            else:
                alert = store.resolve_alert(alert_id, by, comment)
    except AlleleError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(code=1) from exc
    done = "acknowledged" if action == "acknowledge" else "resolved"
    _stdout_console().print(
        f"{done} alert {alert_id} ({alert.rule_name}, now {alert.state}) by {by}"
        + (f": {comment}" if comment else "")
    )


@alerts_app.command("ack")
def acknowledge(
    alert_id: str = typer.Argument(
        ..., help="The alert's id or a unique prefix of it (see `allele alerts list`)."
    ),
    by: str = typer.Option(..., "--by", help="Who acknowledges it."),
    comment: str | None = typer.Option(None, "--comment", help="Why, or what happens next."),
    store_uri: str | None = typer.Option(None, "--store", help=_STORE_HELP),
) -> None:
    """Acknowledge an active alert: record who has seen it, when and why."""
    _handle("acknowledge", alert_id, by, comment, store_uri)


@alerts_app.command("resolve")
def resolve(
    alert_id: str = typer.Argument(
        ..., help="The alert's id or a unique prefix of it (see `allele alerts list`)."
    ),
    by: str = typer.Option(..., "--by", help="Who resolves it."),
    comment: str | None = typer.Option(None, "--comment", help="What was done."),
    store_uri: str | None = typer.Option(None, "--store", help=_STORE_HELP),
) -> None:
    """Resolve an active alert by hand: record who, when and why."""
    _handle("resolve", alert_id, by, comment, store_uri)


# --- clusters -----------------------------------------------------------------------------------


def clusters_table(clusters: list[dict[str, Any]]) -> Any:
    """A rich table of stored alert clusters, each with its alerts' components and root cause."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    table = Table(
        title=f"Alert clusters ({len(clusters)})", title_justify="left", box=box.SIMPLE_HEAD
    )
    table.add_column("cluster", no_wrap=True)
    table.add_column("alerts", justify="right")
    table.add_column("priority", justify="right")
    table.add_column("root cause (most likely first)", overflow="fold")
    table.add_column("components", overflow="fold")
    table.add_column("first")
    table.add_column("last")
    table.add_column("handled")
    for cluster in clusters:
        alerts = cluster.get("alerts") or []
        components = sorted({str(a.get("component_id", "?")) for a in alerts})
        attrs = cluster.get("common_attributes") or {}
        handled = []
        if attrs.get("escalated"):
            handled.append("[bold red]escalated[/]")
        if attrs.get("acknowledged_by"):
            handled.append(f"ack: {escape(str(attrs['acknowledged_by']))}")
        table.add_row(
            str(cluster.get("cluster_id", ""))[:12],
            str(len(alerts)),
            f"{float(cluster.get('priority_score') or 0):.2f}",
            escape(", ".join(cluster.get("root_cause_candidates") or []) or "-"),
            escape(", ".join(components)),
            _short_time(cluster.get("first_alert_time")),
            _short_time(cluster.get("last_alert_time")),
            ", ".join(handled) or "-",
        )
    return table


def _list_clusters(store_uri: str | None, as_json: bool) -> None:
    import json

    from allele.errors import AlleleError
    from allele.observability.store import open_store
    from allele.observability.store.repository.alerting import AlertingRecords

    try:
        with open_store(store_uri) as store:
            clusters = AlertingRecords(store).load_clusters()
    except AlleleError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(clusters, indent=2))
        return
    console = _stdout_console()
    if not clusters:
        console.print("no stored alert clusters")
        return
    console.print(clusters_table(clusters))


def _fail(exc: Exception) -> NoReturn:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {escape(str(exc))}")
    raise typer.Exit(code=1) from exc


# --- silences -----------------------------------------------------------------------------------

silence_app = typer.Typer(
    help="Silences: mute the notifications of matching alerts for a while.",
    no_args_is_help=True,
)
alerts_app.add_typer(silence_app, name="silence")


class SilenceState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"


def _silences(store: Any) -> Any:
    from allele.observability.silences import Silences

    return Silences(store=store)


@silence_app.command("add")
def silence_add(
    matchers: list[str] = typer.Argument(
        ..., help="Label matchers, e.g. 'component_id=\"db\"' 'alertname=~\"slow.*\"'."
    ),
    author: str = typer.Option(..., "--author", "--by", help="Who creates the silence."),
    comment: str = typer.Option(..., "--comment", help="Why the alerts are silenced."),
    duration: str | None = typer.Option(
        None, "--duration", help="How long from the start, e.g. 2h, 30m, 1h30m (default 1h)."
    ),
    start: str | None = typer.Option(None, "--start", help="ISO-8601 start (default now)."),
    end: str | None = typer.Option(None, "--end", help="ISO-8601 end (instead of --duration)."),
    store_uri: str | None = typer.Option(None, "--store", help=_STORE_HELP),
) -> None:
    """Create a silence; it is stored, and running routers honour it at their next refresh."""
    from allele.errors import AlleleError, ValidationError
    from allele.observability.clock import parse_utc
    from allele.observability.routing_config import parse_duration
    from allele.observability.store import open_store

    try:
        if end is not None and duration is not None:
            raise ValidationError("give --end or --duration, not both")
        try:
            starts_at = parse_utc(start)
            ends_at = parse_utc(end)
        except ValueError as exc:
            raise ValidationError(f"--start/--end must be ISO-8601 times: {exc}") from None
        try:
            seconds = parse_duration(duration or "1h") if ends_at is None else None
        except ValueError as exc:
            raise ValidationError(f"--duration {exc}") from None
        with open_store(store_uri) as store:
            silence = _silences(store).add(
                matchers,
                created_by=author,
                comment=comment,
                starts_at=starts_at,
                ends_at=ends_at,
                duration_s=seconds,
            )
    except AlleleError as exc:
        _fail(exc)
    _stdout_console().print(
        f"silence {silence.silence_id} ({', '.join(map(str, silence.matchers))}) until "
        f"{silence.ends_at.isoformat()} by {silence.created_by}: {silence.comment}"
    )


@silence_app.command("list")
def silence_list(
    state: SilenceState | None = typer.Option(None, "--state", help="Only silences in this state."),
    store_uri: str | None = typer.Option(None, "--store", help=_STORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the silences as JSON."),
) -> None:
    """List the stored silences (pending, active and expired), latest start first."""
    import json

    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from allele.errors import AlleleError
    from allele.observability.store import open_store

    try:
        with open_store(store_uri) as store:
            silences = _silences(store)
            items = silences.list(state.value if state is not None else None)
            now = silences.now()
    except AlleleError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps([{**s.to_dict(), "state": s.state(now)} for s in items], indent=2))
        return
    console = _stdout_console()
    if not items:
        console.print("no silences" + (f" in state {state.value!r}" if state else ""))
        return
    table = Table(title=f"Silences ({len(items)})", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("id", "state", "matchers", "starts", "ends", "author", "comment"):
        table.add_column(column, overflow="fold")
    for s in items:
        table.add_row(
            s.silence_id,
            s.state(now),
            escape(", ".join(map(str, s.matchers))),
            _short_time(s.starts_at.isoformat()),
            _short_time(s.ends_at.isoformat()),
            escape(s.created_by),
            escape(s.comment),
        )
    console.print(table)


@silence_app.command("expire")
def silence_expire(
    silence_id: str = typer.Argument(..., help="The silence's id or a unique prefix of it."),
    store_uri: str | None = typer.Option(None, "--store", help=_STORE_HELP),
) -> None:
    """End a silence now (its alerts notify again at their group's next flush)."""
    from allele.errors import AlleleError
    from allele.observability.store import open_store

    try:
        with open_store(store_uri) as store:
            silence = _silences(store).expire(silence_id)
    except AlleleError as exc:
        _fail(exc)
    _stdout_console().print(
        f"expired silence {silence.silence_id} at {silence.ends_at.isoformat()}"
    )
