"""``IntelligentAlertManager``: anomalies to deduplicated alerts, alerts to clusters, clusters
to one routed notification each, everything stored.

    manager = IntelligentAlertManager(config, topology={"agent": ["llm", "db"]})
    alerts = await manager.process_alerts(anomalies)          # dedup; stored alerts
    clusters = await manager.correlator.process_alert_batch(alerts)
    manager.tick()                                             # routing timers, escalation

Clusters drive the routing: each alert goes to the ``Router`` with the labels ``alertname``
(its metric), ``component_id``, ``anomaly_type``, ``severity``, ``alert_id`` and ``cluster_id``;
the default router groups by ``cluster_id``, so one cluster is one group, hence one
notification, updated (at most every ``group_interval``) as the cluster grows, with the root
cause's alert first and the ranked candidates in the annotations. An alert that joins a cluster
whose top root cause does not fully explain it (its component neither is the root's nor depends
on it, or depends directly on a component outside the cluster) may be the first of another
incident whose root is not detected yet: the cluster's update then goes out ``group_wait``
after that alert started (``Router.hurry``) instead of a ``group_interval`` after the last one.
An alert that moves to another cluster leaves its old group silently.
Alerts resolve ``resolve_timeout_s`` after their latest anomaly (Alertmanager's
``resolve_timeout``). An escalated cluster adds a critical
``AlertClusterEscalated`` alert to its group.

With a ``store``: alerts (and each duplicate, acknowledged by ``alert-intelligence`` when
``auto_acknowledge_duplicates``) go to ``obs_alerts``, clusters to ``obs_alert_clusters``,
the router's notifications to ``obs_notifications``; stored clusters seed the co-occurrence
history at start.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from allele.errors import AlleleError
from allele.observability.clock import Clock, SystemClock, iso_utc, utc_datetime
from allele.observability.ml_analytics.alert_intelligence.config import AlertIntelligenceConfig
from allele.observability.ml_analytics.alert_intelligence.correlator import (
    AlertCorrelator,
    cluster_to_dict,
    public_alert,
)
from allele.observability.ml_analytics.alert_intelligence.dedup import Deduplicator
from allele.observability.ml_analytics.alert_intelligence.topology import Topology
from allele.observability.ml_analytics.types import AlertCluster
from allele.observability.receivers import LogIntegration, Receiver, RoutedAlert
from allele.observability.routing import Route, Router, RoutingConfig

logger = logging.getLogger("allele.ml_analytics")

DEDUP_ACTOR = "alert-intelligence"


def cluster_routing(
    receiver: Receiver | None = None,
    *,
    group_wait_s: float = 30.0,
    group_interval_s: float = 300.0,
    repeat_interval_s: float = 4 * 3600.0,
) -> RoutingConfig:
    """Routes that make one group (one notification) per cluster."""
    receiver = receiver or Receiver("log", [LogIntegration()])
    return RoutingConfig(
        Route(
            receiver=receiver.name,
            group_by=["cluster_id"],
            group_wait_s=group_wait_s,
            group_interval_s=group_interval_s,
            repeat_interval_s=repeat_interval_s,
        ),
        {receiver.name: receiver},
    )


class IntelligentAlertManager:
    """The alert-intelligence pipeline (see the module docstring).

    ``topology`` maps a component id to the ids it depends on. ``router`` defaults to one that
    groups by ``cluster_id`` and logs; ``clock`` (a ``ManualClock`` in tests) drives resolution,
    escalation and the router's timers.
    """

    def __init__(
        self,
        config: AlertIntelligenceConfig | None = None,
        topology: Mapping[str, Iterable[str]] | None = None,
        *,
        store: Any = None,
        router: Router | None = None,
        clock: Clock | None = None,
        resolve_timeout_s: float = 300.0,
        learn_from_store: bool = True,
    ) -> None:
        self.config = config or AlertIntelligenceConfig()
        self.topology = Topology(topology)
        self.clock: Clock = clock or (router.clock if router is not None else SystemClock())
        self.correlator = AlertCorrelator(self.config, self.topology)
        self.dedup = Deduplicator(
            self.config.similarity_threshold, self.config.deduplication_window_minutes
        )
        self.router = router or Router(cluster_routing(), clock=self.clock)
        self.resolve_timeout_s = resolve_timeout_s
        self.store = store
        self._records: Any = None
        self._routed: dict[str, RoutedAlert] = {}  # alert_id -> what the router holds
        self.duplicates_acknowledged = 0
        self.store_errors = 0
        if store is not None:
            from allele.observability.store.repository.alerting import AlertingRecords

            self._records = AlertingRecords(store)
            if router is None:
                self.router.attach_store(store)
            if learn_from_store:
                learned = self.correlator.learn_history(self._records.load_clusters())
                logger.debug("learned component precedence from %d stored clusters", learned)
        self.correlator.add_listener(self._on_clusters)

    # the design documents' API ---------------------------------------------------------------

    async def process_alerts(self, anomalies: Iterable[Any]) -> list[dict[str, Any]]:
        """Turn anomalies into alerts, merging duplicates; return the alerts created or grown
        by this call (each with ``alert_id``, ``context``, ``merged_contexts``, ``count``)."""
        return self.ingest(anomalies)

    def ingest(self, anomalies: Iterable[Any]) -> list[dict[str, Any]]:
        """``process_alerts`` without ``await``."""
        alerts, duplicates = self.dedup.add(anomalies)
        self._save_alerts(alerts, duplicates)
        return [public_alert(a) for a in alerts]

    async def handle(self, anomalies: Iterable[Any]) -> list[AlertCluster]:
        """The whole pipeline for one batch: dedup, cluster, route (and ``tick``)."""
        alerts = await self.process_alerts(anomalies)
        clusters = await self.correlator.process_alert_batch(alerts) if alerts else []
        self.tick()
        return clusters

    # time ------------------------------------------------------------------------------------

    def tick(self) -> list[Any]:
        """Resolve alerts quiet for ``resolve_timeout_s``, escalate overdue clusters, and flush
        the router's due groups; return the notifications sent."""
        now_t = self.clock.time()
        now = utc_datetime(now_t)
        # A cluster resolves as a whole, once all of its alerts have been quiet for
        # resolve_timeout_s: one resolved notification per incident, not one per alert.
        last: dict[str, float] = {}
        for routed in self._routed.values():
            seen = (routed.updated_at or routed.starts_at or now).timestamp()
            cid = routed.labels["cluster_id"]
            last[cid] = max(last.get(cid, seen), seen)
        resolved = []
        for routed in self._routed.values():
            if now_t - last[routed.labels["cluster_id"]] >= self.resolve_timeout_s:
                routed.status = "resolved"
                routed.ends_at = now
                resolved.append(routed)
        for cid in {r.labels["cluster_id"] for r in resolved}:
            with contextlib.suppress(AlleleError):  # closed meanwhile: nothing to mark
                self.correlator.get(cid).common_attributes["resolved_at"] = now.isoformat()
        if resolved:
            self.router.submit(resolved)
            self._save_resolved([r.labels["alert_id"] for r in resolved], now)
        for routed in resolved:
            self._routed.pop(routed.labels["alert_id"], None)
            self.dedup.close(routed.labels["alert_id"])
        self.dedup.forget_before(now_t - self.config.deduplication_window_minutes * 60.0)
        escalated = self.correlator.check_escalations(now)
        if escalated:
            self.router.submit(_escalation(c, now) for c in escalated)
            self._save_clusters(escalated)
        return self.router.tick()

    # handling --------------------------------------------------------------------------------

    def acknowledge_cluster(
        self, cluster_id: str, by: str, comment: str | None = None
    ) -> AlertCluster:
        """Take a cluster: no escalation, and its stored alerts are acknowledged too."""
        cluster = self.correlator.acknowledge(cluster_id, by, utc_datetime(self.clock.time()))
        if self._records is not None:
            self._save_clusters([cluster])
            try:
                self._records.acknowledge_cluster(cluster_id, by)
                for alert in cluster.alerts:
                    self.store.acknowledge_alert(alert["alert_id"], by, comment)
            except AlleleError as exc:
                self.store_errors += 1
                logger.warning("could not record the acknowledgement of %s: %s", cluster_id, exc)
        return cluster

    # routing and storing ---------------------------------------------------------------------

    def _on_clusters(self, changed: list[AlertCluster], removed: list[str]) -> None:
        moved: list[dict[str, str]] = []
        fresh: list[RoutedAlert] = []
        unexplained: list[RoutedAlert] = []
        for cluster in changed:
            top = cluster.root_cause_candidates[0] if cluster.root_cause_candidates else ""
            root = top.rpartition(":")[0]
            for alert in cluster.alerts:
                routed = _routed_alert(alert, cluster, top)
                before = self._routed.get(alert["alert_id"])
                if before is not None and before.labels != routed.labels:
                    moved.append(before.labels)
                joined = before is None or before.labels["cluster_id"] != cluster.cluster_id
                if joined and self._unexplained(str(alert["component_id"]), root, cluster):
                    unexplained.append(routed)
                self._routed[alert["alert_id"]] = routed
                fresh.append(routed)
        if moved:
            self.router.withdraw(moved)
        self.router.submit(fresh)
        # An alert its cluster's root does not explain may be the first of another incident
        # (its own root not detected yet): it is told within group_wait, not a group_interval
        # later with the cluster's next update.
        if unexplained:
            self.router.hurry(unexplained)
        self._save_clusters(changed)

    def _unexplained(self, component: str, root: str, cluster: AlertCluster) -> bool:
        """Whether a cluster whose top root cause is on ``root`` does not fully explain an alert
        on ``component``: the component neither is the root nor depends on it, or it depends
        directly on a component outside the cluster (which may have failed too, undetected
        yet)."""
        if not self.topology.known or component == root or component not in self.topology:
            return False
        if not self.topology.is_upstream(root, component):
            return True
        return not self.topology.depends_on[component] <= set(
            cluster.common_attributes.get("components", ())
        )

    def _save_clusters(self, clusters: list[AlertCluster]) -> None:
        if self._records is None or not clusters:
            return
        try:
            self._records.save_clusters(cluster_to_dict(c) for c in clusters)
        except AlleleError as exc:
            self.store_errors += 1
            logger.warning("could not store %d alert clusters: %s", len(clusters), exc)

    def _save_resolved(self, alert_ids: list[str], now: Any) -> None:
        if self.store is None:
            return
        rows = []
        for alert_id in alert_ids:
            alert = self.correlator.alert(alert_id)
            if alert is not None:
                row = _stored_alert(alert)
                row.update(state="resolved", resolved_at=iso_utc(now), updated_at=iso_utc(now))
                rows.append(row)
        try:
            self.store.save_alerts(rows)
        except AlleleError as exc:
            self.store_errors += 1
            logger.warning("could not store %d resolved alerts: %s", len(rows), exc)

    def _save_alerts(
        self, alerts: list[dict[str, Any]], duplicates: list[tuple[dict, dict]]
    ) -> None:
        if self.store is None or not (alerts or duplicates):
            return
        rows = [_stored_alert(a) for a in alerts]
        for dup, primary in duplicates:
            row = _stored_alert(dup)
            row["duplicate_of"] = primary["alert_id"]
            if self.config.auto_acknowledge_duplicates:
                row["acknowledged_by"] = DEDUP_ACTOR
                row["acknowledged_at"] = row["updated_at"]
                row["acknowledgement_comment"] = f"duplicate of {primary['alert_id']}"
                self.duplicates_acknowledged += 1
            rows.append(row)
        try:
            self.store.save_alerts(rows)
        except AlleleError as exc:
            self.store_errors += 1
            logger.warning("could not store %d alerts: %s", len(rows), exc)


