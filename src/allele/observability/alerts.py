"""Alert rules evaluated over windows, the alert state machine, and its history.

``AlertManager.evaluate()`` reduces, for every rule, each matching series' last ``window_s``
seconds to one number (``mean``, ``p95``, ``max``, ``rate``...; never a single raw sample) and
moves each (rule, series) pair through its states::

    (new) --condition holds--> PENDING --held for_s, cooldown over--> FIRING
    PENDING --condition clears--> RESOLVED (never fired, not in the history)
    FIRING  --condition clears, or resolve(by, comment)--> RESOLVED
    FIRING  --condition clears, rule has keep_firing_for_s--> RECOVERING
    RECOVERING --condition holds again--> FIRING (the same alert, no new notification)
    RECOVERING --cleared for keep_firing_for_s--> RESOLVED

A firing alert can be acknowledged (who, when, comment) and resolved by hand (who, when,
comment). After a fired alert ends, the same rule and series cannot fire again until
``cooldown_s`` seconds have passed (it stays pending meanwhile). Resolved alerts go to the
history; ``drain_changes()`` hands every alert whose state changed to the store's flusher.

The engine calls ``evaluate()`` on its background thread; tests call it directly with a
``ManualClock``. A notifier with a ``tick()`` method (the router, whose groups wait and repeat
on timers) is ticked at the end of every evaluation.
"""

from __future__ import annotations

import copy
import logging
import threading
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from allele.errors import ValidationError
from allele.observability.clock import Clock, utc_datetime
from allele.observability.collector import MetricsCollector
from allele.observability.notify import Notifier
from allele.observability.types import Alert, AlertRule, AlertSeverity, AlertState

logger = logging.getLogger("allele.observability.alerts")

_SEVERITY_ORDER = {s: i for i, s in enumerate(AlertSeverity)}
_SYMBOL = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "==", "ne": "!="}

_Labels = tuple[tuple[str, str], ...]


@dataclass(slots=True)
class _Tracked:
    alert: Alert
    started_mono: float
    recovering_mono: float | None = None


