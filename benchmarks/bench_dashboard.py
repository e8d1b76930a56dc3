"""The dashboard's speed: API query latency, the cost of many event streams, the first render.

* A one-hour query of a 1 s series through the REST API (p99 over 200 requests), beside the
  same query through the store directly, on a store holding a day of that series.
* 100 concurrent event-stream clients at 1 s updates: the server process's CPU, as a share of
  one core, over 20 s (the clients run in another process).
* The overview's first render in headless Chromium (navigation to the components, the system
  panel and the alerts drawn), with a day of data in the store; median of 5 loads.
* The monitored workload's overhead with its dashboard (``serve_dashboard(engine)``, served from
  a child process) and 100 clients following it, against the same workload with plain
  monitoring, and with the server on a thread of the workload's process (``isolated=False``),
  the three interleaved in rounds of 2 s blocks: wall time, the workload thread's own CPU and
  its GIL waits per second.

    .venv/bin/python benchmarks/bench_dashboard.py           # about 2 minutes
    .venv/bin/python benchmarks/bench_dashboard.py --only api
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

DAY = 86_400


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fill_store(uri: str) -> str:
    """A day of a 1 s series, system series and one component in the store at ``uri``."""
    from allele.observability.store import open_store
    from allele.observability.types import (
        ComponentMetrics,
        ComponentType,
        HealthStatus,
        MetricType,
        PerformanceMetrics,
        SeriesBatch,
        SeriesKey,
    )

    store = open_store(uri)
    now = time.time()
    ts = now - DAY + np.arange(float(DAY))
    rng = np.random.default_rng(0)
    key = SeriesKey("latency_seconds", (("component_id", "agent"),), MetricType.GAUGE)
    batches = [
        SeriesBatch(key, ts[i : i + 600], 0.02 + rng.gamma(2, 0.005, 600))
        for i in range(0, DAY, 600)
    ]
    for name in ("allele_system_cpu_percent", "allele_system_memory_percent"):
        batches.append(
            SeriesBatch(
                SeriesKey(name, (), MetricType.GAUGE), ts[::10], rng.uniform(10, 60, DAY // 10)
            )
        )
    store.write_batches(batches)
    store.upsert_components(
        [
            ComponentMetrics(
                component_id="agent",
                component_type=ComponentType.NLP_AGENT,
                health=HealthStatus.HEALTHY,
                performance=PerformanceMetrics(operation_count=10, latency_p50_s=0.02),
            )
        ]
    )
    store.close()
    return 'latency_seconds{component_id="agent"}'


def _serve(uri: str, port: int) -> subprocess.Popen[bytes]:
    code = (
        "import threading\n"
        "from allele.observability.dashboard.server import DashboardServer, build_app\n"
        "from allele.observability.dashboard.source import StoreSource\n"
        "from allele.observability.store import open_store\n"
        f"app = build_app(StoreSource(open_store({uri!r})), '127.0.0.1', None)\n"
        f"DashboardServer(app, '127.0.0.1', {port}).start()\n"
        "print('ready', flush=True)\n"
        "threading.Event().wait()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.readline()
    return proc


def api_latency(uri: str, sid: str) -> None:
    import httpx

    from allele.observability.dashboard.source import parse_series_id
    from allele.observability.store import open_store

    port = _free_port()
    server = _serve(uri, port)
    try:
        url = f"http://127.0.0.1:{port}/api/v1/series/query"
        api_times = []
        with httpx.Client(timeout=30) as client:
            client.get(url, params={"id": sid, "range": "1h"})  # warm
            for _ in range(200):
                t = time.perf_counter()
                body = client.get(url, params={"id": sid, "range": "1h"}).json()
                api_times.append(time.perf_counter() - t)
        store = open_store(uri)
        name, labels = parse_series_id(sid)
        direct = []
        for _ in range(200):
            end = time.time()
            t = time.perf_counter()
            store.query_series(name, labels, end - 3600, end)
            direct.append(time.perf_counter() - t)
        store.close()
    finally:
        server.terminate()
        server.wait(10)
    p99_api, p99_store = np.percentile(api_times, 99), np.percentile(direct, 99)
    print(
        f"RATIO one-hour query of a 1 s series ({len(body['t'])} points, a day stored): "
        f"api p99={p99_api * 1e3:.1f}ms store p99={p99_store * 1e3:.1f}ms "
        f"ratio={p99_api / p99_store:.1f}x (target: api p99 <= 20 ms); "
        f"medians {np.median(api_times) * 1e3:.1f}ms / {np.median(direct) * 1e3:.1f}ms"
    )


async def _clients(url: str, n: int, seconds: float) -> int:
    import httpx

    received = 0

    async def one(client: httpx.AsyncClient) -> None:
        nonlocal received
        async with client.stream("GET", url) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    received += 1

    async with httpx.AsyncClient(timeout=None, limits=httpx.Limits(max_connections=n + 10)) as c:
        tasks = [asyncio.create_task(one(c)) for _ in range(n)]
        await asyncio.sleep(seconds)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return received


def _run_clients(url: str, n: int, seconds: float, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    out.put(asyncio.run(_clients(url, n, seconds)))


def stream_cost(uri: str, sid: str, clients: int = 100, seconds: float = 20.0) -> None:
    import psutil

    port = _free_port()
    server = _serve(uri, port)
    try:
        url = f"http://127.0.0.1:{port}/api/v1/events?series={sid}"
        out: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
        proc = multiprocessing.Process(target=_run_clients, args=(url, clients, seconds + 4, out))
        proc.start()
        time.sleep(3)  # let every client connect
        ps = psutil.Process(server.pid)
        before = ps.cpu_times()
        t = time.monotonic()
        time.sleep(seconds)
        after = ps.cpu_times()
        wall = time.monotonic() - t
        received = out.get(timeout=60)
        proc.join(10)
    finally:
        server.terminate()
        server.wait(10)
    cpu = (after.user + after.system - before.user - before.system) / wall
    print(
        f"RATIO {clients} event-stream clients at 1 s updates: server CPU={cpu:.1%} of one core "
        f"over {seconds:.0f}s ({received} messages received; target <= 10%)"
    )


def first_render(uri: str) -> None:
    from playwright.sync_api import sync_playwright

    port = _free_port()
    server = _serve(uri, port)
    args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]
    times = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
            for _ in range(6):
                page = browser.new_page()
                t = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}/#overview")
                page.wait_for_selector(".card[data-component]")
                page.wait_for_selector("#system dd")
                page.wait_for_selector("#firing li")
                times.append(time.perf_counter() - t)
                page.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(10)
    median = statistics.median(times[1:])
    print(
        f"RATIO overview first render with a day of data: median={median * 1e3:.0f}ms "
        f"over {len(times) - 1} loads (target <= 1000 ms)"
    )


def _thread_figures() -> tuple[float, float]:
    """The calling thread's CPU seconds and voluntary context switches so far (Linux /proc).

    A CPU-bound workload thread sleeps only to wait for the GIL: its voluntary switches count
    how often a background thread took the GIL from it, the mechanism by which a server in the
    same process slows it (see "Sharing the GIL" in docs/architecture.md)."""
    tid = threading.get_native_id()
    with open(f"/proc/self/task/{tid}/schedstat") as stat:
        on_cpu = int(stat.read().split()[0]) / 1e9
    with open(f"/proc/self/task/{tid}/status") as status:
        switches = next(
            float(line.split(":")[1]) for line in status if line.startswith("voluntary_ctxt")
        )
    return on_cpu, switches


def _workload_block(kraken: object, seconds: float) -> tuple[float, float, float]:
    """Wall and own CPU seconds per sequence, and GIL waits per second, over ``seconds``."""
    signal = np.sin(np.linspace(0, 6, 50))
    done = 0
    cpu0, waits0 = _thread_figures()
    t = time.perf_counter()
    while time.perf_counter() - t < seconds:
        kraken.process_sequence(signal)  # type: ignore[attr-defined]
        done += 1
    wall = time.perf_counter() - t
    cpu1, waits1 = _thread_figures()
    return wall / done, (cpu1 - cpu0) / done, (waits1 - waits0) / wall


def workload_overhead(pairs: int = 10, clients: int = 100) -> None:
    """Monitored Kraken with its dashboard and 100 clients vs the same monitored Kraken alone.

    Three variants in every round, in rotating order: ``none`` (plain monitoring, no server),
    ``child`` (``serve_dashboard(engine)`` as it serves: from a child process reading the
    engine over a connection) and ``thread`` (``isolated=False``: uvicorn on a thread of the
    workload's process, what an engine with an in-memory store gets). A server is started
    before its block and stopped after; the clients connect 1.5 s before the block."""
    from allele.observability.config import ObservabilitySettings
    from allele.observability.dashboard import serve_dashboard
    from allele.observability.engine import ObservabilityEngine
    from allele.observability.integration import create_observable_kraken_lnn

    engine = ObservabilityEngine(ObservabilitySettings(store_uri=""), notifiers=[])
    engine.start()
    kraken = create_observable_kraken_lnn(reservoir_size=100, seed=0, engine=engine)
    series = next(k for k in engine.collector.series_keys() if "kraken" in k.name)
    sid = series.name + "{" + ",".join(f'{k}="{v}"' for k, v in series.labels) + "}"
    variants = ("none", "child", "thread")
    figures: dict[str, list[tuple[float, float, float]]] = {v: [] for v in variants}
    try:
        for i in range(pairs):
            for variant in variants[i % 3 :] + variants[: i % 3]:
                if variant == "none":
                    time.sleep(1.5)
                    figures[variant].append(_workload_block(kraken, 2.0))
                    continue
                server = serve_dashboard(
                    engine, host="127.0.0.1", port=0, isolated=variant == "child"
                )
                out: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
                proc = multiprocessing.Process(
                    target=_run_clients,
                    args=(server.url + f"api/v1/events?series={sid}", clients, 4.0, out),
                )
                proc.start()
                time.sleep(1.5)
                figures[variant].append(_workload_block(kraken, 2.0))
                proc.join(10)
                server.stop()
    finally:
        engine.stop()
    base = [statistics.median(f[j] for f in figures["none"]) for j in range(3)]
    for variant, where in (
        ("child", "served from a child process"),
        ("thread", "server on a thread in the process"),
    ):
        wall, cpu, waits = (statistics.median(f[j] for f in figures[variant]) for j in range(3))
        print(
            f"RATIO workload overhead of the dashboard with {clients} clients ({where}, "
            f"monitored Kraken both ways): wall {wall / base[0] - 1:+.2%}, workload thread's "
            f"own CPU {cpu / base[1] - 1:+.2%}, GIL waits {waits:.1f}/s vs {base[2]:.1f}/s "
            f"without, over {pairs} rounds of 2 s blocks (target < 1%)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["api", "stream", "render", "overhead"], default=None)
    parser.add_argument("--rounds", type=int, default=10, help="rounds of the overhead blocks")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with threadpool_limits(1), tempfile.TemporaryDirectory() as folder:
        uri = f"sqlite:///{Path(folder) / 'day.db'}"
        sid = _fill_store(uri)
        if args.only in (None, "api"):
            api_latency(uri, sid)
        if args.only in (None, "stream"):
            stream_cost(uri, sid)
        if args.only in (None, "render"):
            first_render(uri)
        if args.only in (None, "overhead"):
            workload_overhead(pairs=args.rounds)


if __name__ == "__main__":
    main()
