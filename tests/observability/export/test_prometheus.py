"""The Prometheus exposition: format details, values from a collector and a store, and serving."""

from __future__ import annotations

import asyncio
import itertools
import math
import subprocess
import sys
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from allele.errors import ValidationError
from allele.observability.clock import ManualClock
from allele.observability.collector import MetricsCollector
from allele.observability.export.prometheus import (
    CONTENT_TYPE,
    escape_label_value,
    exposition,
    format_value,
    metrics_asgi_app,
)
from allele.observability.export.samples import store_samples
from allele.observability.export.server import MetricsServer

from .conftest import LATENCIES, T0

ALLELE = [sys.executable, "-c", "from allele.cli import main; main()"]


def _families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _values(family) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    # Every collector series carries its writer's ``instance`` label (the collector's tests
    # check it; test_collector_exposition_parses... checks it is exposed): left out here.
    return {
        (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "instance"))): s.value
        for s in family.samples
    }


def test_collector_exposition_parses_with_the_reference_parser(collector, clock):
    text = exposition(collector, window_s=10, distributions="summary")
    families = _families(text)
    assert {s.labels["instance"] for s in families["requests"].samples} == {collector.instance}
    assert families["requests"].type == "counter"
    assert _values(families["requests"]) == {("requests_total", (("route", "/chat"),)): 100.0}
    memory = families["memory_bytes"]
    assert memory.type == "gauge"
    # The label value had a quote and a backslash: escaped on the wire, intact after parsing.
    assert _values(memory) == {
        ("memory_bytes", (("component_id", 'kraken "1"\\x'),)): 1000.0 + LATENCIES[-1]
    }
    latency = _values(families["latency_seconds"])
    assert families["latency_seconds"].type == "summary"
    route = (("route", "/chat"),)
    assert latency[("latency_seconds_count", route)] == 100
    assert latency[("latency_seconds_sum", route)] == pytest.approx(LATENCIES.sum())
    # Quantiles cover the last 10 s: the points folded at T0+90 .. T0+99 (now is T0+100).
    recent = LATENCIES[90:]
    for q in (0.5, 0.95, 0.99):
        key = ("latency_seconds", (("quantile", str(q)), *route))
        assert latency[key] == pytest.approx(np.quantile(recent, q))


def test_summary_count_and_sum_cover_every_observation_and_never_decrease():
    """Scrapes while the ring buffer (capacity 50) wraps: totals keep growing for rate()."""
    clock = ManualClock(start=T0)
    collector = MetricsCollector(clock=clock, capacity=50)
    latency = collector.timer("latency_seconds")
    requests = collector.counter("requests")
    recorded: list[float] = []
    scrapes = []
    for batch in range(4):  # 4 x 40 = 160 observations, more than 3 ring capacities
        for i in range(40):
            value = 0.001 * (batch * 40 + i + 1)
            latency.observe(value)
            requests.inc()
            recorded.append(value)
            clock.advance(0.5)
            collector.fold()
        text = exposition(collector, window_s=10, distributions="summary")
        latency_family = _values(_families(text)["latency_seconds"])
        requests_family = _values(_families(exposition(collector))["requests"])
        scrapes.append(
            (
                latency_family[("latency_seconds_count", ())],
                latency_family[("latency_seconds_sum", ())],
                requests_family[("requests_total", ())],
            )
        )
        assert scrapes[-1][0] == len(recorded)
        assert scrapes[-1][1] == pytest.approx(sum(recorded))
        assert scrapes[-1][2] == len(recorded)
    counts = [count for count, _, _ in scrapes]
    assert counts == [40, 80, 120, 160] and collector.points("latency_seconds")[1].size == 50
    assert all(b[1] > a[1] for a, b in itertools.pairwise(scrapes))
    # Quantiles still cover only the window: observation k was folded at T0 + k/2 and now is
    # T0 + 80, so the last 10 s (start inclusive) hold observations 140..160.
    quantile = latency_family[("latency_seconds", (("quantile", "0.5"),))]
    assert quantile == pytest.approx(np.quantile(recorded[-21:], 0.5))


def test_a_counter_is_exposed_at_zero_and_a_gauge_from_its_first_value(clock):
    collector = MetricsCollector(clock=clock)
    collector.counter("jobs", {"queue": "a"})
    collector.gauge("depth")
    families = _families(exposition(collector))
    assert _values(families["jobs"]) == {("jobs_total", (("queue", "a"),)): 0.0}
    assert "depth" not in families


def test_text_has_one_help_and_type_per_family_and_counters_end_in_total(collector):
    text = exposition(collector)
    lines = text.splitlines()
    assert lines.count("# TYPE requests_total counter") == 1
    assert lines.count("# TYPE latency_seconds histogram") == 1
    assert sum(line.startswith("# HELP memory_bytes ") for line in lines) == 1
    assert 'memory_bytes{component_id="kraken \\"1\\"\\\\x",instance=' in text
    assert text.endswith("\n")


def test_empty_quantile_window_is_nan(collector, clock):
    clock.advance(10_000)
    families = _families(exposition(collector, window_s=5, distributions="summary"))
    quantiles = [s for s in families["latency_seconds"].samples if "quantile" in s.labels]
    assert len(quantiles) == 3 and all(math.isnan(s.value) for s in quantiles)


