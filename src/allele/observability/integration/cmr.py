"""The CMR model in the observability engine: ``ObservableCMRModel``, ``observe_cmr`` and the
sink that carries a ``CMRPerformanceMonitor``'s measurements and alerts into the engine.

>>> model = ObservableCMRModel(GPTConfig(), {"target_layers": [1]})   # doctest: +SKIP
>>> model(input_ids)                                                 # doctest: +SKIP
>>> model.monitor.get_live_stats()["health"]["status"]               # doctest: +SKIP
'green'

``allele.cmr`` knows nothing of this package: its monitor talks to sinks. ``EngineSink`` is the
sink that makes the model a component of type ``cmr_model`` in the engine:

* every metric collection interval of the monitor, the forward passes since the previous one:
  their latencies (operation ``forward``) and successes or errors by kind, the counters
  ``allele_cmr_{captures,stores,reconstructions,evictions}_total``, and the gauges
  ``allele_cmr_health_score``, ``allele_cmr_memory_utilization``,
  ``allele_cmr_memory_entries``, ``allele_cmr_storage_efficiency``,
  ``allele_cmr_cache_hit_rate``; a heartbeat. So the component's health, latency and error
  rate show in ``allele monitor`` and the store like any other component's.
* every alert of the monitor (which has applied the cooldown and the escalation delays) sets
  ``allele_cmr_alert{check, severity}`` to 1 when it fires and 0 once it resolved or was
  escalated; while it fires, the gauge is set to 1 again on every engine tick (a tick
  listener), so an idle model keeps its alert. One engine rule per check and severity fires
  on the gauge's maximum over the last 5 s (``for_s`` 0, no cooldown of its own): the alert
  goes through the engine's ``AlertManager`` -- its lifecycle, acknowledgement, history,
  notifiers (log, console, webhook) and the store -- and ends at most 5 s after the
  monitor resolved it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from allele.cmr.alerting import CHECKS, SEVERITIES, CMRAlert
from allele.cmr.config import CMRConfig, GPTConfig
from allele.cmr.health import HealthReport
from allele.cmr.model import FullCMRModel
from allele.cmr.monitor import CMRPerformanceMonitor
from allele.cmr.stats import ForwardRecord
from allele.errors import ValidationError
from allele.observability.engine import ObservabilityEngine, get_observability_engine
from allele.observability.metric_names import LATENCY_METRIC, OPERATIONS_METRIC
from allele.observability.types import (
    Aggregation,
    AlertRule,
    AlertSeverity,
    ComponentType,
    Operator,
)

logger = logging.getLogger("allele.observability.integration")

CMR_ALERT = "allele_cmr_alert"
CMR_HEALTH_SCORE = "allele_cmr_health_score"
CMR_MEMORY_UTILIZATION = "allele_cmr_memory_utilization"
CMR_MEMORY_ENTRIES = "allele_cmr_memory_entries"
CMR_STORAGE_EFFICIENCY = "allele_cmr_storage_efficiency"
CMR_CACHE_HIT_RATE = "allele_cmr_cache_hit_rate"
CMR_CAPTURES = "allele_cmr_captures_total"
CMR_STORES = "allele_cmr_stores_total"
CMR_RECONSTRUCTIONS = "allele_cmr_reconstructions_total"
CMR_EVICTIONS = "allele_cmr_evictions_total"

#: How far back a rule looks at the alert gauge (set at least every engine tick while firing).
ALERT_WINDOW_S = 5.0


def cmr_alert_rules() -> list[AlertRule]:
    """The engine rules that follow the CMR monitors' alerts (one per check and severity)."""
    return [
        AlertRule(
            name=f"cmr_model_{check}_{severity}",
            metric=CMR_ALERT,
            operator=Operator.GT,
            threshold=0.5,
            aggregation=Aggregation.MAX,
            window_s=ALERT_WINDOW_S,
            for_s=0.0,
            cooldown_s=0.0,  # the monitor's policy already applied its cooldown
            severity=AlertSeverity(severity),
            labels={
                "component_type": ComponentType.CMR_MODEL.value,
                "check": check,
                "severity": severity,
            },
            description=f"CMR monitor: {check.replace('_', ' ')} ({severity})",
        )
        for check in CHECKS
        for severity in SEVERITIES
    ]


