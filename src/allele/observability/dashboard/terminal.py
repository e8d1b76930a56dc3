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

import queue
import sys
import time
from collections.abc import Sequence

from rich.console import Console, RenderableType

from allele.observability.dashboard.source import StoreSource, parse_series_id
from allele.observability.dashboard.terminal_keys import (
    _has_termios,
    find_alert,
    handle_key,
    key_reader,
    split_keys,
)
from allele.observability.dashboard.terminal_snapshot import (
    CLUSTER_TABLE,
    LEVEL_METRIC,
    SCORE_METRIC,
    VIEWS,
    Snapshot,
    Sparkline,
    load_clusters,
    take_snapshot,
    watched,
)
from allele.observability.dashboard.terminal_views import (
    State,
    alerts_view,
    clusters_view,
    components_view,
    detections_view,
    is_stale,
    render,
    sparklines_view,
    stale_after,
    system_view,
)

__all__ = [
    "CLUSTER_TABLE",
    "LEVEL_METRIC",
    "SCORE_METRIC",
    "VIEWS",
    "Snapshot",
    "Sparkline",
    "State",
    "alerts_view",
    "clusters_view",
    "components_view",
    "detections_view",
    "find_alert",
    "handle_key",
    "is_stale",
    "key_reader",
    "load_clusters",
    "render",
    "run",
    "sparklines_view",
    "split_keys",
    "stale_after",
    "system_view",
    "take_snapshot",
    "watched",
]


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
