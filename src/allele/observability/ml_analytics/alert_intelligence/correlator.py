"""``AlertCorrelator``: alerts in, clusters out, one per incident, stable as they grow.

``process_alert_batch(alerts)`` adds the alerts to those still open, clusters all open alerts
again (``clustering``), and keeps each cluster's id when it grows: a cluster's id stays with the
group holding its founding (earliest) alert. A cluster closes once
``correlation_window_minutes`` passed after its last alert; its order of components is then
learned as history (``root_cause.CoOccurrence``). Every cluster gets ranked
``root_cause_candidates``, a ``confidence`` (how tight it is), a ``priority_score`` from
``priority_factors`` and an ``impact_assessment``. ``check_escalations`` raises the clusters
nobody acknowledged within ``escalation_time_minutes``.

Listeners (``add_listener``) get every batch's changed clusters and the ids of clusters that
disappeared (merged into others); the manager routes and stores them from there.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from allele.errors import ValidationError
from allele.observability.clock import utc_datetime
from allele.observability.ml_analytics.alert_intelligence import clustering
from allele.observability.ml_analytics.alert_intelligence.config import AlertIntelligenceConfig
from allele.observability.ml_analytics.alert_intelligence.dedup import as_alert
from allele.observability.ml_analytics.alert_intelligence.root_cause import (
    CoOccurrence,
    RootCauseRanker,
)
from allele.observability.ml_analytics.alert_intelligence.topology import Topology
from allele.observability.ml_analytics.types import AlertCluster
from allele.observability.types import AlertSeverity

logger = logging.getLogger("allele.ml_analytics")

_SEVERITIES = [s.value for s in AlertSeverity]
Listener = Callable[[list[AlertCluster], list[str]], None]


_SEVERITY_RANK = {s: i for i, s in enumerate(_SEVERITIES)}


def _severity_rank(value: object) -> int:
    text = value.value if isinstance(value, AlertSeverity) else str(value)
    return _SEVERITY_RANK.get(text, 1)


def public_alert(alert: Mapping[str, Any]) -> dict[str, Any]:
    """An alert dict without the correlator's private keys (those starting with ``_``)."""
    return {k: v for k, v in alert.items() if not k.startswith("_")}


def cluster_to_dict(cluster: AlertCluster) -> dict[str, Any]:
    """JSON-ready fields of a cluster (what the store keeps)."""
    return {
        "cluster_id": cluster.cluster_id,
        "cluster_type": cluster.cluster_type,
        "alerts": [public_alert(a) for a in cluster.alerts],
        "common_attributes": dict(cluster.common_attributes),
        "root_cause_candidates": list(cluster.root_cause_candidates),
        "confidence": cluster.confidence,
        "priority_score": cluster.priority_score,
        "impact_assessment": cluster.impact_assessment,
        "first_alert_time": cluster.first_alert_time.isoformat(),
        "last_alert_time": cluster.last_alert_time.isoformat(),
        "duration_minutes": cluster.duration_minutes,
    }


