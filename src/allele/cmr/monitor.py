"""``CMRPerformanceMonitor``: live statistics, health, diagnostics, profiling, alerts and
reports of a ``FullCMRModel``.

>>> monitor = CMRPerformanceMonitor(model, monitoring_config, alert_config)  # doctest: +SKIP
>>> monitor.enable_real_time_monitoring()                                   # doctest: +SKIP
>>> with monitor.track_performance():                                       # doctest: +SKIP
...     outputs = model(input_ids)
>>> monitor.get_live_stats()["health"]["status"]                            # doctest: +SKIP
'green'

What it costs the model: with real-time monitoring on, the model hands each forward pass's
``ForwardRecord`` (which it builds anyway) to the monitor, which appends it to a bounded
history. Everything else -- health checks and alerts (every ``health_check_interval``
seconds), the sinks' metrics (every ``metric_collection_interval`` seconds), statistics --
runs from that history when due or when read. ``benchmarks/bench_cmr.py`` measures the cost.

Health: three checks from ``alert_thresholds`` over the forward passes of the last
``health_window`` (default: the latest ``max_history``):

* ``high_latency``: median forward time (s) above the threshold (the median, so that one cold
  first pass does not make a model slow);
* ``low_efficiency``: the lower of capture and storage efficiency below the threshold;
* ``high_error_rate``: failed forward passes / forward passes above the threshold.

Each check's ratio (value / threshold; threshold / value for efficiency) gives the status:
``green`` when every check holds, ``yellow`` when the worst ratio is under the ``error``
severity factor (2), ``red`` beyond. The score is the lowest of ``min(1, 1 / ratio)``.

The monitor never breaks the model: its own failures are caught, counted in ``errors`` and
logged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from allele.cmr.alerting import (
    CHECKS,
    AlertPolicy,
    AlertSink,
    CMRAlert,
    MonitorSink,
    as_sink,
    channel_sinks,
)
from allele.cmr.config import monitoring_config
from allele.cmr.exports import export_csv
from allele.cmr.health import STATUS_WORDS, CheckResult, HealthReport, ratio_status, worst
from allele.cmr.model import FullCMRModel
from allele.cmr.stats import ForwardRecord
from allele.errors import ValidationError

logger = logging.getLogger("allele.cmr.monitor")


class CMRPerformanceMonitor:
    """Watches one ``FullCMRModel`` (see the module docstring).

    ``config``: the design documents' ``monitoring_config`` (missing keys take the documents'
    values); ``alert_config``: their ``alert_config`` (see ``allele.cmr.alerting``);
    ``sinks``: more alert / metric sinks; ``component_id``: the name alerts carry;
    ``clock``: monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        model: FullCMRModel,
        config: Mapping[str, Any] | None = None,
        alert_config: Mapping[str, Any] | None = None,
        *,
        sinks: Sequence[object] = (),
        component_id: str = "cmr_model",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(model, FullCMRModel):
            raise ValidationError(f"model must be a FullCMRModel, got {type(model).__name__}")
        self.model = model
        self.config = monitoring_config(config)
        self.thresholds: dict[str, float] = self.config["alert_thresholds"]
        self.policy = AlertPolicy(alert_config)
        self.sinks: list[AlertSink] = [*channel_sinks(self.policy.channels)]
        self.sinks.extend(as_sink(s) for s in sinks)
        self.component_id = component_id
        self.clock = clock
        self.errors = 0
        history = self.config["max_history"]
        #: The latest forward passes, each with the wall time it ended.
        self.history: deque[tuple[float, ForwardRecord]] = deque(maxlen=history)
        self.health_history: deque[HealthReport] = deque(maxlen=history)
        self.alert_history: deque[CMRAlert] = deque(maxlen=history)
        self.error_log: deque[tuple[float, str]] = deque(maxlen=history)
        self.resource_history: deque[dict[str, float]] = deque(maxlen=history)
        self.tracked_blocks: deque[dict[str, Any]] = deque(maxlen=history)
        self.real_time = False
        self.profiling_enabled = bool(self.config["enable_profiling"])
        self._profile: Any = None
        self._unsent: list[ForwardRecord] = []
        now = clock()
        self._next_health = now + self.config["health_check_interval"]
        self._next_metrics = now + self.config["metric_collection_interval"]
        self._started = now
        if self.config["enable_real_time"]:
            self.enable_real_time_monitoring()

    # recording ---------------------------------------------------------------------------------

    def enable_real_time_monitoring(self) -> None:
        """Record every forward pass of the model from now on."""
        self.model.add_forward_listener(self._on_forward)
        self.real_time = True

    def disable_real_time_monitoring(self) -> None:
        """Stop recording forward passes (what was recorded stays)."""
        self.model.remove_forward_listener(self._on_forward)
        self.real_time = False

    def add_sink(self, sink: object) -> None:
        """Send alerts (and, for a ``MonitorSink``, metrics) to ``sink`` too."""
        self.sinks.append(as_sink(sink))

    def _on_forward(self, record: ForwardRecord) -> None:
        # The hot path: one append, one clock read, one comparison.
        self.history.append((time.time(), record))
        self._unsent.append(record)
        if record.error is not None:
            self.error_log.append((time.time(), record.error))
        now = self.clock()
        if now >= self._next_metrics or now >= self._next_health:
            self._due(now)

    def _due(self, now: float) -> None:
        try:
            if now >= self._next_health:
                self._next_health = now + self.config["health_check_interval"]
                self.check_health()
            if now >= self._next_metrics:
                self._next_metrics = now + self.config["metric_collection_interval"]
                self.push_metrics()
        except Exception:
            self._failed("a scheduled health check")

    def _failed(self, what: str) -> None:
        self.errors += 1
        if self.errors <= 3 or self.errors % 1000 == 0:
            logger.warning("CMR monitor: %s failed; the model continues", what, exc_info=True)

    @contextlib.contextmanager
    def track_performance(self) -> Iterator[dict[str, Any]]:
        """Time the block and note the forward passes it ran; an exception in it is recorded
        as an error of the model and re-raised. Yields the block's record (filled at exit)."""
        block: dict[str, Any] = {"started_at": time.time()}
        forwards = self.model.stats.forwards
        errors = self.model.stats.errors
        start = time.perf_counter()
        try:
            yield block
        except BaseException as exc:
            block["error"] = type(exc).__name__
            if self.model.stats.errors == errors:  # failed outside the model's forward
                self.error_log.append((time.time(), type(exc).__name__))
            raise
        finally:
            block["duration_s"] = time.perf_counter() - start
            block["forward_passes"] = self.model.stats.forwards - forwards
            if (
                not self.real_time
                and self.model.last_record is not None
                and block["forward_passes"]
            ):
                self.history.append((time.time(), self.model.last_record))
                self._unsent.append(self.model.last_record)
            self.tracked_blocks.append(block)

    # statistics --------------------------------------------------------------------------------

    def _window(self) -> list[ForwardRecord]:
        n = self.config["health_window"]
        records = [r for _, r in self.history]
        return records[-n:]

    def _figures(self, records: Sequence[ForwardRecord]) -> dict[str, Any]:
        forwards = len(records)
        failed = sum(r.error is not None for r in records)
        ok = [r for r in records if r.error is None]
        seconds = sum(r.duration_s for r in ok)
        selected = sum(sum(r.selected.values()) for r in ok)
        captured = sum(r.total_captured for r in ok)
        stored = sum(r.total_stored for r in ok)
        reconstructions = sum(r.total_reconstructions for r in ok)
        queries = sum(r.retrieval_queries for r in ok)
        durations = sorted(r.duration_s for r in ok)
        last = records[-1] if records else None
        return {
            "forward_passes": forwards,
            "errors": failed,
            "error_rate": failed / forwards if forwards else None,
            "avg_latency": seconds / len(ok) if ok else None,
            "p50_latency": _quantile(durations, 0.5),
            "p95_latency": _quantile(durations, 0.95),
            "throughput": sum(r.batch for r in ok) / seconds if seconds > 0 else None,
            "tokens_per_second": sum(r.batch * r.positions for r in ok) / seconds
            if seconds > 0
            else None,
            "capture_efficiency": captured / selected if selected else None,
            "storage_efficiency": stored / captured if captured else None,
            "reconstruction_quality": sum(r.quality_sum for r in ok) / reconstructions
            if reconstructions
            else None,
            "cache_hit_rate": sum(r.retrieval_hits for r in ok) / queries if queries else None,
            "retrieval_quality": sum(r.best_score_sum for r in ok) / queries if queries else None,
            "avg_capture_time": _mean([t for r in ok for t in r.capture_s]),
            "avg_reconstruction_time": _mean([t for r in ok for t in r.reconstruction_s]),
            "avg_retrieval_time": _mean([t for r in ok for t in r.retrieval_s]),
            "memory_utilization": last.memory_entries / last.memory_capacity
            if last is not None and last.memory_capacity
            else (0.0 if last is not None else None),
            "memory_entries": last.memory_entries if last is not None else 0,
            "memory_size_mb": last.memory_bytes / 2**20 if last is not None else 0.0,
        }

    def health(self, figures: Mapping[str, Any] | None = None) -> HealthReport:
        """The health now, from the window's figures (reads only: nothing is recorded)."""
        f = figures if figures is not None else self._figures(self._window())
        t = self.thresholds
        factor = self.policy.factors["error"]
        latency = f["p50_latency"]
        efficiencies = [
            e for e in (f["capture_efficiency"], f["storage_efficiency"]) if e is not None
        ]
        efficiency = min(efficiencies) if efficiencies else None
        error_rate = f["error_rate"]
        ratios = {
            "high_latency": None if latency is None else latency / t["high_latency"],
            "low_efficiency": None
            if efficiency is None
            else t["low_efficiency"] / max(efficiency, 1e-12),
            "high_error_rate": None if error_rate is None else error_rate / t["high_error_rate"],
        }
        values = {
            "high_latency": latency,
            "low_efficiency": efficiency,
            "high_error_rate": error_rate,
        }
        checks = {
            name: CheckResult(
                name, values[name], t[name], ratios[name], ratio_status(ratios[name], factor)
            )
            for name in CHECKS
        }
        known = [r for r in ratios.values() if r is not None]
        score = min(min(1.0, 1.0 / r) if r > 0 else 1.0 for r in known) if known else None
        return HealthReport(
            status=worst([c.status for c in checks.values()]),
            score=score,
            checks=checks,
            components=self._component_status(f, factor),
        )

    def _component_status(self, f: Mapping[str, Any], factor: float) -> dict[str, str]:
        low = self.thresholds["low_efficiency"]

        def below(value: float | None) -> str:
            ratio = None if value is None else low / max(value, 1e-12)
            return STATUS_WORDS[ratio_status(ratio, factor)]

        return {
            "memory_buffer": below(f["storage_efficiency"]),
            "retrieval_system": below(f["cache_hit_rate"]),
            "reconstruction": below(f["reconstruction_quality"]),
            "hooks": below(f["capture_efficiency"]),
        }

    def check_health(self) -> HealthReport:
        """Judge the health now, keep it in the health history, raise or resolve alerts."""
        report = self.health()
        self.health_history.append(report)
        self._sample_resources()
        now = self.clock()
        for name, check in report.checks.items():
            for alert in self.policy.evaluate(
                name, check.value, check.threshold, check.ratio, now, self.component_id
            ):
                self._send(alert)
        return report

    def _send(self, alert: CMRAlert) -> None:
        self.alert_history.append(alert)
        for sink in self.sinks:
            try:
                sink.on_alert(alert)
            except Exception:
                self._failed(f"alert sink {type(sink).__name__}")

    def push_metrics(self) -> None:
        """Give the forward passes since the previous push to the metric sinks."""
        samples, self._unsent = self._unsent, []
        health = self.health_history[-1] if self.health_history else None
        for sink in self.sinks:
            if isinstance(sink, MonitorSink):
                try:
                    sink.on_metrics(samples, health)
                except Exception:
                    self._failed(f"metric sink {type(sink).__name__}")

    def _sample_resources(self) -> None:
        import psutil

        process = psutil.Process(os.getpid())
        last = self.history[-1][1] if self.history else None
        self.resource_history.append(
            {
                "timestamp": time.time(),
                "process_rss_bytes": float(process.memory_info().rss),
                "process_cpu_seconds": float(sum(process.cpu_times()[:2])),
                "memory_buffer_mb": (last.memory_bytes / 2**20) if last else 0.0,
                "memory_entries": float(last.memory_entries) if last else 0.0,
            }
        )

    def get_live_stats(self) -> dict[str, Any]:
        """Statistics of the latest forward passes, the model's running totals and the
        health now."""
        figures = self._figures(self._window())
        return {
            **figures,
            "uptime_s": self.clock() - self._started,
            "real_time": self.real_time,
            "health": self.health(figures).to_dict(),
            "performance_stats": self.model.performance_stats,
            "buffer_stats": self.model.buffer_stats(),
            "retrieval_stats": self.model.retrieval_stats(),
            "active_alerts": self.policy.active(),
            "alerts_suppressed": self.policy.suppressed,
            "monitor_errors": self.errors,
        }

    # diagnostics -------------------------------------------------------------------------------

    def run_diagnostics(self) -> dict[str, Any]:
        """``component_health``, ``hook_analysis`` and ``memory_analysis`` of the model now."""
        figures = self._figures(self._window())
        report = self.health(figures)
        return {
            "timestamp": datetime.now(UTC).isoformat(),
            "system_health": report.system_health,
            "component_health": self._component_health(figures, report),
            "hook_analysis": self._hook_analysis(),
            "memory_analysis": self._memory_analysis(),
        }

    def _component_health(
        self, f: Mapping[str, Any], report: HealthReport
    ) -> dict[str, dict[str, Any]]:
        c = report.components
        stats = self.model.buffer_stats()
        return {
            "memory_buffer": {
                "status": c["memory_buffer"],
                "storage_efficiency": f["storage_efficiency"],
                "utilization": stats["utilization_rate"],
                "eviction_rate": stats["eviction_rate"],
            },
            "retrieval_system": {
                "status": c["retrieval_system"],
                "cache_hit_rate": f["cache_hit_rate"],
                "retrieval_quality": f["retrieval_quality"],
                "avg_retrieval_time": f["avg_retrieval_time"],
            },
            "reconstruction": {
                "status": c["reconstruction"],
                "reconstruction_quality": f["reconstruction_quality"],
                "avg_reconstruction_time": f["avg_reconstruction_time"],
                "mean_gate": self.model.performance_stats["mean_gate"],
            },
            "hooks": {
                "status": c["hooks"],
                "capture_efficiency": f["capture_efficiency"],
                "avg_capture_time": f["avg_capture_time"],
            },
        }

    def _hook_analysis(self) -> dict[str, Any]:
        model = self.model
        config = model.config
        ours = dict(model.hook_handles())
        blocks: Any = model.backbone.blocks
        stats = model.stats
        layers: dict[int, dict[str, Any]] = {}
        for layer in sorted(set(config.target_layers) | set(config.intervention_layers)):
            hooks = blocks[layer]._forward_hooks
            handle = ours.get(layer)
            registered = handle is not None and handle.id in hooks
            role = [
                name
                for name, members in (
                    ("capture", config.target_layers),
                    ("reweave", config.intervention_layers),
                )
                if layer in members
            ]
            layers[layer] = {
                "role": "+".join(role),
                "registered": registered,
                "calls": model.hook_calls.get(layer, 0),
                # Hooks someone else put on the same block run around ours: a conflict risk.
                "other_hooks": len(hooks) - int(registered),
                "captured": stats.captured.get(layer, 0),
                "reconstructions": stats.reconstructions.get(layer, 0),
            }
        hook_time = stats.capture_time_total + stats.reconstruction_time_total
        return {
            "layers": layers,
            "hooks_registered": sum(v["registered"] for v in layers.values()),
            "conflicts": [layer for layer, v in layers.items() if v["other_hooks"] > 0],
            "avg_capture_time": stats.capture_time_total / stats.capture_ops
            if stats.capture_ops
            else None,
            "avg_reconstruction_time": stats.reconstruction_time_total / stats.reconstruction_ops
            if stats.reconstruction_ops
            else None,
            "hook_time_share": hook_time / stats.total_forward_time
            if stats.total_forward_time
            else None,
        }

    def _memory_analysis(self) -> dict[str, Any]:
        b = self.model.buffer
        analysis: dict[str, Any] = dict(self.model.buffer_stats())
        if b.entries is None or not len(b):
            analysis.update(per_layer={}, accessed_fraction=None, mean_access_count=None)
            return analysis
        import torch

        per_layer: dict[int, dict[str, float | None]] = {}
        for layer in b.layers:
            mine = b.valid & (b.layer == layer)
            n = int(mine.sum())
            if not n:
                per_layer[layer] = {"entries": 0, "mean_relevance": None, "mean_age_steps": None}
                continue
            age = (b.step - b.born).to(torch.float64)
            per_layer[layer] = {
                "entries": n,
                "mean_relevance": float(b.relevance[mine].mean()),
                "mean_age_steps": float(age[mine].mean()),
                "accessed_fraction": float((b.access_count[mine] > 0).float().mean()),
            }
        valid = b.valid
        analysis.update(
            per_layer=per_layer,
            accessed_fraction=float((b.access_count[valid] > 0).float().mean()),
            mean_access_count=float(b.access_count[valid].float().mean()),
        )
        return analysis

    # profiling ---------------------------------------------------------------------------------

    def enable_profiling(self) -> None:
        """Allow ``profile_execution()`` to run torch's profiler."""
        self.profiling_enabled = True

    def disable_profiling(self) -> None:
        self.profiling_enabled = False

    @contextlib.contextmanager
    def profile_execution(self) -> Iterator[None]:
        """Run the block under ``torch.profiler`` (CPU time and memory per operator; the
        model's capture and reweave regions marked); read it with ``get_profile_results``.
        Without ``enable_profiling()`` the block runs unprofiled."""
        if not self.profiling_enabled:
            yield
            return
        from torch.profiler import ProfilerActivity, profile

        self.model.profiling = True
        profiler = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
        start = time.perf_counter()
        try:
            with profiler:
                yield
        finally:
            self.model.profiling = False
            self._profile = (profiler, time.perf_counter() - start)

    def get_profile_results(self, top: int = 10) -> dict[str, Any]:
        """The latest profile: wall time, the model's regions and the ``top`` operators by
        their own CPU time (times in seconds)."""
        if self._profile is None:
            raise ValidationError(
                "no profile yet: call enable_profiling() and run a block in profile_execution()"
            )
        profiler, wall = self._profile
        events = profiler.key_averages()
        regions = {
            e.key: {"calls": e.count, "cpu_time_s": e.cpu_time_total / 1e6}
            for e in events
            if e.key.startswith("cmr.")
        }
        operators = sorted(
            (e for e in events if not e.key.startswith("cmr.")),
            key=lambda e: e.self_cpu_time_total,
            reverse=True,
        )
        rows = [
            {
                "name": e.key,
                "calls": e.count,
                "self_cpu_time_s": e.self_cpu_time_total / 1e6,
                "cpu_time_s": e.cpu_time_total / 1e6,
                "cpu_memory_bytes": e.self_cpu_memory_usage,
            }
            for e in operators[:top]
        ]
        return {
            "wall_time_s": wall,
            "self_cpu_time_s": sum(e.self_cpu_time_total for e in events) / 1e6,
            "regions": regions,
            "top_operations": rows,
            "bottleneck": rows[0]["name"] if rows else None,
            "table": events.table(sort_by="self_cpu_time_total", row_limit=top),
        }

    # reports -----------------------------------------------------------------------------------

    def generate_report(self) -> dict[str, Any]:
        """The JSON report of the design documents (plus the health score and checks)."""
        figures = self._figures(self._window())
        report = self.health(figures)
        return {
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "system_health": report.system_health,
            "performance_metrics": {
                "avg_latency": figures["avg_latency"],
                "throughput": figures["throughput"],
                "error_rate": figures["error_rate"],
            },
            "component_status": {
                k: report.components[k]
                for k in ("memory_buffer", "retrieval_system", "reconstruction")
            },
            "health_score": report.score,
            "health_status": report.status,
            "checks": {name: c.to_dict() for name, c in report.checks.items()},
            "forward_passes": figures["forward_passes"],
            "alerts": [a.to_dict() for a in self.alert_history],
        }

    def save_report(self, path: str | Path) -> Path:
        """Write ``generate_report()`` as JSON to ``path``; return the path."""
        target = Path(path)
        target.write_text(json.dumps(self.generate_report(), indent=2) + "\n", encoding="utf-8")
        return target

    def export_csv(self, directory: str | Path) -> dict[str, Path]:
        """Write the CSV exports into ``directory`` (see ``allele.cmr.exports``)."""
        return export_csv(
            directory, self.history, self.health_history, self.error_log, self.resource_history
        )

    def close(self) -> None:
        """Stop recording and hand the last measurements to the sinks."""
        self.disable_real_time_monitoring()
        try:
            self.push_metrics()
        except Exception:
            self._failed("the last metrics push")


def _quantile(ordered: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile of sorted values (linear interpolation), None when empty."""
    if not ordered:
        return None
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None
