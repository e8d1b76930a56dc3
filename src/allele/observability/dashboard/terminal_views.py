"""How the terminal dashboard draws a ``Snapshot``: one rich renderable per panel, and
``render``, the whole frame of the chosen view (each readable at 80 columns)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from allele.errors import ValidationError
from allele.observability.dashboard.source import SeriesRef
from allele.observability.dashboard.terminal_snapshot import (
    _HEALTH,
    _KEYS,
    _LEVEL,
    _SEVERITY,
    VIEWS,
    Snapshot,
)


def _epoch(value: object) -> float | None:
    from allele.observability.clock import parse_utc

    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = parse_utc(value)
    except ValueError:
        return None
    return None if parsed is None else parsed.timestamp()


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{max(seconds, 0):.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.4g}"


def _table(title: str, *columns: str) -> Table:
    from rich import box

    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    # ">name": right-aligned; "!name": never wrapped (names one types, e.g. to acknowledge), so
    # at 80 columns the wrapping columns give up the room first.
    for column in columns:
        table.add_column(
            column.lstrip(">!"),
            justify="right" if column.startswith(">") else "left",
            no_wrap=column.startswith("!"),
        )
    return table


def is_stale(component: dict[str, Any], now: float, stale_after_s: float) -> bool:
    """A snapshot not updated for ``stale_after_s`` seconds comes from an engine that stopped."""
    updated = _epoch(component.get("timestamp"))
    return updated is None or now - updated > stale_after_s


def stale_after() -> float:
    """How old a component snapshot may be before its engine counts as stopped: engines write
    snapshots every collection interval and flush them every flush interval, so three of both
    (at least a minute) -- the rule the store's other readers use."""
    from allele.observability.config import get_settings

    settings = get_settings()
    return max(60.0, 3.0 * (settings.collection_interval + settings.flush_interval))


def components_view(snap: Snapshot, stale_after_s: float, limit: int | None = None) -> Any:
    if "components" in snap.errors:
        return _error("Components", snap.errors["components"])
    items = sorted(snap.components, key=lambda c: str(c.get("component_id", "")))
    shown = items if limit is None else items[:limit]
    stale = sum(is_stale(c, snap.now, stale_after_s) for c in items)
    title = f"Components ({len(items)}" + (f", {stale} stale)" if stale else ")")
    table = _table(title, "!component", "!type", "health", ">ops", ">errors", ">p95", ">age")
    for item in shown:
        perf = item.get("performance") or {}
        health = str(item.get("health", "unknown"))
        if is_stale(item, snap.now, stale_after_s):
            shown_health = f"[dim]stale (was {escape(health)})[/]"
        else:
            shown_health = f"[{_HEALTH.get(health, 'white')}]{escape(health)}[/]"
        p95 = perf.get("latency_p95_s")
        updated = _epoch(item.get("timestamp"))
        table.add_row(
            escape(str(item.get("component_id", "?"))),
            escape(str(item.get("component_type", "?"))),
            shown_health,
            str(perf.get("operation_count", 0)),
            str(perf.get("error_count", 0)),
            "-" if not isinstance(p95, int | float) else f"{p95 * 1e3:.1f}ms",
            _age(None if updated is None else snap.now - updated),
        )
    if limit is not None and len(items) > limit:
        table.caption = f"{len(items) - limit} more: press 2"
    return table


def _system_value(name: str, value: float) -> str:
    if name.endswith("_percent"):
        return f"{value:.0f}%"
    if name.endswith("_bytes"):
        return f"{value / 2**30:.2f} GiB" if value >= 2**30 else f"{value / 2**20:.0f} MiB"
    return _number(value)


def system_view(snap: Snapshot) -> Any:
    if "system" in snap.errors:
        return _error("System", snap.errors["system"])
    if not snap.system:
        return Text("System: no system metrics recorded", style="dim")
    pairs = []
    for name, item in sorted(snap.system.items()):
        value = item.get("value") if isinstance(item, dict) else None
        if not isinstance(value, int | float):
            continue
        short = name.removeprefix("allele_system_").removeprefix("allele_")
        pairs.append((short, _system_value(name, float(value))))
    table = _table("System", "metric", ">value", "metric", ">value")
    half = (len(pairs) + 1) // 2
    for left, right in zip(pairs[:half], [*pairs[half:], ("", "")], strict=False):
        table.add_row(escape(left[0]), left[1], escape(right[0]), right[1])
    return table