class AlertCorrelator:
    """Clusters alerts into incidents (see the module docstring)."""

    def __init__(
        self,
        config: AlertIntelligenceConfig,
        topology: Topology | Mapping[str, Iterable[str]] | None = None,
        *,
        history: CoOccurrence | None = None,
        lag_s: float = 60.0,
    ) -> None:
        self.config = config
        self.topology = topology if isinstance(topology, Topology) else Topology(topology)
        self.history = history or CoOccurrence()
        self.lag_s = lag_s
        self.ranker = RootCauseRanker(self.topology, self.history, lag_s)
        self.time_scale_s = config.correlation_window_minutes * 60.0 / 6.0
        self._alerts: dict[str, dict[str, Any]] = {}
        self._cluster_of: dict[str, str] = {}
        self._clusters: dict[str, AlertCluster] = {}
        self.closed: deque[AlertCluster] = deque(maxlen=1000)
        self._latest_t = -math.inf
        self._listeners: list[Listener] = []
        self._weights = config.factors()
        self._id_prefix = uuid.uuid4().hex[:8]
        self._ids = 0

    def _new_id(self) -> str:
        # A random prefix per correlator and a counter: unique, and cheaper than uuid4 each.
        self._ids += 1
        return f"{self._id_prefix}{self._ids:08x}"

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(changed_clusters, removed_cluster_ids)`` after every batch."""
        self._listeners.append(listener)

    # the design documents' API ---------------------------------------------------------------

    async def process_alert_batch(self, alerts: Iterable[Any]) -> list[AlertCluster]:
        """Cluster ``alerts`` with the open ones; return the clusters that hold them."""
        batch = list(alerts)
        if len(batch) > 200:  # the clustering is CPU work: keep the event loop free
            return await asyncio.to_thread(self.correlate, batch)
        return self.correlate(batch)

    # the work --------------------------------------------------------------------------------

    def correlate(self, alerts: Iterable[Any]) -> list[AlertCluster]:
        """``process_alert_batch`` without ``await``."""
        batch = [as_alert(a) for a in alerts]
        for alert in batch:
            known = self._alerts.get(alert["alert_id"])
            if known is not None and known is not alert:
                known.update(alert)
            else:
                self._alerts[alert["alert_id"]] = alert
            self._latest_t = max(self._latest_t, alert.get("_last_t", alert["_t"]))
        self._close_old()
        before = dict(self._clusters)
        self._recluster()
        batch_ids = {a["alert_id"] for a in batch}
        changed = [
            c
            for cid, c in self._clusters.items()
            if cid not in before
            or {a["alert_id"] for a in c.alerts} != {a["alert_id"] for a in before[cid].alerts}
            or any(a["alert_id"] in batch_ids for a in c.alerts)
        ]
        removed = [cid for cid in before if cid not in self._clusters]
        for listener in self._listeners:
            listener(changed, removed)
        return [
            c for c in self._clusters.values() if any(a["alert_id"] in batch_ids for a in c.alerts)
        ]

    def _close_old(self) -> None:
        horizon = self._latest_t - self.config.correlation_window_minutes * 60.0
        for cid, cluster in list(self._clusters.items()):
            if cluster.last_alert_time.timestamp() >= horizon:
                continue
            del self._clusters[cid]
            for alert in cluster.alerts:
                self._alerts.pop(alert["alert_id"], None)
                self._cluster_of.pop(alert["alert_id"], None)
            self.history.learn_cluster(cluster.alerts)
            cluster.common_attributes["closed"] = True
            self.closed.append(cluster)

    def _recluster(self) -> None:
        alerts = list(self._alerts.values())
        if not alerts:
            self._clusters = {}
            return
        f = clustering.features(
            [a["_t"] for a in alerts],
            [str(a["component_id"]) for a in alerts],
            [str(a.get("metric_name")) for a in alerts],
            [str(a.get("anomaly_type")) for a in alerts],
            [frozenset((a.get("labels") or {}).items()) for a in alerts],
            [int(a.get("count") or 1) for a in alerts],
        )
        pairs = clustering.distance_pairs(f, self.topology, self.time_scale_s, self.lag_s)
        labels = clustering.cluster(
            pairs,
            self.config.clustering_algorithm,
            self.config.clustering_eps,
            self.config.clustering_min_samples,
        )
        labels = clustering.split_by_root(labels, f, pairs, self.topology, self.lag_s)
        confidence = _confidences(labels, pairs)
        order = np.argsort(labels, kind="stable")
        bounds = np.flatnonzero(np.diff(labels[order])) + 1
        groups = np.split(order, bounds)
        stats = _group_stats(alerts, order, bounds)
        old = self._clusters
        # A cluster keeps its id in the group that holds its founding (earliest) alert: when a
        # cluster splits, the incident it was notified for keeps its notification, and the
        # newcomer gets a new cluster (a new notification). A merged group keeps the id of the
        # oldest cluster founded by a sustained alert (a one-off blip that happened to come
        # first does not take over an incident's identity), else the oldest.
        founded = {
            c.alerts[0]["alert_id"]: (
                int(c.alerts[0].get("count") or 1) <= 1,
                c.first_alert_time,
                cid,
            )
            for cid, c in old.items()
        }
        new_clusters: dict[str, AlertCluster] = {}
        for g in sorted(range(len(groups)), key=lambda g: int(groups[g][0])):  # by first alert
            members = groups[g].tolist()
            ids = [alerts[i]["alert_id"] for i in members]
            founders = [founded[a] for a in ids if a in founded]
            cid = min(founders)[2] if founders else self._new_id()
            member_alerts = [alerts[i] for i in members]
            cluster = self._build(cid, member_alerts, float(confidence[members[0]]), stats[g])
            previous = old.get(cid)
            if previous is not None:
                for key in (
                    "escalated",
                    "escalated_at",
                    "acknowledged_by",
                    "acknowledged_at",
                    "resolved_at",
                ):
                    if key in previous.common_attributes:
                        cluster.common_attributes[key] = previous.common_attributes[key]
                resolved_at = cluster.common_attributes.get("resolved_at")
                if resolved_at and cluster.last_alert_time.isoformat() > resolved_at:
                    del cluster.common_attributes["resolved_at"]  # it came back
                if previous.common_attributes.get("escalated"):
                    cluster.priority_score = _escalated(cluster.priority_score)
            new_clusters[cid] = cluster
            for alert in member_alerts:
                self._cluster_of[alert["alert_id"]] = cid
        self._clusters = new_clusters

    def _build(
        self,
        cid: str,
        alerts: list[dict[str, Any]],
        confidence: float,
        stats: tuple[float, float, int, float, float],
    ) -> AlertCluster:
        """One cluster of ``alerts``; ``stats`` are its first and last alert times, worst
        severity rank, highest anomaly score and mean confidence (``_group_stats``)."""
        alerts.sort(key=lambda a: a["_t"])
        first_seen: dict[str, float] = {}
        metric: dict[str, str] = {}
        evidence: dict[str, int] = {}
        for a in alerts:
            c = str(a["component_id"])
            if c not in first_seen:
                first_seen[c] = a["_t"]
                metric[c] = str(a.get("metric_name"))
            evidence[c] = evidence.get(c, 0) + int(a.get("count") or 1)
        ranked = self.ranker.rank(
            first_seen, metric, self.config.max_root_cause_candidates, evidence
        )
        first_t, last_t, severity, score, mean_confidence = stats
        first, last = utc_datetime(first_t), utc_datetime(last_t)
        n = len(alerts)
        common = _common(alerts, self.config.clustering_algorithm, first_seen, evidence, severity)
        cluster = AlertCluster(
            cluster_id=cid,
            cluster_type=_cluster_type(first_seen, n),
            alerts=alerts,
            common_attributes=common,
            root_cause_candidates=[name for name, _ in ranked],
            confidence=max(0.0, min(1.0, confidence)),
            first_alert_time=first,
            last_alert_time=last,
            duration_minutes=(last - first).total_seconds() / 60.0,
        )
        cluster.common_attributes["root_cause_scores"] = {k: round(v, 4) for k, v in ranked}
        cluster.priority_score = _weighted(
            self._weights,
            severity,
            score,
            mean_confidence,
            n,
            len(first_seen),
            cluster.duration_minutes,
        )
        cluster.impact_assessment = _impact(cluster, first_seen)
        return cluster

    # reading and handling --------------------------------------------------------------------

    def clusters(self) -> list[AlertCluster]:
        """The open clusters, highest priority first."""
        return sorted(self._clusters.values(), key=lambda c: c.priority_score, reverse=True)

    def alert(self, alert_id: str) -> dict[str, Any] | None:
        """The open alert ``alert_id`` (None once its cluster closed)."""
        return self._alerts.get(alert_id)

    def cluster_of(self, alert_id: str) -> str | None:
        """The id of the open cluster holding ``alert_id``."""
        return self._cluster_of.get(alert_id)

    def get(self, cluster_id: str) -> AlertCluster:
        cluster = self._clusters.get(cluster_id)
        if cluster is None:
            raise ValidationError(
                f"no open alert cluster {cluster_id!r}; open: {sorted(self._clusters)[:10]}"
            )
        return cluster

    def acknowledge(self, cluster_id: str, by: str, at: datetime) -> AlertCluster:
        """Record that ``by`` took the cluster (it will not be escalated)."""
        if not isinstance(by, str) or not by.strip():
            raise ValidationError(f"by={by!r} must name who acknowledges the cluster")
        cluster = self.get(cluster_id)
        cluster.common_attributes["acknowledged_by"] = by
        cluster.common_attributes["acknowledged_at"] = at.isoformat()
        for alert in cluster.alerts:
            alert["acknowledged"] = True
            alert["acknowledged_by"] = by
        return cluster

    def check_escalations(self, now: datetime) -> list[AlertCluster]:
        """Escalate the clusters still firing (no ``resolved_at``) and unacknowledged
        ``escalation_time_minutes`` after their first alert: ``escalated`` in their attributes,
        a higher ``priority_score``. Returns those escalated by this call."""
        limit = timedelta(minutes=self.config.escalation_time_minutes)
        out = []
        for cluster in self._clusters.values():
            attrs = cluster.common_attributes
            if attrs.get("escalated") or attrs.get("acknowledged_by") or attrs.get("resolved_at"):
                continue
            if now - cluster.first_alert_time >= limit:
                attrs["escalated"] = True
                attrs["escalated_at"] = now.isoformat()
                cluster.priority_score = _escalated(cluster.priority_score)
                out.append(cluster)
        return out

    def learn_history(self, clusters: Iterable[Mapping[str, Any]]) -> int:
        """Learn component precedence from stored cluster dicts; return how many were used."""
        used = 0
        for cluster in clusters:
            alerts = cluster.get("alerts") or []
            if len({a.get("component_id") for a in alerts}) > 1:
                self.history.learn_cluster(alerts)
                used += 1
        return used


def _confidences(labels: np.ndarray, pairs: clustering.Pairs) -> np.ndarray:
    """Per alert, its cluster's confidence: for a cluster of several, how tight it is (one
    minus the mean distance between its members); for one alone, how isolated (the distance to
    the nearest other alert). Pairs not listed are at distance 1."""
    n = pairs.n
    size = np.bincount(labels, minlength=int(labels.max(initial=-1)) + 1)
    same = labels[pairs.i] == labels[pairs.j]
    # sum over member pairs of (1 - d), each pair counted in both directions
    closeness = np.bincount(
        labels[pairs.i[same]], weights=2.0 * (1.0 - pairs.d[same]), minlength=size.size
    )
    m = size.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        tight = closeness / (m * (m - 1))
    nearest = np.ones(n)
    np.minimum.at(nearest, pairs.i, pairs.d)
    np.minimum.at(nearest, pairs.j, pairs.d)
    return np.where(size[labels] > 1, tight[labels], nearest)


def _escalated(score: float) -> float:
    # Halfway to the top: still ordered among escalated clusters.
    return score + (1.0 - score) * 0.5


def _cluster_type(first_seen: Mapping[str, float], n: int) -> str:
    if len(first_seen) > 1:
        return "cascade"
    return "component" if n > 1 else "isolated"


def _common(
    alerts: list[dict[str, Any]],
    algorithm: str,
    first_seen: Mapping[str, float],
    evidence: Mapping[str, int],
    severity: int,
) -> dict[str, Any]:
    out: dict[str, Any] = {"algorithm": algorithm}
    head, rest = alerts[0], alerts[1:]
    for key in ("component_id", "component_type", "metric_name", "anomaly_type", "severity"):
        value = str(head.get(key))
        if not rest or all(str(a.get(key)) == value for a in rest):
            out[key] = value
    out["components"] = sorted(first_seen)
    out["max_severity"] = _SEVERITIES[severity]
    out["anomaly_count"] = sum(evidence.values())
    return out


def priority(cluster: AlertCluster, weights: Mapping[str, float]) -> float:
    """The weighted mean of the cluster's priority factors, each in [0, 1]."""
    alerts = cluster.alerts
    confidences = [float(a.get("confidence") or 0.0) for a in alerts]
    return _weighted(
        weights,
        max(_severity_rank(a.get("severity")) for a in alerts),
        max(float(a.get("anomaly_score") or 0.0) for a in alerts),
        sum(confidences) / len(confidences),
        len(alerts),
        len(cluster.common_attributes["components"]),
        cluster.duration_minutes,
    )