class AlertManager:
    """Holds the rules, evaluates them against a collector and keeps alerts and their history.

    >>> from allele.observability.clock import ManualClock
    >>> clock = ManualClock()
    >>> collector = MetricsCollector(clock=clock)
    >>> manager = AlertManager(collector, clock=clock, notifiers=[])
    >>> manager.add_rule(AlertRule(name="slow", metric="latency_seconds", operator="gt",
    ...                            threshold=0.5, aggregation="p95", window_s=60))
    >>> collector.histogram("latency_seconds").observe(0.9)
    >>> [a.state.value for a in manager.evaluate()]
    ['firing']
    """

    def __init__(
        self,
        collector: MetricsCollector,
        *,
        clock: Clock | None = None,
        notifiers: Iterable[Notifier] | None = None,
        history_size: int = 1000,
        enabled: bool = True,
        changes_capacity: int = 10_000,
    ) -> None:
        self.collector = collector
        self.clock: Clock = clock or collector.clock
        if notifiers is None:
            from allele.observability.notify import LogNotifier

            notifiers = [LogNotifier()]
        self.notifiers: list[Notifier] = list(notifiers)
        self.enabled = enabled
        self._lock = threading.RLock()
        self._rules: dict[str, AlertRule] = {}
        self._active: dict[tuple[str, _Labels], _Tracked] = {}
        self._by_id: dict[str, Alert] = {}
        self._ended_mono: dict[tuple[str, _Labels], float] = {}
        self._history: deque[Alert] = deque(maxlen=history_size)
        self._changes: dict[str, Alert] = {}
        # Without a store nobody drains the changes: keep the newest ones, count the rest.
        self._changes_capacity = changes_capacity
        self.changes_dropped = 0
        self.notification_errors = 0

    # rules -------------------------------------------------------------------------------------

    def add_rule(self, rule: AlertRule, *, replace: bool = False) -> None:
        """Add ``rule``; a rule of the same name is an error unless ``replace=True``."""
        if not isinstance(rule, AlertRule):
            raise ValidationError(f"add_rule needs an AlertRule, got {type(rule).__name__}")
        with self._lock:
            if rule.name in self._rules and not replace:
                raise ValidationError(
                    f"an alert rule named {rule.name!r} exists; pass replace=True to replace it"
                )
            self._rules[rule.name] = rule

    def add_rules(self, rules: Iterable[AlertRule]) -> None:
        """Add every rule whose name is not taken yet (used for default rules)."""
        with self._lock:
            for rule in rules:
                self._rules.setdefault(rule.name, rule)

    def remove_rule(self, name: str) -> None:
        """Remove a rule and resolve its active alerts."""
        with self._lock:
            if name not in self._rules:
                raise ValidationError(f"no alert rule named {name!r}; known: {sorted(self._rules)}")
            del self._rules[name]
            events = [
                self._end(key, tracked, by=None, comment="rule removed")
                for key, tracked in list(self._active.items())
                if key[0] == name
            ]
        self._dispatch(e for e in events if e is not None)

    def rules(self) -> list[AlertRule]:
        """Return the rules, by name."""
        with self._lock:
            return [self._rules[n] for n in sorted(self._rules)]

    # evaluation ------------------------------------------------------------------------------

    def evaluate(self) -> list[Alert]:
        """Evaluate every rule now; return (copies of) the alerts whose state changed."""
        if not self.enabled:
            return []
        events: list[tuple[Alert, str]] = []
        changed: list[Alert] = []
        with self._lock:
            now_mono = self.clock.monotonic()
            seen: set[tuple[str, _Labels]] = set()
            for rule in list(self._rules.values()):
                for key, value in self._values(rule):
                    seen.add(key)
                    holds = value is not None and rule.operator.compare(value, rule.threshold)
                    self._step(rule, key, value, holds, now_mono, events, changed)
            for key in [k for k in self._active if k not in seen]:
                # The series no longer has data in the window: the condition cannot hold.
                rule = self._rules[key[0]]
                self._step(rule, key, None, False, now_mono, events, changed)
            self._forget_old()
        self._dispatch(events)
        self._tick_notifiers()
        return changed

    def _values(self, rule: AlertRule) -> list[tuple[tuple[str, _Labels], float | None]]:
        out: list[tuple[tuple[str, _Labels], float | None]] = []
        for key, summary in self.collector.query(rule.metric, rule.labels, rule.window_s):
            if not rule.matches(key.labels):
                continue
            value = summary.get(rule.aggregation) if summary.count >= rule.min_samples else None
            out.append(((rule.name, key.labels), value))
        return out

    def _step(
        self,
        rule: AlertRule,
        key: tuple[str, _Labels],
        value: float | None,
        holds: bool,
        now_mono: float,
        events: list[tuple[Alert, str]],
        changed: list[Alert],
    ) -> None:
        tracked = self._active.get(key)
        now = utc_datetime(self.clock.time())
        if not holds:
            if tracked is not None:
                if value is not None:
                    tracked.alert.value = value
                if tracked.alert.state is AlertState.FIRING and rule.keep_firing_for_s > 0:
                    # Cleared, but it keeps firing a while (Prometheus's keep_firing_for).
                    tracked.alert.state = AlertState.RECOVERING
                    tracked.alert.updated_at = now
                    tracked.recovering_mono = now_mono
                    self._changed(tracked.alert)
                    changed.append(_copy(tracked.alert))
                    return
                if (
                    tracked.alert.state is AlertState.RECOVERING
                    and tracked.recovering_mono is not None
                    and now_mono - tracked.recovering_mono < rule.keep_firing_for_s
                ):
                    return
                event = self._end(key, tracked, by=None, comment="condition cleared")
                changed.append(_copy(tracked.alert))
                if event is not None:
                    events.append(event)
            return
        assert value is not None
        if tracked is None:
            alert = Alert(
                alert_id=uuid.uuid4().hex,
                rule_name=rule.name,
                metric=rule.metric,
                severity=rule.severity,
                state=AlertState.PENDING,
                value=value,
                threshold=rule.threshold,
                operator=rule.operator,
                aggregation=rule.aggregation,
                labels=dict(key[1]),
                message=self._message(rule, key[1], value),
                started_at=now,
                updated_at=now,
            )
            tracked = _Tracked(alert, now_mono)
            self._active[key] = tracked
            self._by_id[alert.alert_id] = alert
            self._changed(alert)
            changed_now = True
        else:
            tracked.alert.value = value
            tracked.alert.message = self._message(rule, key[1], value)
            changed_now = False
            if tracked.alert.state is AlertState.RECOVERING:
                # Held again within keep_firing_for: the same incident, still firing.
                tracked.alert.state = AlertState.FIRING
                tracked.alert.updated_at = now
                tracked.recovering_mono = None
                self._changed(tracked.alert)
                changed_now = True
        alert = tracked.alert
        if alert.state is AlertState.PENDING and self._may_fire(rule, key, tracked, now_mono):
            alert.state = AlertState.FIRING
            alert.fired_at = now
            alert.updated_at = now
            self._changed(alert)
            events.append((_copy(alert), "firing"))
            changed_now = True
        if changed_now:
            changed.append(_copy(alert))

    def _may_fire(
        self, rule: AlertRule, key: tuple[str, _Labels], tracked: _Tracked, now_mono: float
    ) -> bool:
        if now_mono - tracked.started_mono < rule.for_s:
            return False
        ended = self._ended_mono.get(key)
        return ended is None or now_mono - ended >= rule.cooldown_s

    @staticmethod
    def _message(rule: AlertRule, labels: _Labels, value: float) -> str:
        where = ",".join(f"{k}={v}" for k, v in labels)
        return (
            f"{rule.aggregation.value}({rule.metric}{{{where}}}) over {rule.window_s:g}s = "
            f"{value:.6g} {_SYMBOL[rule.operator.value]} {rule.threshold:g}"
            + (f" -- {rule.description}" if rule.description else "")
        )

    def _end(
        self, key: tuple[str, _Labels], tracked: _Tracked, *, by: str | None, comment: str | None
    ) -> tuple[Alert, str] | None:
        """Resolve an active alert; return its notification event if it had fired."""
        alert = tracked.alert
        now = utc_datetime(self.clock.time())
        fired = alert.state in (AlertState.FIRING, AlertState.RECOVERING)
        alert.state = AlertState.RESOLVED
        alert.resolved_at = now
        alert.updated_at = now
        alert.resolved_by = by
        alert.resolution_comment = comment
        del self._active[key]
        if fired:
            self._ended_mono[key] = self.clock.monotonic()
            self._history.append(alert)
        self._changed(alert)
        return (_copy(alert), "resolved") if fired else None

    def _changed(self, alert: Alert) -> None:
        self._changes.pop(alert.alert_id, None)
        self._changes[alert.alert_id] = alert
        if len(self._changes) > self._changes_capacity:
            del self._changes[next(iter(self._changes))]
            self.changes_dropped += 1

    # handling --------------------------------------------------------------------------------

    def acknowledge(self, alert_id: str, by: str, comment: str | None = None) -> Alert:
        """Record that ``by`` has seen an active alert; return a copy of it."""
        _check_actor(by)
        with self._lock:
            alert = self._get_active(alert_id, "acknowledge")
            alert.acknowledged_at = utc_datetime(self.clock.time())
            alert.acknowledged_by = by
            alert.acknowledgement_comment = comment
            alert.updated_at = alert.acknowledged_at
            self._changed(alert)
            snapshot = _copy(alert)
        self._dispatch([(snapshot, "acknowledged")])
        return snapshot

    def resolve(self, alert_id: str, by: str, comment: str | None = None) -> Alert:
        """Resolve an active alert by hand (``by``, now, ``comment``); return a copy of it."""
        _check_actor(by)
        with self._lock:
            alert = self._get_active(alert_id, "resolve")
            key = next(k for k, t in self._active.items() if t.alert is alert)
            tracked = self._active[key]
            event = self._end(key, tracked, by=by, comment=comment)
            snapshot = _copy(alert)
        if event is not None:
            self._dispatch([event])
        return snapshot

    def _get_active(self, alert_id: str, action: str) -> Alert:
        alert = self._by_id.get(alert_id)
        if alert is None:
            raise ValidationError(f"cannot {action}: no alert with id {alert_id!r}")
        if not alert.active:
            raise ValidationError(
                f"cannot {action} alert {alert_id!r}: it was resolved at "
                f"{alert.resolved_at.isoformat() if alert.resolved_at else '?'}"
            )
        return alert

    # reading ---------------------------------------------------------------------------------

    def get(self, alert_id: str) -> Alert:
        """Return a copy of the alert with ``alert_id`` (active or in the history)."""
        with self._lock:
            alert = self._by_id.get(alert_id)
            if alert is None:
                raise ValidationError(f"no alert with id {alert_id!r}")
            return _copy(alert)

    def active_alerts(
        self, *, include_pending: bool = False, component_id: str | None = None
    ) -> list[Alert]:
        """Return copies of the firing (and recovering) alerts, and pending ones if asked, most
        severe first."""
        with self._lock:
            alerts = [
                _copy(t.alert)
                for t in self._active.values()
                if (include_pending or t.alert.state is not AlertState.PENDING)
                and (component_id is None or t.alert.component_id == component_id)
            ]
        alerts.sort(key=lambda a: (-_SEVERITY_ORDER[a.severity], a.started_at))
        return alerts

    def history(self, limit: int | None = None) -> list[Alert]:
        """Return copies of alerts that fired and ended, newest first."""
        with self._lock:
            ended = list(self._history)
        ended.reverse()
        return [_copy(a) for a in ended[:limit]]

    def drain_changes(self) -> list[Alert]:
        """Return copies of the alerts whose state changed since the previous call, in the
        order of their latest change (each alert once, in its current state)."""
        with self._lock:
            changes = [_copy(a) for a in self._changes.values()]
            self._changes.clear()
            self._forget_old()
        return changes

    def _forget_old(self) -> None:
        # Ended alerts that fell out of the history (or never fired) are no longer addressable
        # by id; without this, a flapping rule would grow the index for ever.
        if len(self._by_id) > len(self._active) + (self._history.maxlen or 0):
            keep = {t.alert.alert_id for t in self._active.values()}
            keep.update(a.alert_id for a in self._history)
            self._by_id = {k: v for k, v in self._by_id.items() if k in keep}

    # notifications ---------------------------------------------------------------------------

    def _dispatch(self, events: Iterable[tuple[Alert, str]]) -> None:
        for alert, event in events:
            for notifier in self.notifiers:
                try:
                    notifier.notify(alert, event)
                except Exception:  # a broken notifier must not stop alerting
                    self.notification_errors += 1
                    logger.exception("notifier %s failed on %s", type(notifier).__name__, event)

    def _tick_notifiers(self) -> None:
        for notifier in self.notifiers:
            tick = getattr(notifier, "tick", None)
            if callable(tick):
                try:
                    tick()
                except Exception:  # a broken router must not stop alerting
                    self.notification_errors += 1
                    logger.exception("notifier %s failed on tick", type(notifier).__name__)

    def close(self) -> None:
        """Close every notifier (stops the webhook sender)."""
        for notifier in self.notifiers:
            try:
                notifier.close()
            except Exception:
                logger.exception("closing notifier %s failed", type(notifier).__name__)


def _copy(alert: Alert) -> Alert:
    snapshot = copy.copy(alert)
    snapshot.labels = dict(alert.labels)
    return snapshot


def _check_actor(by: object) -> None:
    if not isinstance(by, str) or not by.strip():
        raise ValidationError(f"'by' must name who acts (a non-empty string), got {by!r}")
