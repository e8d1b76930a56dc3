"""Alert intelligence: the design documents' example, deduplication, clustering, root causes,
priority, escalation and the routing of clusters, on a ManualClock."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from allele.errors import ConfigurationError, ValidationError
from allele.observability.clock import ManualClock
from allele.observability.ml_analytics import (
    AlertCluster,
    AlertIntelligenceConfig,
    AnomalyResult,
    AnomalyType,
    IntelligentAlertManager,
)
from allele.observability.ml_analytics.alert_intelligence.correlator import AlertCorrelator
from allele.observability.ml_analytics.alert_intelligence.manager import cluster_routing
from allele.observability.ml_analytics.alert_intelligence.storm import generate_storm
from allele.observability.receivers import Notification, Receiver
from allele.observability.routing import Router
from allele.observability.types import AlertSeverity, ComponentType

BASE = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
TOPOLOGY = {"kraken": ["db"], "agent": ["kraken"], "web": ["agent"], "chat": ["llm"]}


def anomaly(
    component: str,
    metric: str,
    seconds: float,
    kind: AnomalyType = AnomalyType.LATENCY_SPIKE,
    severity: AlertSeverity = AlertSeverity.ERROR,
    value: float = 3.0,
    **context: Any,
) -> AnomalyResult:
    return AnomalyResult(
        timestamp=BASE + timedelta(seconds=seconds),
        component_type=ComponentType.NLP_AGENT,
        component_id=component,
        metric_name=metric,
        anomaly_type=kind,
        anomaly_score=0.9,
        confidence=0.8,
        severity=severity,
        actual_value=value,
        expected_value=1.0,
        deviation=value - 1.0,
        threshold=2.0,
        context={"at": seconds, **context},
    )


def cascade(start: float = 0.0, root_late: bool = False) -> list[AnomalyResult]:
    """db breaks; kraken, agent and web follow (db's detector is slow when ``root_late``)."""
    root_at = start + (90 if root_late else 0)
    return [
        anomaly("db", "query_latency_ms", root_at),
        anomaly("db", "query_latency_ms", root_at + 10),
        anomaly("kraken", "latency_ms", start + 30),
        anomaly("kraken", "latency_ms", start + 40),
        anomaly("agent", "error_rate", start + 60, AnomalyType.ERROR_RATE_SPIKE),
        anomaly("agent", "error_rate", start + 70, AnomalyType.ERROR_RATE_SPIKE),
        anomaly("web", "latency_ms", start + 80),
        anomaly("web", "latency_ms", start + 90),
    ]


class RecordingIntegration:
    """A fake receiver integration that keeps what it is sent."""

    send_resolved = True

    def __init__(self) -> None:
        self.got: list[Notification] = []

    def send(self, notification: Notification) -> None:
        self.got.append(notification)

    def close(self) -> None:
        pass


# --- the design documents' API -------------------------------------------------------------------


async def test_the_design_documents_example_runs_as_written() -> None:
    anomalies = [*cascade(), anomaly("web", "cpu", 3000, AnomalyType.CPU_OVERLOAD)]
    config = AlertIntelligenceConfig(
        clustering_algorithm="dbscan", similarity_threshold=0.8, deduplication_window_minutes=30
    )
    manager = IntelligentAlertManager(config)
    alerts = await manager.process_alerts(anomalies)
    clusters = await manager.correlator.process_alert_batch(alerts)
    lines = []
    for cluster in clusters:
        lines.append(f"Cluster: {cluster.cluster_id}")
        lines.append(f"Type: {cluster.cluster_type}")
        lines.append(f"Confidence: {cluster.confidence:.2f}")
        lines.append(f"Priority: {cluster.priority_score:.2f}")
    assert len(alerts) == 5 and len(clusters) == 2 and len(lines) == 8
    assert all(isinstance(c, AlertCluster) for c in clusters)
    assert sorted(c.cluster_type for c in clusters) == ["cascade", "isolated"]
    for cluster in clusters:
        assert 0.0 <= cluster.confidence <= 1.0 and 0.0 < cluster.priority_score <= 1.0


def test_config_has_every_field_of_the_design_documents_and_validates() -> None:
    names = [f.name for f in dataclasses.fields(AlertIntelligenceConfig)]
    assert names == [
        "clustering_algorithm",
        "clustering_eps",
        "clustering_min_samples",
        "similarity_threshold",
        "correlation_window_minutes",
        "deduplication_window_minutes",
        "auto_acknowledge_duplicates",
        "max_root_cause_candidates",
        "escalation_time_minutes",
        "priority_factors",
    ]
    config = AlertIntelligenceConfig()
    assert (config.clustering_algorithm, config.clustering_eps, config.clustering_min_samples) == (
        "dbscan",
        0.5,
        3,
    )
    for bad, match in (
        ({"clustering_algorithm": "optics"}, "allowed: dbscan, kmeans, hierarchical, simple"),
        ({"clustering_eps": 0.0}, "clustering_eps"),
        ({"similarity_threshold": 1.5}, "similarity_threshold"),
        ({"escalation_time_minutes": 0}, "escalation_time_minutes"),
        ({"priority_factors": {"colour": 1.0}}, "unknown"),
        ({"priority_factors": {"severity": -1}}, "weight"),
    ):
        with pytest.raises(ConfigurationError, match=match):
            AlertIntelligenceConfig(**bad)


# --- deduplication -------------------------------------------------------------------------------


async def test_duplicates_merge_within_the_window_with_their_contexts() -> None:
    manager = IntelligentAlertManager(AlertIntelligenceConfig(deduplication_window_minutes=5))
    first = await manager.process_alerts(
        [anomaly("db", "latency_ms", 0, value=3.0), anomaly("db", "latency_ms", 60, value=5.0)]
    )
    [merged] = first
    assert merged["count"] == 2 and [c["at"] for c in merged["merged_contexts"]] == [0, 60]
    assert merged["actual_value"] == 5.0 and merged["component_id"] == "db"
    later = await manager.process_alerts(
        [
            anomaly("db", "latency_ms", 200),  # still within 5 min of the last one: same alert
            anomaly("db", "error_rate", 210, AnomalyType.ERROR_RATE_SPIKE),  # another metric
            anomaly("db", "latency_ms", 1000),  # more than 5 min after the last one: new alert
        ]
    )
    assert [a["count"] for a in later] == [3, 1, 1]
    assert later[0]["alert_id"] == merged["alert_id"]
    assert len({a["alert_id"] for a in later}) == 3


async def test_auto_acknowledge_duplicates_acts_on_the_stores_alerts() -> None:
    from allele.observability.store import open_store

    for auto in (True, False):
        with open_store("sqlite://") as store:
            config = AlertIntelligenceConfig(auto_acknowledge_duplicates=auto)
            manager = IntelligentAlertManager(config, store=store, clock=ManualClock())
            [alert] = await manager.process_alerts(
                [anomaly("db", "latency_ms", 0), anomaly("db", "latency_ms", 30)]
            )
            stored = {a.alert_id: a.to_dict() for a in store.load_alerts()}
            assert len(stored) == 2
            [dup] = [a for a in stored.values() if a.get("duplicate_of")]
            assert dup["duplicate_of"] == alert["alert_id"]
            primary = stored[alert["alert_id"]]
            assert primary["state"] == "firing" and primary["count"] == 2
            assert primary.get("acknowledged_by") is None
            if auto:
                assert dup["acknowledged_by"] == "alert-intelligence"
                assert dup["acknowledgement_comment"] == f"duplicate of {alert['alert_id']}"
                assert manager.duplicates_acknowledged == 1
            else:
                assert dup.get("acknowledged_by") is None


def test_bad_alerts_are_named() -> None:
    correlator = AlertCorrelator(AlertIntelligenceConfig())
    with pytest.raises(ValidationError, match="component_id"):
        correlator.correlate([{"timestamp": BASE, "metric_name": "x"}])
    with pytest.raises(ValidationError, match="timezone-aware"):
        correlator.correlate(
            [{"timestamp": BASE.replace(tzinfo=None), "component_id": "a", "metric_name": "x"}]
        )


# --- clustering and root causes ---------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["dbscan", "kmeans", "hierarchical", "simple"])
async def test_every_algorithm_separates_two_unrelated_cascades_and_noise(algorithm: str) -> None:
    manager = IntelligentAlertManager(
        AlertIntelligenceConfig(clustering_algorithm=algorithm), TOPOLOGY
    )
    llm = [
        anomaly("llm", "error_rate", 20, AnomalyType.ERROR_RATE_SPIKE),
        anomaly("llm", "error_rate", 30, AnomalyType.ERROR_RATE_SPIKE),
    ]
    noise = [anomaly("web", "cpu", 5000, AnomalyType.CPU_OVERLOAD)]
    alerts = await manager.process_alerts(cascade() + llm + noise)
    clusters = await manager.correlator.process_alert_batch(alerts)
    by_root = {c.root_cause_candidates[0]: c for c in clusters}
    assert sorted(by_root) == ["db:query_latency_ms", "llm:error_rate", "web:cpu"]
    assert sorted(c.common_attributes["components"] for c in clusters) == [
        ["agent", "db", "kraken", "web"],
        ["llm"],
        ["web"],
    ]


async def test_the_root_ranks_first_even_when_detected_after_its_dependents() -> None:
    manager = IntelligentAlertManager(AlertIntelligenceConfig(), TOPOLOGY)
    alerts = await manager.process_alerts(cascade(root_late=True))
    [cluster] = await manager.correlator.process_alert_batch(alerts)
    assert cluster.root_cause_candidates == [
        "db:query_latency_ms",
        "kraken:latency_ms",
        "agent:error_rate",
        "web:latency_ms",
    ]
    assert cluster.first_alert_time == BASE + timedelta(seconds=30)
    assert cluster.duration_minutes == pytest.approx(70 / 60)
    assert "most likely root cause db:query_latency_ms" in cluster.impact_assessment


async def test_without_topology_history_learned_from_the_store_orders_the_causes() -> None:
    from allele.observability.store import open_store

    late_root = [
        anomaly("agent", "error_rate", 0, AnomalyType.ERROR_RATE_SPIKE),
        anomaly("agent", "error_rate", 10, AnomalyType.ERROR_RATE_SPIKE),
        anomaly("db", "query_latency_ms", 20),
        anomaly("db", "query_latency_ms", 30),
    ]
    fresh = IntelligentAlertManager(AlertIntelligenceConfig())
    [cluster] = await fresh.correlator.process_alert_batch(await fresh.process_alerts(late_root))
    assert cluster.root_cause_candidates[0] == "agent:error_rate"  # time alone is fooled
    with open_store("sqlite://") as store:
        past = IntelligentAlertManager(AlertIntelligenceConfig(), store=store)
        for day in range(5):  # past incidents where db led agent by a minute
            start = (day + 1) * 86400
            await past.correlator.process_alert_batch(
                await past.process_alerts(
                    [
                        anomaly("db", "query_latency_ms", start),
                        anomaly("db", "query_latency_ms", start + 10),
                        anomaly("agent", "error_rate", start + 60, AnomalyType.ERROR_RATE_SPIKE),
                        anomaly("agent", "error_rate", start + 70, AnomalyType.ERROR_RATE_SPIKE),
                    ]
                )
            )
        learned = IntelligentAlertManager(AlertIntelligenceConfig(), store=store)
        assert learned.correlator.history.clusters_learned == 5
        [cluster] = await learned.correlator.process_alert_batch(
            await learned.process_alerts(late_root)
        )
    assert cluster.root_cause_candidates[0] == "db:query_latency_ms"


async def test_priority_follows_priority_factors() -> None:
    async def score(severity: AlertSeverity, factors: dict[str, float]) -> float:
        manager = IntelligentAlertManager(AlertIntelligenceConfig(priority_factors=factors))
        alerts = await manager.process_alerts([anomaly("db", "x", 0, severity=severity)])
        [cluster] = await manager.correlator.process_alert_batch(alerts)
        return cluster.priority_score

    assert await score(AlertSeverity.CRITICAL, {"severity": 1.0}) == pytest.approx(1.0)
    assert await score(AlertSeverity.WARNING, {"severity": 1.0}) == pytest.approx(1 / 3)
    assert await score(AlertSeverity.WARNING, {"anomaly_score": 1.0}) == pytest.approx(0.9)
    default = await score(AlertSeverity.ERROR, {})
    assert default == pytest.approx(
        0.4 * 2 / 3
        + 0.2 * 0.9
        + 0.2 * (1 - 2.718281828**-0.1)
        + 0.2 * (1 - 2.718281828 ** (-1 / 3))
    )


# --- routing, escalation, storage ---------------------------------------------------------------


def routed_manager(clock: ManualClock, **config: Any) -> tuple[IntelligentAlertManager, Any]:
    sink = RecordingIntegration()
    router = Router(
        cluster_routing(Receiver("ops", [sink]), group_wait_s=30, group_interval_s=300),
        clock=clock,
    )
    manager = IntelligentAlertManager(
        AlertIntelligenceConfig(**config), TOPOLOGY, router=router, clock=clock
    )
    return manager, sink


async def test_one_notification_per_cluster_updated_as_it_grows_then_resolved() -> None:
    clock = ManualClock(start=BASE.timestamp())
    manager, sink = routed_manager(clock)
    steps = cascade()
    for k in range(0, 200, 10):
        batch = [a for a in steps if a.timestamp == BASE + timedelta(seconds=k)]
        await manager.handle(batch)
        clock.advance(10)
    [first] = sink.got  # at 30 s: what the cluster held then
    assert [a.labels["component_id"] for a in first.alerts] == ["db", "kraken"]
    assert first.sent_at == BASE + timedelta(seconds=30)
    assert first.group_labels == {"cluster_id": first.alerts[0].labels["cluster_id"]}
    clock.advance(130)
    manager.tick()
    [first, update] = sink.got
    assert update.group_key == first.group_key
    assert [a.labels["component_id"] for a in update.alerts] == ["db", "kraken", "agent", "web"]
    assert update.alerts[0].annotations["root_cause_candidates"].startswith("db:query_latency_ms")
    for _ in range(40):  # quiet: the cluster resolves as a whole after resolve_timeout
        clock.advance(10)
        manager.tick()
    assert [n.status for n in sink.got] == ["firing", "firing", "resolved"]
    assert len(sink.got[-1].alerts) == 4


async def test_an_alert_its_clusters_root_does_not_explain_is_told_within_group_wait() -> None:
    # agent depends on kraken (db's cascade) and on llm: agent's alert may come from llm too (not
    # in the cluster), and an llm alert joins db's cluster through agent, but db does not
    # explain it. Either may be another incident's first alert.
    clock = ManualClock(start=BASE.timestamp())
    sink = RecordingIntegration()
    router = Router(
        cluster_routing(Receiver("ops", [sink]), group_wait_s=30, group_interval_s=300),
        clock=clock,
    )
    topology = {"kraken": ["db"], "agent": ["kraken", "llm"]}
    manager = IntelligentAlertManager(
        AlertIntelligenceConfig(), topology, router=router, clock=clock
    )
    steps = [*cascade()[:6], anomaly("llm", "error_rate", 100, AnomalyType.ERROR_RATE_SPIKE)]
    for k in range(0, 140, 10):
        await manager.handle([a for a in steps if a.timestamp == BASE + timedelta(seconds=k)])
        clock.advance(10)
    first, agent, llm = sink.got  # one cluster, updated early twice
    assert {n.group_key for n in sink.got} == {first.group_key}
    assert [n.sent_at for n in sink.got] == [BASE + timedelta(seconds=s) for s in (30, 90, 130)]
    assert [a.labels["component_id"] for a in agent.alerts] == ["db", "kraken", "agent"]
    assert "llm" in [a.labels["component_id"] for a in llm.alerts]


async def test_alerts_their_root_explains_wait_for_group_interval() -> None:
    clock = ManualClock(start=BASE.timestamp())
    manager, sink = routed_manager(clock)
    for k in range(0, 200, 10):
        await manager.handle([a for a in cascade() if a.timestamp == BASE + timedelta(seconds=k)])
        clock.advance(10)
    [first] = sink.got  # agent and web (downstream of db) join without an early update
    assert first.sent_at == BASE + timedelta(seconds=30)


async def test_a_root_detected_late_comes_first_in_the_notification() -> None:
    clock = ManualClock(start=BASE.timestamp() + 200)
    manager, sink = routed_manager(clock)
    await manager.handle(cascade(root_late=True))
    clock.advance(30)
    manager.tick()
    [sent] = sink.got
    assert sent.alerts[0].labels["component_id"] == "db"


async def test_unacknowledged_clusters_escalate_and_acknowledged_ones_do_not() -> None:
    clock = ManualClock(start=BASE.timestamp())
    manager, sink = routed_manager(clock, escalation_time_minutes=10)
    llm = [anomaly("llm", "error_rate", k, AnomalyType.ERROR_RATE_SPIKE) for k in (0, 10)]
    await manager.handle(cascade() + llm)
    db = next(c for c in manager.correlator.clusters() if "db" in c.common_attributes["components"])
    other = next(c for c in manager.correlator.clusters() if c is not db)
    manager.acknowledge_cluster(other.cluster_id, "ana", "looking at the LLM")
    before = db.priority_score
    for _ in range(66):  # keep both incidents alive past ten minutes and the next flush
        clock.advance(10)
        ts = clock.time() - BASE.timestamp()
        await manager.handle(
            [
                anomaly("web", "latency_ms", ts),
                anomaly("llm", "error_rate", ts, AnomalyType.ERROR_RATE_SPIKE),
            ]
        )
    db = manager.correlator.get(db.cluster_id)
    assert db.common_attributes["escalated"] is True and db.priority_score > before
    assert "escalated" not in manager.correlator.get(other.cluster_id).common_attributes
    escalations = [
        a for n in sink.got for a in n.alerts if a.labels["alertname"] == "AlertClusterEscalated"
    ]
    assert {a.labels["cluster_id"] for a in escalations} == {db.cluster_id}
    assert escalations[0].labels["severity"] == "critical"


async def test_clusters_and_notifications_are_stored() -> None:
    from allele.observability.store import open_store
    from allele.observability.store.repository.alerting import AlertingRecords

    clock = ManualClock(start=BASE.timestamp())
    with open_store("sqlite://") as store:
        manager = IntelligentAlertManager(
            AlertIntelligenceConfig(), TOPOLOGY, store=store, clock=clock
        )
        await manager.handle(cascade())
        clock.advance(60)
        sent = manager.tick()
        records = AlertingRecords(store)
        [cluster] = records.load_clusters()
        assert cluster["root_cause_candidates"][0] == "db:query_latency_ms"
        assert len(cluster["alerts"]) == 4
        [notification] = records.load_notifications()
        assert notification["notification_id"] == sent[0].notification_id
        assert notification["groupLabels"] == {"cluster_id": cluster["cluster_id"]}
        manager.acknowledge_cluster(cluster["cluster_id"], "ana")
        assert records.load_clusters()[0]["common_attributes"]["acknowledged_by"] == "ana"
        acknowledged = {
            a.acknowledged_by for a in store.load_alerts() if not a.to_dict().get("duplicate_of")
        }
        assert acknowledged == {"ana"}


# --- the storm generator -----------------------------------------------------------------------


def test_storm_generator_is_deterministic_and_has_what_the_benchmark_needs() -> None:
    storm = generate_storm(5, incidents=12, noise=10)
    again = generate_storm(5, incidents=12, noise=10)
    assert [a.timestamp for a in storm.anomalies] == [a.timestamp for a in again.anomalies]
    assert len(storm.topology) == 12 and len(storm.incidents) == 12
    assert sum(t < 0 for t in storm.truth) == 10
    first = storm.first_alert
    late_roots = [
        i
        for i in storm.incidents
        if min(t for (c, _), t in i.affected.items() if c == i.root) > min(i.affected.values())
    ]
    assert late_roots, "some roots are detected after a dependent"
    overlapping = [
        (a, b)
        for a, b in zip(storm.incidents, storm.incidents[1:], strict=False)
        if b.start < a.end
    ]
    assert overlapping, "some incidents overlap in time"
    assert all(first[i.incident_id] >= i.start for i in storm.incidents)


async def test_a_small_storm_is_clustered_close_to_its_incidents() -> None:
    from sklearn.metrics import adjusted_rand_score

    storm = generate_storm(7, incidents=8, noise=6)
    manager = IntelligentAlertManager(AlertIntelligenceConfig(), storm.topology)
    alert_of_seq: dict[int, str] = {}
    by_time: dict[datetime, list[AnomalyResult]] = {}
    for a in storm.anomalies:
        by_time.setdefault(a.timestamp, []).append(a)
    for stamp in sorted(by_time):
        alerts = manager.ingest(by_time[stamp])
        for alert in alerts:
            for context in alert["merged_contexts"]:
                alert_of_seq[context["seq"]] = alert["alert_id"]
        manager.correlator.correlate(alerts)
    cluster_of = {
        a["alert_id"]: c.cluster_id for c in manager.correlator.clusters() for a in c.alerts
    }
    cluster_of.update(
        {a["alert_id"]: c.cluster_id for c in manager.correlator.closed for a in c.alerts}
    )
    predicted = [cluster_of[alert_of_seq[i]] for i in range(len(storm.anomalies))]
    assert adjusted_rand_score(storm.truth, predicted) > 0.75


async def test_the_end_to_end_workflow_steps_one_to_five() -> None:
    """Steps 1-5 of the design documents' workflow; the detector is a fake standing in for the
    anomaly detectors (flags the values far from the training mean)."""
    import numpy as np

    from allele.observability.ml_analytics import MLMetric

    class FakeThresholdDetector:
        async def train(self, metrics: list[MLMetric]) -> None:
            values = np.array([m.value for m in metrics])
            self.mean, self.std = float(values.mean()), float(values.std())

        async def detect_anomaly(self, metric: MLMetric) -> AnomalyResult | None:
            deviation = abs(metric.value - self.mean)
            if deviation < 4 * self.std:
                return None
            return AnomalyResult(
                timestamp=metric.timestamp,
                component_type=metric.component_type,
                component_id=metric.component_id,
                metric_name=metric.metric_name,
                anomaly_type=AnomalyType.PERFORMANCE_DEGRADATION,
                anomaly_score=min(1.0, deviation / 10),
                confidence=0.9,
                severity=AlertSeverity.WARNING,
                actual_value=metric.value,
                expected_value=self.mean,
                deviation=deviation,
                threshold=4 * self.std,
            )

    # 1. Initialize components
    detector = FakeThresholdDetector()
    alert_config = AlertIntelligenceConfig(clustering_algorithm="dbscan")
    alert_manager = IntelligentAlertManager(alert_config)
    # 2. Collect metrics (simulated)
    rng = np.random.default_rng(0)
    base_time = BASE
    metrics = []
    for i in range(100):
        is_anomaly = i > 80 and i % 10 == 0
        value = 0.8 + (0.1 * rng.normal()) if not is_anomaly else 2.0
        metrics.append(
            MLMetric(
                timestamp=base_time + timedelta(minutes=i),
                component_type=ComponentType.EVOLUTION_ENGINE,
                component_id="test_engine",
                metric_name="fitness_score",
                value=value,
            )
        )
    # 3. Train anomaly detector
    await detector.train(metrics[:80])
    # 4. Detect anomalies in recent data
    anomalies = []
    for metric in metrics[80:]:
        result = await detector.detect_anomaly(metric)
        if result:
            anomalies.append(result)
    assert [a.timestamp for a in anomalies] == [base_time + timedelta(minutes=90)]
    # 5. Process alerts
    alerts = await alert_manager.process_alerts(anomalies)
    assert len(alerts) == 1
    [alert] = alerts
    assert (alert["component_id"], alert["metric_name"], alert["count"]) == (
        "test_engine",
        "fitness_score",
        1,
    )
    assert alert["actual_value"] == 2.0 and alert["merged_contexts"] == [{}]
