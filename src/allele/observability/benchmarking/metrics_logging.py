"""Real-time MLflow logging of the observability engine's series and alerts during a long run.

``LiveMetricsLogger(engine, experiment_logger, where).attach()`` subscribes to what the engine
offers from the outside -- a tick listener (called on the engine's thread right after each fold)
and a notifier on its alert manager -- and logs on the MLflow run ``where`` names:

- gauges (system CPU, memory, disk, process RSS, heartbeat ages, error rates...): every new point
  with its own timestamp;
- counters: the running total at each tick;
- histograms, timers and distributions (component latencies): per tick, the count and the p50,
  p95 and p99 of the observations recorded since the previous tick, stamped with the tick;
- alerts: ``alert/<rule>`` is 1 from the moment an alert fires and 0 when it resolves, and each
  firing is tagged on the run (``allele.alert.<n>``: rule, severity, labels, message, time), so
  an alert can be lined up with the phase of the run it fired in.

Metric keys are ``<name>`` or ``<name>/<label>_<value>...`` (MLflow allows letters, digits,
``_ - . /`` and spaces; anything else becomes ``_``). A tick only reads the collector's retained
points and queues one ``log`` operation; the ``ExperimentLogger``'s thread sends them in
``log_batch`` calls of ``ALLELE_MLFLOW_METRICS_BATCH_SIZE`` metrics, so the monitored program
pays for none of the network. Points older than the collector's ring are not seen (the ring
holds ``ALLELE_SERIES_CAPACITY`` points per series; a tick a second reads far fewer).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from typing import Any

import numpy as np

from allele.observability.benchmarking.experiment_logger import ExperimentLogger, now_ms
from allele.observability.collector import INSTANCE_LABEL
from allele.observability.mlflow_integration.spool import Operation
from allele.observability.types import Alert, MetricType, SeriesKey

logger = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^\w\-./ ]")
_DISTRIBUTIONS = (MetricType.HISTOGRAM, MetricType.TIMER, MetricType.DISTRIBUTION)


def metric_key(key: SeriesKey) -> str:
    """The MLflow metric name of a series: ``name`` or ``name/label_value/...``; the writer's
    ``instance`` label is left out (a run is logged by one writer)."""
    parts = [key.name, *(f"{k}_{v}" for k, v in key.labels if k != INSTANCE_LABEL)]
    return _UNSAFE.sub("_", "/".join(parts))[:250]


class LiveMetricsLogger:
    """Logs an engine's series and alerts on one MLflow run while attached.

    ``where`` is the run's address as experiment-tracking operations give it (``key``,
    ``experiment``, ``group``, ``parent``).
    """

    def __init__(self, engine: Any, experiment_logger: ExperimentLogger, where: Operation) -> None:
        self.engine = engine
        self.logger = experiment_logger
        self.where = {k: where[k] for k in ("key", "experiment", "group", "parent")}
        self._cursor: dict[SeriesKey, float] = {}
        self._steps: dict[str, int] = {}
        self._alerts = 0
        self._lock = threading.Lock()
        self.points_logged = 0

    def attach(self) -> LiveMetricsLogger:
        """Start logging on every engine tick and every alert event; returns self."""
        # Only what is recorded from now on: the run did not exist before.
        for key in self.engine.collector.series_keys():
            self._cursor[key] = self.engine.clock.time()
        self.engine.add_tick_listener(self.tick)
        if self not in self.engine.alerts.notifiers:
            self.engine.alerts.notifiers.append(self)
        return self

    def detach(self) -> None:
        """Stop logging after a last sample of the machine (a run shorter than the engine's
        collection interval still gets one), and send what the last tick reads."""
        self.engine.remove_tick_listener(self.tick)
        if self.engine.running:
            try:
                self.engine.collect_once()
            except Exception:
                logger.exception("MLflow tracking: the last system sample failed")
        if self in self.engine.alerts.notifiers:
            self.engine.alerts.notifiers.remove(self)
        self.tick()

    # the engine's side ---------------------------------------------------------------------------

    def tick(self) -> None:
        """Queue the points recorded since the previous tick (the engine calls it)."""
        with self._lock:
            metrics = self._new_points()
        if metrics:
            self.points_logged += len(metrics)
            self.logger.submit([{**self.where, "op": "log", "metrics": metrics}])

    def _new_points(self) -> list[list[Any]]:
        collector = self.engine.collector
        now = self.engine.clock.time()
        out: list[list[Any]] = []
        for key in collector.series_keys():
            since = self._cursor.get(key, -np.inf)
            ts, values = collector.points(key.name, dict(key.labels), key.kind)
            fresh = ts > since
            if not fresh.any():
                continue
            self._cursor[key] = float(ts[fresh][-1])
            name = metric_key(key)
            if key.kind is MetricType.GAUGE:
                for t, v in zip(ts[fresh].tolist(), values[fresh].tolist(), strict=True):
                    out.append([name, v, int(t * 1000), self._step(name)])
            elif key.kind is MetricType.COUNTER:
                total = collector.snapshot(key.name)
                for snap in total:
                    if snap.key == key:
                        out.append([name, float(snap.sum), int(now * 1000), self._step(name)])
            elif key.kind in _DISTRIBUTIONS:
                chosen = values[fresh]
                stamp = int(now * 1000)
                p50, p95, p99 = np.percentile(chosen, [50.0, 95.0, 99.0]).tolist()
                for suffix, value in (
                    ("count", float(len(chosen))),
                    ("p50", p50),
                    ("p95", p95),
                    ("p99", p99),
                ):
                    out.append([f"{name}/{suffix}", value, stamp, self._step(f"{name}/{suffix}")])
        return out

    def _step(self, name: str) -> int:
        step = self._steps.get(name, 0)
        self._steps[name] = step + 1
        return step

    # the alert manager's side (a Notifier) --------------------------------------------------------

    def notify(self, alert: Alert, event: str) -> None:
        """Tag a firing alert on the run and mark its span as ``alert/<rule>`` = 1, then 0."""
        try:
            name = "alert/" + _UNSAFE.sub("_", alert.rule_name)[:200]
            if event == "firing":
                stamp = int((alert.fired_at or alert.started_at).timestamp() * 1000)
                with self._lock:
                    self._alerts += 1
                    n = self._alerts
                    step = self._step(name)
                detail = {
                    "rule": alert.rule_name,
                    "severity": str(alert.severity),
                    "labels": alert.labels,
                    "value": alert.value,
                    "threshold": alert.threshold,
                    "message": alert.message,
                    "fired_at": alert.fired_at.isoformat() if alert.fired_at else None,
                }
                op = {
                    **self.where,
                    "op": "log",
                    "metrics": [[name, 1.0, stamp, step]],
                    "tags": {f"allele.alert.{n}": json.dumps(detail, default=str)[:8000]},
                }
                self.logger.submit([op])
            elif event == "resolved":
                stamp = int((alert.resolved_at.timestamp() if alert.resolved_at else 0) * 1000)
                with self._lock:
                    step = self._step(name)
                metrics = [[name, 0.0, stamp or now_ms(), step]]
                self.logger.submit([{**self.where, "op": "log", "metrics": metrics}])
        except Exception:  # a notifier must not break alerting
            logger.exception("MLflow tracking: could not log alert %s", alert.rule_name)

    def close(self) -> None:
        """Nothing to release (the ExperimentLogger has its own lifecycle)."""