def _routed_alert(alert: Mapping[str, Any], cluster: AlertCluster, top: str) -> RoutedAlert:
    component, metric = str(alert["component_id"]), str(alert.get("metric_name"))
    summary = (
        f"{component}:{metric} {alert.get('anomaly_type')} value {alert.get('actual_value')} "
        f"(expected {alert.get('expected_value')}), x{alert.get('count', 1)}"
    )
    annotations = {
        "summary": summary,
        "root_cause_candidates": ", ".join(cluster.root_cause_candidates),
        "priority_score": f"{cluster.priority_score:.2f}",
        "impact": cluster.impact_assessment,
    }
    last = alert.get("last_seen") or alert["timestamp"]
    return RoutedAlert(
        labels={
            "alertname": metric,
            "component_id": component,
            "anomaly_type": str(alert.get("anomaly_type")),
            "severity": str(alert.get("severity")),
            "alert_id": str(alert["alert_id"]),
            "cluster_id": cluster.cluster_id,
        },
        annotations=annotations,
        starts_at=alert["timestamp"],
        updated_at=last,
        rank=0 if f"{component}:{metric}" == top else 1,
    )


def _escalation(cluster: AlertCluster, now: Any) -> RoutedAlert:
    return RoutedAlert(
        labels={
            "alertname": "AlertClusterEscalated",
            "cluster_id": cluster.cluster_id,
            "severity": "critical",
        },
        annotations={
            "summary": f"cluster {cluster.cluster_id} unacknowledged since "
            f"{cluster.first_alert_time.isoformat()}: {cluster.impact_assessment}",
            "root_cause_candidates": ", ".join(cluster.root_cause_candidates),
        },
        starts_at=now,
        updated_at=now,
        rank=0,
    )


def _stored_alert(alert: Mapping[str, Any]) -> dict[str, Any]:
    """The ``obs_alerts`` form of an intelligence alert (what ``allele alerts list`` shows)."""
    stamp = iso_utc(alert["timestamp"])
    return {
        "alert_id": alert["alert_id"],
        "rule_name": f"{alert.get('metric_name')}:{alert.get('anomaly_type')}",
        "metric": alert.get("metric_name"),
        "severity": alert.get("severity"),
        "state": "firing",
        "value": alert.get("actual_value"),
        "threshold": alert.get("threshold"),
        "labels": {
            "component_id": str(alert["component_id"]),
            "component_type": str(alert.get("component_type")),
        },
        "message": (
            f"{alert.get('anomaly_type')} on {alert['component_id']}:{alert.get('metric_name')}"
        ),
        "started_at": stamp,
        "fired_at": stamp,
        "updated_at": iso_utc(alert.get("last_seen") or alert["timestamp"]),
        **{k: v for k, v in public_alert(alert).items() if k not in ("timestamp", "severity")},
    }
