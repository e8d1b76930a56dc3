"""The terminal dashboard: the web overview in a terminal (rich), read from the same sources.

``allele monitor`` runs it. It reads a ``StoreSource`` or an ``EngineSource`` -- the data layer
the web page uses -- into a ``Snapshot`` (components, system, alerts, alert clusters, sparklines
of chosen series, anomaly detections), and draws one of five views of it, each readable at 80
columns:

* ``overview`` -- components, system, active alerts, sparklines and a detections line;
* ``components`` -- every component with its health (stale ones marked);
* ``alerts`` -- active and recently resolved alerts, and their clusters;
* ``series`` -- sparklines of the watched series, wide;
* ``detections`` -- the live anomaly detector's scores and levels, and its alerts.

On a terminal a small thread reads keys in cbreak mode and ``handle_key`` acts on them: ``1``-``5``
or Tab switch views, ``j``/``k`` select an alert, ``a`` acknowledges one (type its rule name or id
prefix, or Enter for the selected one), ``r`` refreshes, ``q`` quits. Anywhere else (CI logs,
pipes) one snapshot is printed.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from allele.errors import ValidationError
from allele.observability.dashboard.source import SeriesRef, StoreSource, parse_series_id

VIEWS = ("overview", "components", "alerts", "series", "detections")
SCORE_METRIC = "allele_anomaly_score"  # as published by ml_analytics.anomaly.live
LEVEL_METRIC = "allele_anomaly_level"
CLUSTER_TABLE = "obs_alert_clusters"  # written by the alert-intelligence router
_DEFAULT_WATCH = ("allele_system_cpu_percent", "allele_system_memory_percent")
_HEALTH = {"healthy": "green", "degraded": "yellow", "unhealthy": "red", "unknown": "dim"}
_SEVERITY = {"critical": "bold red", "error": "red", "warning": "yellow", "info": "cyan"}
_LEVEL = {0: ("normal", "green"), 1: ("warning", "yellow"), 2: ("error", "red")}
_KEYS = "1-5/tab view  j/k select  a ack  r refresh  q quit"


# --- reading ------------------------------------------------------------------------------------


def load_clusters(source: Any) -> list[dict[str, Any]]:
    """The store's alert clusters, most recently active first; ``[]`` when this install or
    this store has no cluster table (the alert-intelligence router writes it)."""
    import importlib

    store = getattr(source, "store", None)
    if store is None:
        return []
    try:  # imported by name: the module arrives with the alert-intelligence work
        alerting = importlib.import_module("allele.observability.store.repository.alerting")
    except ImportError:
        return []
    from sqlalchemy import inspect

    if not inspect(store.engine).has_table(CLUSTER_TABLE):
        return []
    clusters: list[dict[str, Any]] = alerting.AlertingRecords(store).load_clusters()
    return clusters


@dataclass
class Sparkline:
    """One watched series over the window: its id, values and newest value."""

    ref: SeriesRef
    values: list[float]

    @property
    def last(self) -> float | None:
        return self.values[-1] if self.values else None


@dataclass
class Snapshot:
    """What one frame shows; a part that could not be read holds its error in ``errors``."""

    now: float
    title: str
    window_s: float = 900.0
    components: list[dict[str, Any]] = field(default_factory=list)
    system: dict[str, Any] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    clusters: list[dict[str, Any]] = field(default_factory=list)
    sparklines: list[Sparkline] = field(default_factory=list)
    detections: list[tuple[SeriesRef, list[float], float | None]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def active_alerts(self) -> list[dict[str, Any]]:
        return [a for a in self.alerts if a.get("state") != "resolved"]


def watched(refs: Sequence[SeriesRef], patterns: Sequence[str], limit: int = 8) -> list[SeriesRef]:
    """The series to draw: those matching each ``name`` or ``name{label="v"}`` pattern (a
    pattern's labels must all be present); without patterns, the system CPU and memory."""
    chosen: list[SeriesRef] = []
    for pattern in patterns or _DEFAULT_WATCH:
        name, labels = parse_series_id(pattern)
        for ref in refs:
            if ref.name == name and set(labels.items()) <= set(ref.labels) and ref not in chosen:
                chosen.append(ref)
    return chosen[:limit]


def take_snapshot(
    source: StoreSource,
    *,
    watch: Sequence[str] = (),
    window_s: float = 900.0,
    title: str = "",
    now: float | None = None,
) -> Snapshot:
    """Read everything a frame shows from ``source``. Each part is read on its own: one
    failing read (a locked table, say) shows as that panel's error, not a blank dashboard."""
    now = time.time() if now is None else now
    snap = Snapshot(now=now, title=title, window_s=window_s)
    start = now - window_s

    def series() -> None:
        refs = source.series()
        for ref in watched(refs, watch):
            _, values = source.points(ref.name, dict(ref.labels), start, None)
            snap.sparklines.append(Sparkline(ref, [float(v) for v in values]))
        for ref in refs:
            if ref.name == SCORE_METRIC:
                _, scores = source.points(ref.name, dict(ref.labels), start, None)
                _, levels = source.points(LEVEL_METRIC, dict(ref.labels), start, None)
                level = float(levels[-1]) if len(levels) else None
                snap.detections.append((ref, [float(v) for v in scores], level))

    parts: dict[str, Callable[[], None]] = {
        "components": lambda: snap.components.extend(source.components()),
        "system": lambda: snap.system.update(source.system()),
        "alerts": lambda: snap.alerts.extend(source.alerts()),
        "clusters": lambda: snap.clusters.extend(load_clusters(source)),
        "series": series,
    }
    for name, read in parts.items():
        try:
            read()
        except Exception as exc:  # shown in its panel; the next refresh tries again
            snap.errors[name] = str(exc)
    return snap


# --- drawing ------------------------------------------------------------------------------------


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


# --- keys ---------------------------------------------------------------------------------------


def find_alert(alerts: Sequence[dict[str, Any]], name: str) -> dict[str, Any]:
    """The active alert ``name`` designates: its id, an id prefix or its rule name (one only)."""
    name = name.strip()
    active = [a for a in alerts if a.get("state") != "resolved"]
    exact = [a for a in active if a.get("alert_id") == name]
    matches = exact or [
        a
        for a in active
        if a.get("rule_name") == name or str(a.get("alert_id", "")).startswith(name)
    ]
    if not name or not matches:
        known = ", ".join(sorted({str(a.get("rule_name")) for a in active})) or "none"
        raise ValidationError(f"no active alert named {name!r}; active rules: {known}")
    if len(matches) > 1:
        ids = ", ".join(str(a.get("alert_id", ""))[:8] for a in matches)
        raise ValidationError(f"{name!r} names {len(matches)} active alerts ({ids}): type an id")
    return matches[0]


def handle_key(key: str, state: State, snap: Snapshot, source: StoreSource, by: str) -> bool:
    """Act on one key; returns whether the data must be read again (after an acknowledgement
    or ``r``). Errors (an unknown alert name, a store that refuses) become the footer message."""
    if state.typing is not None:
        if key in ("\r", "\n"):
            name, state.typing = state.typing, None
            rows = snap.active_alerts + [a for a in snap.alerts if a.get("state") == "resolved"]
            try:
                if name.strip():
                    alert = find_alert(snap.alerts, name)
                elif rows and 0 <= state.selected < len(rows):
                    alert = find_alert(snap.alerts, str(rows[state.selected].get("alert_id")))
                else:
                    raise ValidationError("no alert selected: type its rule name or id")
                source.acknowledge(str(alert["alert_id"]), by, "acknowledged in allele monitor")
            except Exception as exc:  # the store's refusal is shown, the dashboard goes on
                state.message = f"not acknowledged: {exc}"
                return False
            state.message = (
                f"acknowledged {alert.get('rule_name')} ({str(alert['alert_id'])[:8]}) as {by}"
            )
            return True
        if key == "\x1b":
            state.typing, state.message = None, "acknowledgement cancelled"
        elif key in ("\x7f", "\b"):
            state.typing = state.typing[:-1]
        elif key.isprintable():
            state.typing += key
        return False
    state.message = ""
    if key in ("1", "2", "3", "4", "5"):
        state.view = VIEWS[int(key) - 1]
    elif key in ("\t", "l", "\x1b[C"):
        state.view = VIEWS[(VIEWS.index(state.view) + 1) % len(VIEWS)]
    elif key in ("\x1b[Z", "h", "\x1b[D"):
        state.view = VIEWS[(VIEWS.index(state.view) - 1) % len(VIEWS)]
    elif key in ("j", "\x1b[B"):
        state.view = "alerts"
        state.selected = min(state.selected + 1, max(len(snap.alerts) - 1, 0))
    elif key in ("k", "\x1b[A"):
        state.view = "alerts"
        state.selected = max(state.selected - 1, 0)
    elif key == "a":
        state.typing = ""
    elif key == "r":
        return True
    elif key in ("q", "\x03"):
        state.quit = True
    return False


def split_keys(data: str) -> list[str]:
    """Keys in what the terminal sent: arrows and shift-Tab are one key of several chars."""
    keys, i = [], 0
    while i < len(data):
        if data[i] == "\x1b" and data[i + 1 : i + 2] == "[" and i + 2 < len(data):
            keys.append(data[i : i + 3])
            i += 3
        else:
            keys.append(data[i])
            i += 1
    return keys


@contextlib.contextmanager
def key_reader(keys: queue.Queue[str]) -> Iterator[None]:
    """Keys typed on stdin into ``keys``, read by a daemon thread in cbreak mode; the terminal
    is given back as it was on exit."""
    import select
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                data = os.read(fd, 64).decode(errors="replace")
                if not data:  # stdin closed
                    return
                for key in split_keys(data):
                    keys.put(key)

    tty.setcbreak(fd)
    thread = threading.Thread(target=read, name="allele-monitor-keys", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(1.0)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _has_termios() -> bool:
    """Whether keys can be read one by one here (POSIX terminals; not Windows)."""
    try:
        import termios  # noqa: F401
    except ImportError:
        return False
    return True


def run(
    source: StoreSource,
    *,
    console: Console | None = None,
    view: str = "overview",
    watch: Sequence[str] = (),
    interval: float = 2.0,
    once: bool = False,
    title: str = "",
    by: str | None = None,
    stale_after_s: float | None = None,
    resolved_limit: int = 5,
) -> None:
    """Show the dashboard of ``source``: live with keys on a terminal (until ``q`` or Ctrl-C);
    one snapshot of ``view`` when ``once`` or when input or output is not a terminal."""
    import getpass

    console = console or Console()
    state = State(view=view)
    after = stale_after() if stale_after_s is None else stale_after_s
    watch = list(watch)
    for pattern in watch:
        parse_series_id(pattern)  # a malformed --watch fails now, with its message
    snap = take_snapshot(source, watch=watch, title=title)

    def frame() -> RenderableType:
        return render(
            snap, state, width=console.width, stale_after_s=after, resolved_limit=resolved_limit
        )

    if once or not console.is_terminal or not sys.stdin.isatty() or not _has_termios():
        console.print(frame())
        return
    from rich.live import Live

    try:
        who = by or getpass.getuser()
    except OSError:  # no login name (some containers): still say where the ack came from
        who = "allele monitor"
    keys: queue.Queue[str] = queue.Queue()
    with key_reader(keys), Live(frame(), console=console, screen=True, auto_refresh=False) as live:
        next_read = time.monotonic() + interval
        try:
            while not state.quit:
                try:
                    key = keys.get(timeout=max(0.0, next_read - time.monotonic()))
                except queue.Empty:
                    key = None
                if key is None or handle_key(key, state, snap, source, who):
                    snap = take_snapshot(source, watch=watch, title=title)
                    next_read = time.monotonic() + interval
                live.update(frame(), refresh=True)
        except KeyboardInterrupt:
            pass
