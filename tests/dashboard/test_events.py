"""The event stream: new points arrive once a second; a client that falls behind is dropped."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import numpy as np

from .conftest import LiveDashboard


def _series_id(live: LiveDashboard) -> str:
    series = httpx.get(live.url + "api/v1/series", timeout=60).json()
    return next(s["id"] for s in series if s["name"] == "allele_kraken_sequences_total")


def test_new_points_arrive_in_order(live_dashboard: LiveDashboard) -> None:
    sid = _series_id(live_dashboard)
    messages = []
    with httpx.stream(
        "GET", live_dashboard.url + "api/v1/events", params={"series": sid}, timeout=60
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                messages.append(json.loads(line[6:]))
            if sum(len(m["points"].get(sid, {}).get("t", [])) for m in messages) >= 3:
                break
    times = [t for m in messages for t in m["points"].get(sid, {}).get("t", [])]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert all(m["time"] > time.time() - 60 for m in messages)


def test_a_client_that_falls_behind_is_dropped_without_slowing_others() -> None:
    from allele.observability.dashboard.events import QUEUE_SIZE, EventHub
    from allele.observability.dashboard.source import StoreSource

    class FakeSource(StoreSource):  # a test double: its only series grows by a point a tick
        def __init__(self) -> None:
            super().__init__(None)
            self.n = 0

        def points(self, name, labels, start, end):  # type: ignore[no-untyped-def]
            self.n += 1
            ts = np.arange(float(self.n))
            return ts, ts

        def components(self):  # type: ignore[no-untyped-def]
            return []

        def active_alerts(self):  # type: ignore[no-untyped-def]
            return []

    async def scenario() -> tuple[int, int, bool]:
        hub = EventHub(FakeSource(), interval=0.01)
        stuck = hub.subscribe(frozenset({"s"}))
        reader = hub.subscribe(frozenset({"s"}))
        got = 0
        deadline = time.monotonic() + 10
        while got < 3 * QUEUE_SIZE and time.monotonic() < deadline:
            await asyncio.wait_for(reader.queue.get(), 5)  # the reader keeps up; stuck never reads
            got += 1
        await hub.stop()
        return got, hub.dropped, stuck.dropped

    got, dropped, stuck_dropped = asyncio.run(scenario())
    assert got == 3 * QUEUE_SIZE
    assert dropped == 1 and stuck_dropped