def _weighted(
    weights: Mapping[str, float],
    severity: int,
    score: float,
    mean_confidence: float,
    alerts: int,
    components: int,
    duration_minutes: float,
) -> float:
    factors = {
        "severity": severity / 3.0,
        "anomaly_score": min(1.0, max(0.0, score)),
        "confidence": min(1.0, max(0.0, mean_confidence)),
        "alert_count": 1.0 - math.exp(-alerts / 10.0),
        "component_count": 1.0 - math.exp(-components / 3.0),
        "duration": min(1.0, duration_minutes / 60.0),
    }
    total = sum(weights.values())
    return sum(w * factors[name] for name, w in weights.items()) / total


def _group_stats(
    alerts: list[dict[str, Any]], order: np.ndarray, bounds: np.ndarray
) -> list[tuple[float, float, int, float, float]]:
    """Per group of ``order`` split at ``bounds`` (numpy group-by, not per-cluster loops): the
    first and last alert times, worst severity rank, highest anomaly score, mean confidence."""
    per = np.array(
        [
            (
                a["_t"],
                a.get("_last_t", a["_t"]),
                _severity_rank(a.get("severity")),
                float(a.get("anomaly_score") or 0.0),
                float(a.get("confidence") or 0.0),
            )
            for a in alerts
        ]
    )[order]
    starts = np.concatenate([[0], bounds])
    size = np.diff(np.concatenate([starts, [len(alerts)]]))
    first = np.minimum.reduceat(per[:, 0], starts).tolist()
    last = np.maximum.reduceat(per[:, 1], starts).tolist()
    severity = np.maximum.reduceat(per[:, 2], starts).astype(np.int64).tolist()
    score = np.maximum.reduceat(per[:, 3], starts).tolist()
    confidence = (np.add.reduceat(per[:, 4], starts) / size).tolist()
    return list(zip(first, last, severity, score, confidence, strict=True))


def _impact(cluster: AlertCluster, first_seen: Mapping[str, float]) -> str:
    comps = list(first_seen)
    shown = ", ".join(comps[:5]) + (f" and {len(comps) - 5} more" if len(comps) > 5 else "")
    text = (
        f"{len(comps)} component(s) ({shown}) with {len(cluster.alerts)} alert(s), "
        f"worst severity {cluster.common_attributes['max_severity']}"
    )
    if cluster.root_cause_candidates:
        text += f"; most likely root cause {cluster.root_cause_candidates[0]}"
    return text
