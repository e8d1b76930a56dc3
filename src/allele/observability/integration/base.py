"""``ComponentMonitor``: what every monitor shares -- registration, handles, error containment
and detaching."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from allele.errors import ValidationError
from allele.observability.collector import ComponentMetricsCollector
from allele.observability.engine import ObservabilityEngine, get_observability_engine
from allele.observability.metric_names import (
    LATENCY_METRIC,
    MONITORING_ERRORS_METRIC,
    OPERATIONS_METRIC,
)
from allele.observability.types import ComponentType

logger = logging.getLogger("allele.observability.integration")

#: The first few recording failures are logged with their traceback, then one in this many.
_LOG_EVERY = 1000
_LOG_FIRST = 3

#: Where observe() leaves the monitor of a plain workload object, so it is not attached twice.
MONITOR_ATTR = "_allele_monitor"


def _new_component_id(kind: ComponentType) -> str:
    # A short random suffix keeps ids unique across processes that share one store.
    return f"{kind.value}-{uuid.uuid4().hex[:8]}"


class ComponentMonitor:
    """Records one workload object into the observability engine; subclasses know how.

    ``recorder`` is the component's ``ComponentMetricsCollector``; ``errors`` counts the
    exceptions raised while recording (each caught and logged, never re-raised). A monitor
    that keeps raw records of its own overrides ``push()``, which the engine calls on every
    tick before the fold (``ObservabilityEngine.add_recorder``).
    """

    component_type: ComponentType

    def __init__(
        self,
        *,
        component_id: str | None = None,
        engine: ObservabilityEngine | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if component_id is not None and (not isinstance(component_id, str) or not component_id):
            raise ValidationError(f"component_id must be a non-empty string, got {component_id!r}")
        if engine is not None and not isinstance(engine, ObservabilityEngine):
            raise ValidationError(
                f"engine must be an ObservabilityEngine, got {type(engine).__name__}"
            )
        self.engine = engine if engine is not None else get_observability_engine()
        self.component_id = component_id or _new_component_id(self.component_type)
        self.recorder: ComponentMetricsCollector = self.engine.register_component(
            self.component_id, self.component_type, metadata=metadata
        )
        self.errors = 0
        self.attached = False
        self._target: Any = None
        self._labels = dict(self.recorder.labels)
        self._error_counter = self._counter(MONITORING_ERRORS_METRIC)

    # handles are created once so that recording is one append each
    def _gauge(self, name: str) -> Callable[[float], None]:
        return self.recorder.collector.gauge(name, self._labels).set

    def _counter(self, name: str, **labels: str) -> Callable[[float], None]:
        return self.recorder.collector.counter(name, {**self._labels, **labels}).inc

    def _timer(self, name: str, **labels: str) -> Callable[[float], None]:
        return self.recorder.collector.timer(name, {**self._labels, **labels}).observe

    def _latency(self, operation: str) -> Callable[[float], None]:
        return self._timer(LATENCY_METRIC, operation=operation)

    def _success(self, operation: str) -> Callable[[float], None]:
        # The series record_success() writes, held as a handle.
        return self._counter(OPERATIONS_METRIC, operation=operation, outcome="success")

    def _failed(self, what: str) -> None:
        """Count and log an exception raised while recording; never raises."""
        self.errors += 1
        with contextlib.suppress(Exception):  # the error counter may be what is broken
            self._error_counter(1)
        if self.errors <= _LOG_FIRST or self.errors % _LOG_EVERY == 0:
            logger.warning(
                "recording %s of component %s failed (%d recording errors so far); "
                "the workload continues",
                what,
                self.component_id,
                self.errors,
                exc_info=True,
            )

    def push(self) -> None:
        """Turn what the workload's thread recorded since the previous tick into points (the
        engine calls it on every tick, before the fold); nothing by default."""

    def detach(self) -> None:
        """Stop recording: what is pending is pushed, the component is unregistered (its
        health is no longer judged, so no heartbeat-stale alert fires for a finished
        workload) and its series are marked stale; the series recorded so far stay."""
        if self.attached:
            self.push()
        self.engine.remove_recorder(self.push)
        self.attached = False
        with contextlib.suppress(ValidationError):  # unregistered already
            self.engine.unregister_component(self.component_id)
        target = self._target
        if target is not None and target.__dict__.get(MONITOR_ATTR) is self:
            del target.__dict__[MONITOR_ATTR]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(component_id={self.component_id!r}, "
            f"attached={self.attached}, errors={self.errors})"
        )
