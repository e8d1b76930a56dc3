"""Silences, incidents (alert clusters) and detections through the API, on a real store."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest

from allele.observability.dashboard.app import create_app
from allele.observability.dashboard.server import DashboardServer
from allele.observability.dashboard.source import StoreSource
from allele.observability.store import open_store

TOKEN = "alerting-api-token-0123456789"


class Client(httpx.Client):
    """An HTTP client of a real dashboard server over a store of the test's own."""

    store: object


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    server = DashboardServer(create_app(StoreSource(store), token=TOKEN), "127.0.0.1", 0).start()
    with Client(base_url=server.url, timeout=60) as http:
        http.store = store
        yield http
    server.stop()
    store.close()


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_silences_are_added_listed_and_expired_with_the_token(client: Client) -> None:
    body = {"matchers": ['component_id="db"'], "created_by": "ops", "comment": "maintenance"}
    refused = client.post("/api/v1/silences", json=body)
    assert refused.status_code == 403
    made = client.post("/api/v1/silences", json={**body, "duration": "2h"}, headers=AUTH)
    assert made.status_code == 200, made.text
    silence = made.json()
    ends = datetime.fromisoformat(silence["ends_at"]) - datetime.fromisoformat(silence["starts_at"])
    assert ends == timedelta(hours=2)
    listed = client.get("/api/v1/silences").json()
    assert [(s["silence_id"], s["state"]) for s in listed] == [(silence["silence_id"], "active")]
    done = client.post(f"/api/v1/silences/{silence['silence_id']}/expire", headers=AUTH)
    assert done.status_code == 200
    assert client.get("/api/v1/silences", params={"state": "active"}).json() == []
    bad = client.post("/api/v1/silences", json={**body, "duration": "soon"}, headers=AUTH)
    assert bad.status_code == 400 and "duration='soon'" in bad.json()["error"]
    bad = client.post("/api/v1/silences", json={**body, "matchers": ["component_id"]}, headers=AUTH)
    assert bad.status_code == 400


def test_incidents_list_root_causes_and_can_be_taken(client: Client, tmp_path: Path) -> None:
    from allele.observability.ml_analytics import (
        AlertIntelligenceConfig,
        AnomalyResult,
        AnomalyType,
        IntelligentAlertManager,
    )
    from allele.observability.store.repository.alerting import AlertingRecords
    from allele.observability.types import AlertSeverity, ComponentType

    topology = {"agent": ["llm"], "llm": []}
    manager = IntelligentAlertManager(
        AlertIntelligenceConfig(clustering_algorithm="simple"), topology=topology
    )
    t0 = datetime.now(UTC)
    anomalies = [
        AnomalyResult(
            t0 + timedelta(seconds=s),
            ComponentType.LLM_CLIENT if c == "llm" else ComponentType.NLP_AGENT,
            c,
            m,
            AnomalyType.LATENCY_SPIKE,
            0.95,
            0.9,
            AlertSeverity.ERROR,
            9.0,
            1.0,
            8.0,
            0.9,
        )
        for s, c, m in ((0, "llm", "latency_ms"), (20, "agent", "latency_ms"))
    ]
    alerts = asyncio.run(manager.process_alerts(anomalies))
    clusters = asyncio.run(manager.correlator.process_alert_batch(alerts))
    store = client.store
    AlertingRecords(store).save_clusters([dataclasses.asdict(c) for c in clusters])
    listed = client.get("/api/v1/clusters").json()
    assert len(listed) == 1 and len(listed[0]["alerts"]) == 2
    assert listed[0]["root_cause_candidates"][0] == "llm:latency_ms"  # upstream first
    cid = listed[0]["cluster_id"]
    assert client.post(f"/api/v1/clusters/{cid}/acknowledge", json={"by": "ops"}).status_code == 403
    taken = client.post(f"/api/v1/clusters/{cid}/acknowledge", json={"by": "ops"}, headers=AUTH)
    assert taken.status_code == 200
    assert client.get("/api/v1/clusters").json()[0]["common_attributes"]["acknowledged_by"] == "ops"


def test_detections_of_a_stored_series(client: Client) -> None:
    from allele.observability.types import MetricType, SeriesBatch, SeriesKey

    store = client.store
    rng = np.random.default_rng(0)
    now = time.time()
    ts = now - 3000 + np.arange(3000.0)
    values = 100 + rng.normal(0, 1, 3000)
    values[2500] = 160.0
    key = SeriesKey("latency_ms", (("component_id", "llm"),), MetricType.GAUGE)
    store.write_batches([SeriesBatch(key, ts, values)])
    found = client.get(
        "/api/v1/analytics/anomalies",
        params={"id": 'latency_ms{component_id="llm"}', "range": "1h"},
    )
    assert found.status_code == 200, found.text
    body = found.json()
    assert len(body["score"]) == 3000
    assert any(abs(d["t"] - ts[2500]) < 1e-6 and d["v"] == 160.0 for d in body["detections"])
