"""Our exposition read by the real tools: ``promtool check metrics`` and a Prometheus server.

The server (Debian's ``prometheus``; installed here when missing and we may, skipped outside
CI otherwise) scrapes, every second, a live collector served in this process and ``allele
serve-metrics`` serving a store that two writers (two ``instance`` labels) filled. The values
its HTTP API returns -- a counter, ``rate()`` of a counter, ``histogram_quantile`` of a
histogram and of the sum over instances -- are checked against ours.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import numpy as np
import pytest

from allele.observability import buckets
from allele.observability.collector import MetricsCollector
from allele.observability.export.prometheus import exposition, metrics_asgi_app
from allele.observability.export.server import MetricsServer
from allele.observability.store import open_store
from allele.observability.types import MetricType, SeriesBatch, SeriesKey

ALLELE = [sys.executable, "-c", "from allele.cli import main; main()"]
IN_CI = os.environ.get("CI", "").lower() == "true"


def _tool(name: str) -> str:
    """The path of a Prometheus tool, installing Debian's package when it is missing."""
    found = shutil.which(name)
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", "prometheus"],
            capture_output=True,
            check=False,
            timeout=600,
        )
        found = shutil.which(name)
    if found is None:
        message = f"{name} is not installed and could not be (apt-get install prometheus)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_promtool_accepts_the_exposition_of_every_kind(tmp_path):
    promtool = _tool("promtool")
    collector = MetricsCollector()
    collector.counter("allele_test_jobs", {"queue": "a"}).inc(3)
    collector.gauge("allele_process_rss_bytes").set(1.5e6)
    timer = collector.timer("allele_test_job_seconds", {"queue": 'a "quoted"\nname'})
    for value in np.linspace(0.001, 2.0, 50):
        timer.observe(float(value))
    for distributions in ("histogram", "summary"):
        text = exposition(collector, distributions=distributions)
        done = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


@pytest.fixture
def prometheus(tmp_path) -> Iterator[tuple[str, Callable[[dict[str, str]], None]]]:
    """Start Prometheus on a free port; yields its URL and ``configure(targets)``, which
    writes the scrape configuration (1 s interval) and starts the server."""
    binary = _tool("prometheus")
    port = _free_port()
    process: list[subprocess.Popen[bytes]] = []

    def configure(targets: dict[str, str]) -> None:
        # honor_labels: a store serves several writers, each with its own ``instance``
        # label, which must win over the scrape target's (as for a Pushgateway).
        jobs = "".join(
            f"  - job_name: {job}\n    honor_labels: true\n"
            f"    static_configs:\n      - targets: ['{where}']\n"
            for job, where in targets.items()
        )
        config = tmp_path / "prometheus.yml"
        config.write_text(
            f"global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{jobs}"
        )
        process.append(
            subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=open(tmp_path / "prometheus.log", "wb"),  # noqa: SIM115
            )
        )
        _wait(lambda: httpx.get(f"http://127.0.0.1:{port}/-/ready", timeout=2).status_code == 200)

    yield f"http://127.0.0.1:{port}", configure
    for p in process:
        p.terminate()
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()


