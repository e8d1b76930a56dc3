"""A real monitored workload behind a real dashboard server, for the API, stream and browser."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

TOKEN = "dashboard-test-token-0123456789"


@dataclass
class LiveDashboard:
    url: str
    engine: Any
    store_uri: str
    suite_ids: list[str]


def _stored_suites(store: Any) -> list[str]:
    """Two real runs of a tiny suite, the second of a slower variant, to compare."""
    from allele.observability.benchmarking.runner import run_suite
    from allele.observability.benchmarking.suites import Suite

    ids = []
    for size in (200, 2000):
        suite = Suite(
            name="dash",
            component="python",
            params={"size": size},
            matrix={"kernel": ["sum", "sort"]},
            runs=1,
            samples=5,
            warmup=0,
            min_time=0.001,
        )
        ids.append(run_suite(suite, store=store).suite_id)
    return ids


@pytest.fixture(scope="module")
def live_dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDashboard]:
    """A Kraken reservoir processing sequences under a live engine, served on a free port."""
    from allele.observability.config import ObservabilitySettings
    from allele.observability.dashboard import serve_dashboard
    from allele.observability.engine import ObservabilityEngine
    from allele.observability.integration import create_observable_kraken_lnn
    from allele.observability.types import AlertRule, AlertSeverity, Operator

    folder: Path = tmp_path_factory.mktemp("dashboard")
    uri = f"sqlite:///{folder / 'live.db'}"
    settings = ObservabilitySettings(store_uri=uri, collection_interval=1.0, flush_interval=1.0)
    engine = ObservabilityEngine(settings, notifiers=[])
    engine.start()
    # A rule that holds as soon as the reservoir has processed anything: a real firing alert.
    engine.alerts.add_rule(
        AlertRule(
            name="kraken_busy",
            metric="allele_kraken_sequences_total",
            operator=Operator.GT,
            threshold=0.0,
            aggregation="max",
            window_s=60.0,
            severity=AlertSeverity.WARNING,
            cooldown_s=0.0,
        )
    )
    kraken = create_observable_kraken_lnn(reservoir_size=40, seed=0, engine=engine)
    stop = threading.Event()

    def work() -> None:
        signal = np.sin(np.linspace(0, 6, 40))
        while not stop.is_set():
            kraken.process_sequence(signal)
            time.sleep(0.02)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    suite_ids = _stored_suites(engine._store)
    server = serve_dashboard(engine, host="127.0.0.1", port=0, token=TOKEN)
    try:
        yield LiveDashboard(server.url, engine, uri, suite_ids)
    finally:
        stop.set()
        worker.join(5)
        server.stop()
        engine.stop()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where browser tests write their screenshots (ALLELE_TEST_ARTIFACTS, else .artifacts/)."""
    import os

    root = Path(os.environ.get("ALLELE_TEST_ARTIFACTS", Path(__file__).parents[2] / ".artifacts"))
    folder = root / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
