"""The CMR monitor's alerts: when a health check's breach becomes an alert, and where it goes.

``AlertPolicy`` follows the design documents' ``alert_config``:

* a check (``high_latency``, ``low_efficiency``, ``high_error_rate``) breaches when its value
  passes its threshold; its severity grows with how far: ``warning`` past the threshold,
  ``error`` at ``severity_factors['error']`` times it (2x), ``critical`` at 4x (for
  ``low_efficiency`` the ratio is threshold / value);
* escalation rules delay each severity: an alert of a severity is raised once the check has
  been at that severity or worse for its ``delay`` seconds (``immediate`` = 0); a raised alert
  escalates to a higher severity as soon as that one's delay has passed;
* ``alert_cooldown``: once an alert of a check was raised, a new alert of the same check is
  not raised for that many seconds (escalations of an active alert are never held back); the
  held-back ones are counted in ``suppressed``;
* when the check clears, its active alert is sent again as ``resolved``.

Alerts go to sinks. A sink is anything with ``on_alert(alert)`` (and optionally
``on_metrics(samples, health)``, see ``MonitorSink``) or a plain callable taking the alert. The
channels ``console`` and ``log`` of ``alert_channels`` are built in; the observability engine
is one more sink, wired from ``allele.observability`` (this package knows nothing of it).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

from allele.errors import ValidationError, check_real

logger = logging.getLogger("allele.cmr.alerts")

SEVERITIES = ("warning", "error", "critical")
CHANNELS = ("console", "log")
CHECKS = ("high_latency", "low_efficiency", "high_error_rate")


@dataclass
class CMRAlert:
    """One alert event of a monitored CMR model."""

    check: str
    severity: str
    state: str  # "firing" or "resolved"
    value: float
    threshold: float
    message: str
    component_id: str
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))
    escalated_from: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "severity": self.severity,
            "state": self.state,
            "value": self.value,
            "threshold": self.threshold,
            "message": self.message,
            "component_id": self.component_id,
            "timestamp": self.timestamp.isoformat(),
            "escalated_from": self.escalated_from,
        }


@runtime_checkable
class AlertSink(Protocol):
    """Receives alert events; must not block for long (it runs on the monitored thread)."""

    def on_alert(self, alert: CMRAlert) -> None: ...


@runtime_checkable
class MonitorSink(AlertSink, Protocol):
    """An alert sink that also takes the monitor's measurements every collection interval:
    ``samples`` are the forward passes since the previous call (``ForwardRecord``s), ``health``
    the latest ``HealthReport``."""

    def on_metrics(self, samples: Sequence[Any], health: Any) -> None: ...


class LogSink:
    """Alerts on the ``allele.cmr.alerts`` logger (warning / error / critical levels)."""

    _LEVELS: ClassVar[dict[str, int]] = {
        "warning": logging.WARNING,
        "error": logging.ERROR,
        "critical": logging.CRITICAL,
    }

    def on_alert(self, alert: CMRAlert) -> None:
        level = self._LEVELS[alert.severity] if alert.state == "firing" else logging.INFO
        logger.log(level, "[%s] %s: %s", alert.severity.upper(), alert.state, alert.message)


class ConsoleSink:
    """Alerts printed to standard error, one line each."""

    def on_alert(self, alert: CMRAlert) -> None:
        print(f"[CMR {alert.severity.upper()}] {alert.state}: {alert.message}", file=sys.stderr)


class CallbackSink:
    """A plain callable as an alert sink."""

    def __init__(self, callback: Callable[[CMRAlert], object]) -> None:
        self.callback = callback

    def on_alert(self, alert: CMRAlert) -> None:
        self.callback(alert)


def as_sink(sink: object) -> AlertSink:
    """``sink`` as an ``AlertSink`` (a callable is wrapped); anything else is an error."""
    if isinstance(sink, AlertSink):
        return sink
    if callable(sink):
        return CallbackSink(sink)
    raise ValidationError(
        f"an alert sink needs an on_alert(alert) method or must be callable; got "
        f"{type(sink).__name__}"
    )


@dataclass
class _CheckState:
    since: dict[str, float] = field(default_factory=dict)  # severity -> held since (monotonic)
    active: str | None = None
    raised_at: float | None = None
    last_value: float = 0.0
    threshold: float = 0.0


class AlertPolicy:
    """Turns health-check breaches into alert events (see the module docstring)."""

    def __init__(self, alert_config: Mapping[str, Any] | None = None) -> None:
        config = dict(alert_config or {})
        known = {
            "enable_alerts",
            "alert_channels",
            "severity_levels",
            "alert_cooldown",
            "escalation_rules",
            "severity_factors",
        }
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValidationError(f"unknown alert_config keys {unknown}; allowed: {sorted(known)}")
        self.enabled = bool(config.get("enable_alerts", True))
        channels = list(config.get("alert_channels", ["log"]))
        for channel in channels:
            if channel not in CHANNELS:
                raise ValidationError(
                    f"alert channel {channel!r} is unknown; built in: {', '.join(CHANNELS)} "
                    "(other destinations are sinks)"
                )
        self.channels = channels
        levels = list(config.get("severity_levels", SEVERITIES))
        for level in levels:
            if level not in SEVERITIES:
                raise ValidationError(
                    f"severity level {level!r} is unknown; allowed: {', '.join(SEVERITIES)}"
                )
        self.levels = [s for s in SEVERITIES if s in levels]
        self.cooldown_s = check_real("alert_cooldown", config.get("alert_cooldown", 60.0), 0.0, 1e9)
        rules = config.get(
            "escalation_rules",
            {
                "critical": {"immediate": True},
                "error": {"delay": 30.0},
                "warning": {"delay": 300.0},
            },
        )
        self.delays: dict[str, float] = {}
        for severity in SEVERITIES:
            rule = dict(rules.get(severity, {"immediate": True}))
            if rule.get("immediate"):
                self.delays[severity] = 0.0
            else:
                self.delays[severity] = check_real(
                    f"escalation_rules[{severity!r}]['delay']", rule.get("delay", 0.0), 0.0, 1e9
                )
        factors = {"warning": 1.0, "error": 2.0, "critical": 4.0}
        factors.update(config.get("severity_factors", {}))
        self.factors = {
            s: check_real(f"severity_factors[{s!r}]", factors[s], 1.0, 1e9) for s in SEVERITIES
        }
        self.suppressed = 0
        self._checks: dict[str, _CheckState] = {}

    def severity_of(self, ratio: float) -> str | None:
        """The severity of a breach ``ratio`` (1 = at the threshold), or None below it."""
        found = None
        for severity in SEVERITIES:
            if severity in self.levels and ratio > self.factors[severity] - 1e-12 and ratio > 1.0:
                found = severity
        return found

    def evaluate(
        self,
        check: str,
        value: float | None,
        threshold: float,
        ratio: float | None,
        now: float,
        component_id: str,
    ) -> list[CMRAlert]:
        """The alert events of ``check`` now (``ratio``: how far past the threshold, None or
        <= 1 when it holds)."""
        if not self.enabled:
            return []
        state = self._checks.setdefault(check, _CheckState())
        severity = None if ratio is None else self.severity_of(ratio)
        events: list[CMRAlert] = []
        if severity is None:
            state.since.clear()
            if state.active is not None:
                events.append(
                    self._event(
                        check, state.active, "resolved", value, threshold, component_id, None
                    )
                )
                state.active = None
            return events
        assert value is not None
        rank = SEVERITIES.index(severity)
        for s in SEVERITIES:
            if SEVERITIES.index(s) <= rank:
                state.since.setdefault(s, now)
            else:
                state.since.pop(s, None)
        due = [
            s for s in self.levels if s in state.since and now - state.since[s] >= self.delays[s]
        ]
        if not due:
            return events
        top = due[-1]
        if state.active is not None and SEVERITIES.index(top) <= SEVERITIES.index(state.active):
            return events  # already raised at this severity or higher
        escalating = state.active is not None
        if (
            not escalating
            and state.raised_at is not None
            and now - state.raised_at < self.cooldown_s
        ):
            self.suppressed += 1
            return events
        events.append(
            self._event(check, top, "firing", value, threshold, component_id, state.active)
        )
        state.active = top
        state.raised_at = now
        return events

    def active(self) -> dict[str, str]:
        """The severity of each check's active alert."""
        return {check: s.active for check, s in self._checks.items() if s.active is not None}

    @staticmethod
    def _event(
        check: str,
        severity: str,
        state: str,
        value: float | None,
        threshold: float,
        component_id: str,
        escalated_from: str | None,
    ) -> CMRAlert:
        shown = float("nan") if value is None else float(value)
        verb = "below" if check == "low_efficiency" else "above"
        if state == "resolved":
            message = f"{component_id}: {check} cleared ({shown:.4g}, threshold {threshold:g})"
        else:
            message = f"{component_id}: {check} {shown:.4g} {verb} threshold {threshold:g}"
            if escalated_from:
                message += f" (escalated from {escalated_from})"
        return CMRAlert(
            check=check,
            severity=severity,
            state=state,
            value=shown,
            threshold=threshold,
            message=message,
            component_id=component_id,
            escalated_from=escalated_from,
        )


def channel_sinks(channels: Sequence[str]) -> list[AlertSink]:
    """The built-in sinks of ``alert_channels``."""
    built: dict[str, Callable[[], AlertSink]] = {"console": ConsoleSink, "log": LogSink}
    return [built[c]() for c in channels]