_ALERT_COLUMNS = ("!id", "!rule", "!severity", "state", "component", ">value", ">age")


def _alert_row(alert: dict[str, Any], now: float, marker: str) -> list[str]:
    severity = str(alert.get("severity", ""))
    started = _epoch(alert.get("fired_at") or alert.get("started_at"))
    labels = alert.get("labels") or {}
    state = str(alert.get("state", ""))
    # Who handled it goes on a second line: the table keeps its width at 80 columns.
    if state == "resolved":
        state += f"\nby {alert.get('resolved_by') or 'rule'}"
    elif alert.get("acknowledged_by"):
        state += f"\nack: {alert['acknowledged_by']}"
    value = alert.get("value")
    return [
        marker + escape(str(alert.get("alert_id", ""))[:6]),
        escape(str(alert.get("rule_name", ""))),
        f"[{_SEVERITY.get(severity, 'white')}]{escape(severity)}[/]",
        escape(state),
        escape(str(labels.get("component_id", "-"))),
        f"{value:.3g}" if isinstance(value, int | float) and math.isfinite(value) else "-",
        _age(None if started is None else now - started),
    ]


def alerts_view(
    snap: Snapshot, selected: int | None, resolved_limit: int = 5, limit: int | None = None
) -> Any:
    if "alerts" in snap.errors:
        return _error("Alerts", snap.errors["alerts"])
    active = snap.active_alerts
    resolved = [a for a in snap.alerts if a.get("state") == "resolved"][:resolved_limit]
    if not active and not resolved:
        return Text("Alerts: none", style="green")
    title = f"Alerts ({len(active)} active"
    title += f", {len(resolved)} recently resolved)" if resolved else ")"
    table = _table(title, *_ALERT_COLUMNS)
    rows = active + resolved
    for index, alert in enumerate(rows if limit is None else rows[:limit]):
        table.add_row(*_alert_row(alert, snap.now, ">" if index == selected else " "))
    if limit is not None and len(rows) > limit:
        table.caption = f"{len(rows) - limit} more: press 3"
    return table


def clusters_view(snap: Snapshot) -> Any:
    if "clusters" in snap.errors:
        return _error("Alert clusters", snap.errors["clusters"])
    if not snap.clusters:
        return Text("Alert clusters: none", style="dim")
    table = _table(
        f"Alert clusters ({len(snap.clusters)})", "cluster", ">alerts", ">prio", "root cause"
    )
    for cluster in snap.clusters:
        causes = cluster.get("root_cause_candidates") or []
        table.add_row(
            escape(str(cluster.get("cluster_id", ""))[:10]),
            str(len(cluster.get("alerts") or [])),
            f"{float(cluster.get('priority_score') or 0):.2f}",
            escape(", ".join(str(c) for c in causes[:3]) or "-"),
        )
    return table


def _short_id(ref: SeriesRef, width: int) -> str:
    text = ref.id
    return text if len(text) <= width else text[: width - 1] + "…"