class EngineSink:
    """A ``MonitorSink`` recording a CMR monitor into the observability engine (see the module
    docstring). Never raises into the monitor: failures are counted in ``errors``."""

    def __init__(
        self,
        component_id: str,
        *,
        engine: ObservabilityEngine | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(component_id, str) or not component_id:
            raise ValidationError(f"component_id must be a non-empty string, got {component_id!r}")
        self.engine = engine if engine is not None else get_observability_engine()
        self.component_id = component_id
        self.recorder = self.engine.register_component(
            component_id, ComponentType.CMR_MODEL, metadata=metadata
        )
        self.engine.alerts.add_rules(cmr_alert_rules())
        self.errors = 0
        self._firing: dict[tuple[str, str], Any] = {}  # (check, severity) -> gauge handle
        self.engine.add_tick_listener(self.refresh_alerts)
        collector = self.recorder.collector
        labels = dict(self.recorder.labels)
        self._labels = labels
        self._latency = collector.timer(LATENCY_METRIC, {**labels, "operation": "forward"})
        # The series record_success() writes, counted once per batch of passes.
        self._successes = collector.counter(
            OPERATIONS_METRIC, {**labels, "operation": "forward", "outcome": "success"}
        )
        self._counters = {
            name: collector.counter(name, labels)
            for name in (CMR_CAPTURES, CMR_STORES, CMR_RECONSTRUCTIONS, CMR_EVICTIONS)
        }
        self._gauges = {
            name: collector.gauge(name, labels)
            for name in (
                CMR_HEALTH_SCORE,
                CMR_MEMORY_UTILIZATION,
                CMR_MEMORY_ENTRIES,
                CMR_STORAGE_EFFICIENCY,
                CMR_CACHE_HIT_RATE,
            )
        }

    def on_metrics(self, samples: Sequence[ForwardRecord], health: HealthReport | None) -> None:
        try:
            self._record(samples, health)
        except Exception:
            self._failed("metrics")

    def _record(self, samples: Sequence[ForwardRecord], health: HealthReport | None) -> None:
        ok = [r for r in samples if r.error is None]
        if ok:
            self._latency.observe_many([r.duration_s for r in ok])
            self._successes.inc(len(ok))
        for r in samples:
            if r.error is not None:
                self.recorder.record_error("forward", r.error)
        captured = sum(r.total_captured for r in ok)
        stored = sum(r.total_stored for r in ok)
        c = self._counters
        c[CMR_CAPTURES].inc(captured)
        c[CMR_STORES].inc(stored)
        c[CMR_RECONSTRUCTIONS].inc(sum(r.total_reconstructions for r in ok))
        c[CMR_EVICTIONS].inc(sum(r.evicted for r in ok))
        g = self._gauges
        if samples:
            last = samples[-1]
            g[CMR_MEMORY_ENTRIES].set(last.memory_entries)
            if last.memory_capacity:
                g[CMR_MEMORY_UTILIZATION].set(last.memory_entries / last.memory_capacity)
        if captured:
            g[CMR_STORAGE_EFFICIENCY].set(stored / captured)
        queries = sum(r.retrieval_queries for r in ok)
        if queries:
            g[CMR_CACHE_HIT_RATE].set(sum(r.retrieval_hits for r in ok) / queries)
        if health is not None and health.score is not None:
            g[CMR_HEALTH_SCORE].set(health.score)
        if samples:
            self.recorder.heartbeat()
        self.refresh_alerts()

    def on_alert(self, alert: CMRAlert) -> None:
        try:
            gauge = self._alert_gauge(alert.check, alert.severity)
            if alert.state == "firing":
                gauge.set(1.0)
                self._firing[(alert.check, alert.severity)] = gauge
            else:
                gauge.set(0.0)
                self._firing.pop((alert.check, alert.severity), None)
            if alert.escalated_from:
                self._alert_gauge(alert.check, alert.escalated_from).set(0.0)
                self._firing.pop((alert.check, alert.escalated_from), None)
        except Exception:
            self._failed("an alert")

    def _alert_gauge(self, check: str, severity: str) -> Any:
        labels = {**self._labels, "check": check, "severity": severity}
        return self.recorder.collector.gauge(CMR_ALERT, labels)

    def refresh_alerts(self) -> None:
        """Set the gauge of every firing alert to 1 again (the engine's tick listener)."""
        try:
            for gauge in tuple(self._firing.values()):
                gauge.set(1.0)
        except Exception:
            self._failed("the alert refresh")

    def close(self) -> None:
        """Stop refreshing the alert gauges (the engine's rules then let them end)."""
        self.engine.remove_tick_listener(self.refresh_alerts)

    def _failed(self, what: str) -> None:
        self.errors += 1
        if self.errors <= 3:
            logger.warning(
                "recording %s of CMR model %s failed", what, self.component_id, exc_info=True
            )


def observe_cmr(
    model: FullCMRModel,
    *,
    component_id: str | None = None,
    engine: ObservabilityEngine | None = None,
    monitoring_config: Mapping[str, Any] | None = None,
    alert_config: Mapping[str, Any] | None = None,
) -> CMRPerformanceMonitor:
    """A real-time ``CMRPerformanceMonitor`` of ``model`` whose measurements and alerts go to
    the observability engine (component type ``cmr_model``)."""
    if not isinstance(model, FullCMRModel):
        raise ValidationError(f"observe_cmr needs a FullCMRModel, got {type(model).__name__}")
    import uuid

    name = component_id or f"{ComponentType.CMR_MODEL.value}-{uuid.uuid4().hex[:8]}"
    sink = EngineSink(name, engine=engine, metadata=_metadata(model))
    monitor = CMRPerformanceMonitor(
        model,
        {**dict(monitoring_config or {}), "enable_real_time": True},
        alert_config,
        sinks=[sink],
        component_id=name,
    )
    return monitor


def _metadata(model: FullCMRModel) -> dict[str, Any]:
    return {
        "backbone": type(model.backbone).__name__,
        "n_layers": int(model.backbone.n_layers),
        "d_model": int(model.backbone.d_model),
        **{k: v for k, v in model.config.to_dict().items() if not isinstance(v, list)},
        "target_layers": ",".join(map(str, model.config.target_layers)),
        "intervention_layers": ",".join(map(str, model.config.intervention_layers)),
    }


class ObservableCMRModel(FullCMRModel):
    """A ``FullCMRModel`` whose every forward pass is monitored into the observability engine.

    Same constructor as ``FullCMRModel`` plus ``component_id``, ``engine``,
    ``monitoring_config`` and ``alert_config``; ``monitor`` is its ``CMRPerformanceMonitor``.
    """

    def __init__(
        self,
        base_config: GPTConfig | None = None,
        cmr_config: CMRConfig | Mapping[str, Any] | None = None,
        *,
        backbone: Any = None,
        component_id: str | None = None,
        engine: ObservabilityEngine | None = None,
        monitoring_config: Mapping[str, Any] | None = None,
        alert_config: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(base_config, cmr_config, backbone=backbone)
        self.monitor = observe_cmr(
            self,
            component_id=component_id,
            engine=engine,
            monitoring_config=monitoring_config,
            alert_config=alert_config,
        )


__all__ = ["EngineSink", "ObservableCMRModel", "cmr_alert_rules", "observe_cmr"]
