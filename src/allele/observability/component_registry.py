"""The engine's component registry: which components are watched, their recorders, and each
one's snapshot as of the latest collection (what the flusher persists).

``ObservabilityEngine`` is built from this mixin; the engine's ``__init__`` owns the state it
uses (the registry lock, ``_components``, ``_snapshots``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, overload

from allele.errors import ValidationError
from allele.observability.alerts import AlertManager
from allele.observability.collector import ComponentMetricsCollector, MetricsCollector
from allele.observability.config import ObservabilitySettings, default_alert_rules
from allele.observability.types import ComponentMetrics, ComponentType

# The engine's logger: these are the engine's messages.
logger = logging.getLogger("allele.observability.engine")


class ComponentRegistry:
    """Registration, lookup and snapshots of the engine's components."""

    # Set by ObservabilityEngine.__init__.
    settings: ObservabilitySettings
    collector: MetricsCollector
    alerts: AlertManager
    _lock: threading.RLock
    _components: dict[str, ComponentMetricsCollector]
    _snapshots: dict[str, ComponentMetrics]
    _errors: int

    def register_component(
        self,
        component_id: str,
        component_type: ComponentType | str,
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> ComponentMetricsCollector:
        """Register a component and return its recorder (the existing one if ``component_id``
        is already registered with the same type). The type's default alert rules are added.

        The recorder's ``record_latency``, ``record_success``, ``record_error``,
        ``record_resource_usage``, ``record_custom_metric``, ``heartbeat`` and ``timer`` write
        series labelled with the component's id and type.
        """
        try:
            kind = ComponentType(component_type)
        except ValueError:
            allowed = ", ".join(t.value for t in ComponentType)
            raise ValidationError(
                f"unknown component type {component_type!r}; allowed: {allowed}"
            ) from None
        with self._lock:
            existing = self._components.get(component_id)
            if existing is not None:
                if existing.component_type is not kind:
                    raise ValidationError(
                        f"component {component_id!r} is registered as "
                        f"{existing.component_type.value}, not {kind.value}"
                    )
                return existing
            config = self.settings.monitoring_config()
            component = ComponentMetricsCollector(
                self.collector,
                component_id,
                kind,
                metadata=metadata,
                heartbeat_timeout_s=config.heartbeat_timeout_s,
                degraded_error_rate=config.degraded_error_rate,
                unhealthy_error_rate=config.unhealthy_error_rate,
                health_window_s=config.health_window_s,
            )
            self._components[component_id] = component
        self.alerts.add_rules(default_alert_rules(kind, self.settings))
        return component

    def unregister_component(self, component_id: str) -> None:
        """Forget a component: its health is no longer judged or published (no
        heartbeat-stale alert fires for it); its recorded series stay in the collector,
        marked stale until they get a new point."""
        with self._lock:
            component = self.get_component(component_id)
            del self._components[component_id]
            self._snapshots.pop(component_id, None)
        self.collector.mark_stale(component.labels)

    def get_component(self, component_id: str) -> ComponentMetricsCollector:
        """Return the recorder of a registered component."""
        component = self._components.get(component_id)
        if component is None:
            raise ValidationError(
                f"unknown component {component_id!r}; registered: {sorted(self._components)}"
            )
        return component

    def _component_list(self) -> list[ComponentMetricsCollector]:
        with self._lock:
            return list(self._components.values())

    @overload
    def get_component_metrics(self, component_id: str) -> ComponentMetrics: ...

    @overload
    def get_component_metrics(self, component_id: None = None) -> dict[str, ComponentMetrics]: ...

    def get_component_metrics(
        self, component_id: str | None = None
    ) -> ComponentMetrics | dict[str, ComponentMetrics]:
        """Return one component's snapshot (health, heartbeat, performance), or with no id
        every registered component's snapshot by id."""
        if component_id is None:
            return self.get_all_component_metrics()
        return self.get_component(component_id).get_metrics()

    def get_all_component_metrics(self) -> dict[str, ComponentMetrics]:
        """Return every registered component's snapshot, by id."""
        return {c.component_id: c.get_metrics() for c in self._component_list()}

    def component_snapshots(self) -> list[ComponentMetrics]:
        """Return every component's snapshot as of the latest collection (what the store's
        flusher persists); a component not collected yet is judged now.

        Health is published once per collection interval; the flusher, which runs more often,
        gets the same snapshot objects until the next collection (and writes only the ones it
        has not written), instead of recomputing every component's latency percentiles at
        each flush. ``stop()`` takes fresh snapshots before the final flush.
        """
        snapshots = self._snapshots
        taken = []
        for component in self._component_list():
            snapshot = snapshots.get(component.component_id)
            if snapshot is None:  # registered since the latest collection: judged once, now
                snapshot = snapshots[component.component_id] = component.get_metrics()
            taken.append(snapshot)
        return taken

    def _refresh_snapshots(self) -> None:
        for component in self._component_list():
            try:
                self._snapshots[component.component_id] = component.get_metrics()
            except Exception:
                self._errors += 1
                logger.exception("health of component %s failed", component.component_id)