def test_store_exposition_serves_the_latest_stored_values(store):
    # The fixture's points are from 2023: stale, so asked for explicitly (with timestamps).
    families = _families(
        exposition(store, window_s=10, distributions="summary", include_stale=True)
    )
    route = (("route", "/chat"),)
    assert _values(families["requests"]) == {("requests_total", route): 100.0}
    assert _values(families["memory_bytes"]) == {("memory_bytes", (("host", "a\nb"),)): 1099.0}
    latency = _values(families["latency_seconds"])
    assert latency[("latency_seconds_count", route)] == 100
    # The window ends at the series' last point (inclusive): the last 10 s hold 11 points.
    expected = np.quantile(LATENCIES[89:], 0.95)
    assert latency[("latency_seconds", (("quantile", "0.95"), *route))] == pytest.approx(expected)


def test_store_samples_accept_an_explicit_now(store):
    (timer,) = store_samples(store, "latency_seconds", window_s=5, now=T0 + 49)
    assert dict(timer.quantiles)[0.5] == pytest.approx(np.quantile(LATENCIES[44:50], 0.5))


def test_escaping_and_value_formatting():
    assert escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    assert [format_value(v) for v in (math.nan, math.inf, -math.inf, 2.0)] == [
        "NaN",
        "+Inf",
        "-Inf",
        "2.0",
    ]


def test_unknown_sources_and_bad_windows_are_rejected(collector):
    with pytest.raises(ValidationError, match="cannot read metrics from a int"):
        exposition(42)
    with pytest.raises(ValidationError, match="window_s=0"):
        exposition(collector, window_s=0)


async def _call(app, method: str, path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await app({"type": "http", "method": method, "path": path, "headers": []}, receive, send)
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), body


async def test_asgi_app_answers_get_head_404_and_405(collector):
    app = metrics_asgi_app(collector)
    status, headers, body = await _call(app, "GET", "/metrics")
    assert status == 200 and headers[b"content-type"] == CONTENT_TYPE.encode()
    assert "requests" in _families(body.decode())
    status, headers, body = await _call(app, "HEAD", "/metrics")
    assert status == 200 and body == b"" and int(headers[b"content-length"]) > 0
    assert (await _call(app, "GET", "/other"))[0] == 404
    status, headers, _ = await _call(app, "POST", "/metrics")
    assert status == 405 and headers[b"allow"] == b"GET, HEAD"


async def test_asgi_app_completes_the_lifespan_protocol(collector):
    messages: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    for kind in ("lifespan.startup", "lifespan.shutdown"):
        messages.put_nowait({"type": kind})
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    await metrics_asgi_app(collector)({"type": "lifespan"}, messages.get, send)
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


def test_in_process_server_is_scraped_over_http(collector):
    with MetricsServer(metrics_asgi_app(collector), port=0) as server:
        response = httpx.get(server.url, timeout=10)
        missing = httpx.get(server.url.replace("/metrics", "/nope"), timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE
    assert set(_families(response.text)) == {"requests", "memory_bytes", "latency_seconds"}
    assert missing.status_code == 404


def test_serve_metrics_command_serves_a_store_to_a_real_scrape(store):
    process = subprocess.Popen(
        [*ALLELE, "serve-metrics", "--port", "0", "--store", store.uri, "--include-stale"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "Serving metrics" in line, process.stderr.read() if process.stderr else line
        url = line.rsplit(" at ", 1)[1].strip()
        response = httpx.get(url, timeout=10)
    finally:
        process.terminate()
        process.wait(timeout=30)
    families = _families(response.text)
    assert _values(families["requests"]) == {("requests_total", (("route", "/chat"),)): 100.0}
    assert families["latency_seconds"].type == "histogram"


def test_serve_metrics_reports_a_bad_store_uri():
    done = subprocess.run(
        [*ALLELE, "serve-metrics", "--store", "nope://x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "nope" in done.stderr


def _host_app(metrics_app, mount: str, strip_prefix: bool):
    """A minimal host ASGI application that mounts ``metrics_app`` under ``mount`` the way
    frameworks do: Starlette keeps the full path and sets ``root_path``; others strip it."""

    async def host(scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith(mount):
            inner = dict(scope, root_path=scope.get("root_path", "") + mount)
            if strip_prefix:
                inner["path"] = scope["path"][len(mount) :] or "/"
            await metrics_app(inner, receive, send)
            return
        if scope["type"] == "lifespan":
            await metrics_app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"host app"})

    return host


@pytest.mark.parametrize("strip_prefix", [False, True])
@pytest.mark.parametrize(
    ("mount", "url"), [("/metrics", "/metrics"), ("/observability", "/observability/metrics")]
)
async def test_asgi_app_mounted_in_a_host_app_answers_at_the_mount(
    collector, mount, url, strip_prefix
):
    host = _host_app(metrics_asgi_app(collector), mount, strip_prefix)
    transport = httpx.ASGITransport(app=host)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        scraped = await client.get(url)
        other = await client.get("/")
        missing = await client.get(mount + "/nothing-here")
    assert scraped.status_code == 200, scraped.text
    assert _values(_families(scraped.text)["requests"]) == {
        ("requests_total", (("route", "/chat"),)): 100.0
    }
    assert other.text == "host app"
    assert missing.status_code == 404


def test_asgi_app_served_by_uvicorn_is_scraped(collector):
    """The handler inside a real ASGI server (uvicorn), mounted in a host app, over TCP."""
    uvicorn = pytest.importorskip("uvicorn")
    import threading
    import time

    host = _host_app(metrics_asgi_app(collector), "/observability", strip_prefix=False)
    config = uvicorn.Config(host, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        response = httpx.get(f"http://127.0.0.1:{port}/observability/metrics", timeout=10)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE
    families = _families(response.text)
    assert set(families) == {"requests", "memory_bytes", "latency_seconds"}
    assert (
        _values(families["latency_seconds"])[("latency_seconds_count", (("route", "/chat"),))]
        == 100
    )
