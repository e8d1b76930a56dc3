"""Live updates: one snapshot a second, sent to every event-stream client as server-sent events.

One task reads the source once per interval (in a worker thread, so the event loop never waits
on the store) and encodes one message; every client gets the same bytes through its own bounded
queue. A client whose queue is full has fallen behind: it is dropped, and nobody else waits for
it, so a slow browser never slows the others or the program being watched.

A message is ``{"time", "points": {series id: {"t": [...], "v": [...]}}, "health": {component:
health}, "alerts": [changed alerts]}``; points are those newer than the previous message for
every series some client asked for, health and alerts only what changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from allele.observability.dashboard.source import StoreSource, encode, parse_series_id

logger = logging.getLogger("allele.dashboard")

QUEUE_SIZE = 8


@dataclass(eq=False)
class Client:
    """One event-stream connection: the series it follows and its queue of encoded messages."""

    series: frozenset[str]
    queue: asyncio.Queue[bytes | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_SIZE)
    )
    dropped: bool = False


class EventHub:
    """Snapshots the source every ``interval`` seconds and fans the changes out to clients."""

    def __init__(self, source: StoreSource, interval: float = 1.0) -> None:
        self.source = source
        self.interval = interval
        self.clients: set[Client] = set()
        self.dropped = 0
        self.messages = 0
        self._cursor: dict[str, float] = {}
        self._health: dict[str, str] = {}
        self._alerts: dict[str, tuple[Any, ...]] = {}
        self._task: asyncio.Task[None] | None = None

    def subscribe(self, series: frozenset[str]) -> Client:
        for sid in series:
            parse_series_id(sid)  # a bad id is refused before the stream opens
        client = Client(series)
        self.clients.add(client)
        self._ensure_running()
        return client

    def unsubscribe(self, client: Client) -> None:
        self.clients.discard(client)

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for client in list(self.clients):
            with contextlib.suppress(asyncio.QueueFull):
                client.queue.put_nowait(None)

    async def _run(self) -> None:
        # Alerts and health already present are the starting state, not changes.
        await asyncio.to_thread(self._snapshot, frozenset(), True)
        while self.clients:
            await asyncio.sleep(self.interval)
            wanted = frozenset().union(*(c.series for c in self.clients))
            try:
                message = await asyncio.to_thread(self._snapshot, wanted, False)
            except Exception:  # the stream survives a failed read; the next tick retries
                logger.exception("dashboard snapshot failed")
                continue
            self._fan_out(message)

    def _fan_out(self, message: dict[str, Any]) -> None:
        points = message["points"]
        encoded: dict[frozenset[str], bytes] = {}  # one encoding per distinct subscription
        for client in list(self.clients):
            data = encoded.get(client.series)
            if data is None:
                mine = {k: v for k, v in points.items() if k in client.series}
                data = b"data: " + encode({**message, "points": mine}) + b"\n\n"
                encoded[client.series] = data
            try:
                client.queue.put_nowait(data)
            except asyncio.QueueFull:
                client.dropped = True
                self.dropped += 1
                self.clients.discard(client)
        self.messages += 1

    def _snapshot(self, wanted: frozenset[str], initial: bool) -> dict[str, Any]:
        now = time.time()
        order = sorted(wanted)
        requests = [(*parse_series_id(sid), self._cursor.get(sid)) for sid in order]
        found, components, active_alerts = self.source.live_reads(requests)
        points: dict[str, dict[str, Any]] = {}
        for sid, (_, _, since), (ts, values) in zip(order, requests, found, strict=True):
            if since is not None and len(ts):
                keep = ts > since
                ts, values = ts[keep], values[keep]
            if since is None:
                # A new subscription starts from now: its history comes from the query API.
                self._cursor[sid] = float(ts[-1]) if len(ts) else now
                continue
            if len(ts):
                self._cursor[sid] = float(ts[-1])
                points[sid] = {"t": ts, "v": values}
        health_changes: dict[str, str] = {}
        for component in components:
            cid, health = str(component.get("component_id")), str(component.get("health"))
            if self._health.get(cid) != health:
                health_changes[cid] = health
                self._health[cid] = health
        alert_changes: list[dict[str, Any]] = []
        active = {a["alert_id"]: a for a in active_alerts}
        for alert_id, alert in active.items():
            state = (alert.get("state"), alert.get("acknowledged_at"), alert.get("value"))
            if self._alerts.get(alert_id) != state:
                self._alerts[alert_id] = state
                alert_changes.append(alert)
        for alert_id in [a for a in self._alerts if a not in active]:
            del self._alerts[alert_id]
            alert_changes.append({"alert_id": alert_id, "state": "resolved"})
        if initial:
            return {}
        return {"time": now, "points": points, "health": health_changes, "alerts": alert_changes}