def _wait(check, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (httpx.HTTPError, KeyError, IndexError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for Prometheus")
        time.sleep(0.25)


def _query(url: str, promql: str) -> list[dict]:
    response = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10)
    response.raise_for_status()
    return response.json()["data"]["result"]


def _value(url: str, promql: str) -> float:
    (found,) = _query(url, promql)
    return float(found["value"][1])


def _serve_store(uri: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [*ALLELE, "serve-metrics", "--port", "0", "--store", uri],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "Serving metrics" in line, process.stderr.read() if process.stderr else line
    return process, line.rsplit(" at ", 1)[1].strip().removeprefix("http://").split("/")[0]


def test_prometheus_reads_our_values_rates_and_histogram_quantiles(tmp_path, prometheus):
    url, configure = prometheus
    # A store written by two processes (two instances), served by `allele serve-metrics`.
    store = open_store(f"sqlite:///{tmp_path / 'shared.db'}")
    now = time.time()
    per_instance = {"w1": np.full(40, 0.02), "w2": np.linspace(0.1, 4.0, 60)}
    for instance, values in per_instance.items():
        key = SeriesKey("allele_test_job_seconds", (("instance", instance),), MetricType.TIMER)
        total = SeriesKey("allele_test_jobs_total", (("instance", instance),), MetricType.COUNTER)
        ts = now - 5 + np.linspace(0, 4, values.size)
        store.write_batches(
            [SeriesBatch(key, ts, values), SeriesBatch(total, ts[-1:], np.array([values.size]))]
        )
    served, store_target = _serve_store(store.uri)
    # A live collector in this process: a counter growing at 200/s and a timer.
    collector = MetricsCollector()
    jobs = collector.counter("allele_live_jobs")
    timer = collector.timer("allele_live_seconds")
    observed = np.concatenate([np.full(30, 0.004), np.full(70, 0.3)])
    for value in observed:
        timer.observe(float(value))
    running = threading.Event()
    running.set()

    def work() -> None:
        while running.is_set():
            jobs.inc(2)
            collector.fold()
            time.sleep(0.01)

    worker = threading.Thread(target=work, daemon=True)
    server = MetricsServer(metrics_asgi_app(collector), port=0).start()
    try:
        worker.start()
        configure({"store": store_target, "live": f"127.0.0.1:{server.port}"})
        _wait(lambda: len(_query(url, 'up{job=~"store|live"} == 1')) == 2)
        started = time.monotonic()
        _wait(lambda: len(_query(url, "allele_live_jobs_total[8s]")[0]["values"]) >= 7)
        # rate() over the last 5 s of a counter that grows 2 per 10 ms (less on a busy
        # machine): Prometheus's rate agrees with the growth we measured over the same span.
        ours_before = jobs_total(collector)
        time.sleep(4.0)
        ours_rate = (jobs_total(collector) - ours_before) / 4.0
        theirs_rate = _value(url, "rate(allele_live_jobs_total[5s])")
        assert theirs_rate == pytest.approx(ours_rate, rel=0.35), (theirs_rate, ours_rate)
        running.clear()
        worker.join()
        final = jobs_total(collector)
        _wait(lambda: _value(url, "allele_live_jobs_total") == final)
        assert time.monotonic() - started < 60
        # histogram_quantile of the live histogram: the same interpolation over our buckets.
        live_counts = buckets.count(observed)
        for q in (0.5, 0.9, 0.99):
            theirs = _value(url, f"histogram_quantile({q}, allele_live_seconds_bucket)")
            assert theirs == pytest.approx(buckets.quantile(live_counts, q), rel=1e-9)
            # ... and within one bucket of the exact quantile of what was observed.
            exact = float(np.quantile(observed, q))
            where = np.searchsorted(buckets.BOUNDS, [theirs, exact])
            assert abs(int(where[0]) - int(where[1])) <= 1, (theirs, exact)
        # The store's two instances: each its own series; summed by le, one histogram.
        assert _value(url, 'allele_test_jobs_total{instance="w1"}') == 40
        assert _value(url, "sum(allele_test_jobs_total)") == 100
        assert _value(url, "sum(allele_test_job_seconds_count)") == 100
        both = buckets.count(np.concatenate(list(per_instance.values())))
        theirs = _value(
            url, "histogram_quantile(0.5, sum by (le) (allele_test_job_seconds_bucket))"
        )
        assert theirs == pytest.approx(buckets.quantile(both, 0.5), rel=1e-9)
    finally:
        running.clear()
        server.stop()
        served.terminate()
        served.wait(timeout=30)
        store.close()


def jobs_total(collector: MetricsCollector) -> float:
    (snap,) = collector.snapshot("allele_live_jobs")
    return float(snap.sum)