def sparklines_view(snap: Snapshot, width: int) -> Any:
    from allele.observability.ml_analytics.charts import sparkline

    if "series" in snap.errors:
        return _error("Series", snap.errors["series"])
    if not snap.sparklines:
        return Text("Series: none watched match (--watch NAME)", style="dim")
    name_width = max(12, min(34, width // 2 - 6))
    spark_width = max(8, width - name_width - 12)
    table = _table(f"Series (last {_age(snap.window_s)})", "series", "trend", ">last")
    for line in snap.sparklines:
        table.add_row(
            escape(_short_id(line.ref, name_width)),
            f"[cyan]{sparkline(line.values, spark_width)}[/]",
            _number(line.last),
        )
    return table


def _level_text(level: float | None) -> str:
    if level is None:
        return "-"
    name, style = _LEVEL.get(int(level), ("critical", "bold red"))
    return f"[{style}]{name}[/]"


def detections_view(snap: Snapshot, width: int) -> Any:
    from allele.observability.ml_analytics.charts import sparkline

    if "series" in snap.errors:
        return _error("Detections", snap.errors["series"])
    anomaly_alerts = [
        a for a in snap.active_alerts if str(a.get("rule_name", "")).startswith("anomaly_")
    ]
    parts: list[Any] = []
    if not snap.detections:
        parts.append(Text("Detections: no live anomaly detection recorded", style="dim"))
    else:
        table = _table(
            f"Detections (anomaly score, last {_age(snap.window_s)})",
            "series",
            "score",
            ">now",
            "level",
        )
        spark_width = max(8, width - 60)
        for ref, scores, level in snap.detections:
            labels = dict(ref.labels)
            watched_metric = labels.pop("metric", ref.name)
            inner = ",".join(f"{k}={v}" for k, v in labels.items())
            name = watched_metric + (f"{{{inner}}}" if inner else "")
            table.add_row(
                escape(name if len(name) <= 36 else name[:35] + "…"),
                f"[magenta]{sparkline(scores, spark_width)}[/]",
                _number(scores[-1] if scores else None),
                _level_text(level),
            )
        parts.append(table)
    if anomaly_alerts:
        table = _table(f"Anomaly alerts ({len(anomaly_alerts)})", *_ALERT_COLUMNS)
        for alert in anomaly_alerts:
            table.add_row(*_alert_row(alert, snap.now, " "))
        parts.append(table)
    return Group(*parts)


def _detections_line(snap: Snapshot) -> Text:
    raised = [d for d in snap.detections if d[2]]
    if not snap.detections:
        return Text("Detections: none recorded", style="dim")
    style = "red" if raised else "green"
    return Text(
        f"Detections: {len(snap.detections)} series watched, {len(raised)} anomalous (press 5)",
        style=style,
    )


def _error(panel: str, message: str) -> Text:
    return Text(f"{panel}: error: {message}", style="red")


@dataclass
class State:
    """What the user has chosen: the view, the selected alert, a half-typed acknowledgement."""

    view: str = "overview"
    selected: int = 0
    typing: str | None = None  # the alert name being typed after ``a``; None: not typing
    message: str = ""
    quit: bool = False

    def __post_init__(self) -> None:
        if self.view not in VIEWS:
            raise ValidationError(f"view={self.view!r} is not one of {', '.join(VIEWS)}")


def render(
    snap: Snapshot,
    state: State,
    *,
    width: int = 80,
    stale_after_s: float = 300.0,
    resolved_limit: int = 5,
) -> Group:
    """The whole frame of ``state.view``: a header with the view tabs, the view, the key help."""
    tabs = Text()
    for index, name in enumerate(VIEWS, 1):
        tabs.append(f" {index} {name} ", style="reverse bold" if name == state.view else "dim")
    header = Text.assemble(
        ("allele monitor", "bold"),
        f"  {snap.title}  " if snap.title else "  ",
        (time.strftime("%H:%M:%S UTC", time.gmtime(snap.now)), "dim"),
    )
    header.truncate(width, overflow="ellipsis")
    view: list[Any]
    if state.view == "overview":
        view = [
            components_view(snap, stale_after_s, limit=8),
            system_view(snap),
            alerts_view(snap, None, resolved_limit=0, limit=6),
            sparklines_view(snap, width),
            _detections_line(snap),
        ]
        if snap.clusters:
            view.insert(3, Text(f"Alert clusters: {len(snap.clusters)} (press 3)", style="yellow"))
    elif state.view == "components":
        view = [components_view(snap, stale_after_s)]
    elif state.view == "alerts":
        view = [alerts_view(snap, state.selected, resolved_limit), clusters_view(snap)]
    elif state.view == "series":
        view = [sparklines_view(snap, width)]
    else:
        view = [detections_view(snap, width)]
    if state.typing is not None:
        footer = Text.assemble(
            ("acknowledge alert (rule or id, Enter: selected): ", "bold"), state.typing, "▏"
        )
    else:
        footer = Text(state.message or _KEYS, style="yellow" if state.message else "dim")
    return Group(header, tabs, *view, footer)
