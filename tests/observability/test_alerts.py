"""The alert lifecycle, driven by a ManualClock: pending, firing, cooldown, resolution."""

from __future__ import annotations

import pytest

from allele.errors import ValidationError
from allele.observability.alerts import AlertManager
from allele.observability.clock import ManualClock
from allele.observability.collector import MetricsCollector
from allele.observability.types import (
    Aggregation,
    Alert,
    AlertRule,
    AlertSeverity,
    AlertState,
    ComponentType,
    Operator,
)


class RecordingNotifier:
    """A test notifier that keeps every (event, alert) it is given."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Alert]] = []

    def notify(self, alert: Alert, event: str) -> None:
        self.events.append((event, alert))

    def close(self) -> None:
        pass


class BrokenNotifier:
    """A test notifier that always fails."""

    def notify(self, alert: Alert, event: str) -> None:
        raise RuntimeError("notifier down")

    def close(self) -> None:
        pass


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def collector(clock: ManualClock) -> MetricsCollector:
    return MetricsCollector(clock=clock, instance="t")


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def manager(
    collector: MetricsCollector, clock: ManualClock, notifier: RecordingNotifier
) -> AlertManager:
    return AlertManager(collector, clock=clock, notifiers=[notifier])


def slow_rule(**overrides: object) -> AlertRule:
    values: dict[str, object] = {
        "name": "slow",
        "metric": "latency_seconds",
        "operator": Operator.GT,
        "threshold": 1.0,
        "aggregation": Aggregation.MEAN,
        "window_s": 60.0,
        "for_s": 30.0,
        "cooldown_s": 120.0,
        "severity": AlertSeverity.ERROR,
    }
    values.update(overrides)
    return AlertRule(**values)  # type: ignore[arg-type]


def observe(collector: MetricsCollector, *values: float) -> None:
    handle = collector.histogram("latency_seconds", {"component_id": "evo"})
    for value in values:
        handle.observe(value)
    collector.fold()


def test_pending_then_firing_after_for_then_auto_resolve(
    manager: AlertManager,
    collector: MetricsCollector,
    clock: ManualClock,
    notifier: RecordingNotifier,
) -> None:
    manager.add_rule(slow_rule())
    observe(collector, 2.0, 3.0)
    [pending] = manager.evaluate()
    assert pending.state is AlertState.PENDING and pending.value == 2.5
    assert manager.active_alerts() == []
    assert [a.alert_id for a in manager.active_alerts(include_pending=True)] == [pending.alert_id]
    clock.advance(29)
    observe(collector, 2.0)
    assert manager.evaluate() == []  # still pending: for_s not elapsed
    clock.advance(1)
    observe(collector, 2.0)
    [firing] = manager.evaluate()
    assert firing.state is AlertState.FIRING and firing.alert_id == pending.alert_id
    assert firing.fired_at is not None and firing.fired_at.timestamp() == clock.time()
    assert (
        firing.labels == {"component_id": "evo", "instance": "t"}
        and "mean(latency_seconds" in firing.message
    )
    assert [e for e, _ in notifier.events] == ["firing"]
    clock.advance(61)  # every point leaves the window: the condition cannot hold
    [resolved] = manager.evaluate()
    assert resolved.state is AlertState.RESOLVED and resolved.resolved_by is None
    assert resolved.resolution_comment == "condition cleared"
    assert [e for e, _ in notifier.events] == ["firing", "resolved"]
    assert [a.alert_id for a in manager.history()] == [firing.alert_id]


def test_the_rule_judges_the_window_aggregate_not_one_sample(
    manager: AlertManager, collector: MetricsCollector
) -> None:
    manager.add_rule(slow_rule(for_s=0.0, aggregation=Aggregation.P95, threshold=5.0))
    observe(collector, *([0.1] * 99), 100.0)  # one spike: p95 stays low
    assert manager.evaluate() == []
    observe(collector, *([9.0] * 20))
    [alert] = manager.evaluate()
    assert alert.state is AlertState.FIRING and alert.value > 5.0


def test_min_samples_holds_back_a_thin_window(
    manager: AlertManager, collector: MetricsCollector
) -> None:
    manager.add_rule(slow_rule(for_s=0.0, min_samples=3))
    observe(collector, 5.0, 5.0)
    assert manager.evaluate() == []
    observe(collector, 5.0)
    assert [a.state for a in manager.evaluate()] == [AlertState.FIRING]


def test_pending_alert_that_clears_is_cancelled_without_notification(
    manager: AlertManager,
    collector: MetricsCollector,
    clock: ManualClock,
    notifier: RecordingNotifier,
) -> None:
    manager.add_rule(slow_rule())
    observe(collector, 2.0)
    manager.evaluate()
    clock.advance(10)
    observe(collector, *([0.0] * 10))  # mean drops below the threshold
    [cancelled] = manager.evaluate()
    assert cancelled.state is AlertState.RESOLVED and cancelled.fired_at is None
    assert notifier.events == [] and manager.history() == []


def test_cooldown_delays_the_next_firing(
    manager: AlertManager, collector: MetricsCollector, clock: ManualClock
) -> None:
    manager.add_rule(slow_rule(for_s=0.0, cooldown_s=120.0))
    observe(collector, 2.0)
    [first] = manager.evaluate()
    assert first.state is AlertState.FIRING
    clock.advance(61)
    [ended] = manager.evaluate()
    assert ended.state is AlertState.RESOLVED
    observe(collector, 2.0)  # the condition returns 0 s after the end
    [again] = manager.evaluate()
    assert again.state is AlertState.PENDING and again.alert_id != first.alert_id
    clock.advance(59)
    observe(collector, 2.0)
    assert manager.evaluate() == []  # 59 s < 120 s cooldown: held pending
    clock.advance(61)
    observe(collector, 2.0)
    [fired] = manager.evaluate()
    assert fired.state is AlertState.FIRING and fired.alert_id == again.alert_id


def test_acknowledge_and_resolve_record_who_when_and_why(
    manager: AlertManager,
    collector: MetricsCollector,
    clock: ManualClock,
    notifier: RecordingNotifier,
) -> None:
    manager.add_rule(slow_rule(for_s=0.0))
    observe(collector, 2.0)
    [alert] = manager.evaluate()
    clock.advance(5)
    acked = manager.acknowledge(alert.alert_id, "ana", "on it")
    assert acked.acknowledged_by == "ana" and acked.acknowledgement_comment == "on it"
    assert acked.acknowledged_at is not None and acked.acknowledged_at.timestamp() == clock.time()
    assert acked.state is AlertState.FIRING
    clock.advance(5)
    resolved = manager.resolve(alert.alert_id, "bo", "restarted the worker")
    assert resolved.state is AlertState.RESOLVED
    assert (resolved.resolved_by, resolved.resolution_comment) == ("bo", "restarted the worker")
    assert resolved.resolved_at is not None and resolved.resolved_at.timestamp() == clock.time()
    assert [e for e, _ in notifier.events] == ["firing", "acknowledged", "resolved"]
    [past] = manager.history()
    assert past.acknowledged_by == "ana" and past.resolved_by == "bo"
    with pytest.raises(ValidationError, match="it was resolved at"):
        manager.acknowledge(alert.alert_id, "ana")
    with pytest.raises(ValidationError, match="no alert with id 'nope'"):
        manager.resolve("nope", "ana")
    with pytest.raises(ValidationError, match="'by' must name who acts"):
        manager.acknowledge(alert.alert_id, "  ")


def test_drain_changes_hands_each_change_once(
    manager: AlertManager, collector: MetricsCollector, clock: ManualClock
) -> None:
    manager.add_rule(slow_rule(for_s=10.0))
    observe(collector, 2.0)
    manager.evaluate()
    [pending] = manager.drain_changes()
    assert pending.state is AlertState.PENDING
    assert manager.drain_changes() == []
    clock.advance(10)
    observe(collector, 2.0)
    manager.evaluate()
    manager.acknowledge(pending.alert_id, "ana")
    [latest] = manager.drain_changes()  # one entry per alert, in its current state
    assert latest.state is AlertState.FIRING and latest.acknowledged_by == "ana"
    assert Alert.from_dict(latest.to_dict()) == latest


def test_each_series_gets_its_own_alert_and_component_type_scopes(
    manager: AlertManager, collector: MetricsCollector
) -> None:
    manager.add_rule(
        slow_rule(name="agent_slow", for_s=0.0, component_type=ComponentType.NLP_AGENT)
    )
    for cid, ctype in (("a1", "nlp_agent"), ("a2", "nlp_agent"), ("k1", "kraken_lnn")):
        labels = {"component_id": cid, "component_type": ctype}
        collector.histogram("latency_seconds", labels).observe(5.0)
    collector.fold()
    alerts = manager.evaluate()
    assert sorted(a.labels["component_id"] for a in alerts) == ["a1", "a2"]
    assert [a.component_id for a in manager.active_alerts(component_id="a2")] == ["a2"]


def test_operators_below_thresholds(manager: AlertManager, collector: MetricsCollector) -> None:
    manager.add_rule(
        AlertRule(
            name="idle",
            metric="throughput",
            operator=Operator.LT,
            threshold=10.0,
            aggregation=Aggregation.MAX,
            window_s=60,
        )
    )
    collector.gauge("throughput").set(3.0)
    collector.fold()
    assert [a.rule_name for a in manager.evaluate()] == ["idle"]


def test_rule_management(manager: AlertManager, collector: MetricsCollector) -> None:
    manager.add_rule(slow_rule(for_s=0.0))
    with pytest.raises(ValidationError, match="exists; pass replace=True"):
        manager.add_rule(slow_rule())
    manager.add_rule(slow_rule(for_s=0.0, threshold=3.0), replace=True)
    assert [r.threshold for r in manager.rules()] == [3.0]
    observe(collector, 5.0)
    [alert] = manager.evaluate()
    manager.remove_rule("slow")
    assert manager.get(alert.alert_id).resolution_comment == "rule removed"
    assert manager.active_alerts() == []
    with pytest.raises(ValidationError, match="no alert rule named 'slow'"):
        manager.remove_rule("slow")


def test_a_broken_notifier_is_counted_and_alerting_goes_on(
    collector: MetricsCollector, clock: ManualClock
) -> None:
    recorder = RecordingNotifier()
    manager = AlertManager(collector, clock=clock, notifiers=[BrokenNotifier(), recorder])
    manager.add_rule(slow_rule(for_s=0.0))
    observe(collector, 5.0)
    assert [a.state for a in manager.evaluate()] == [AlertState.FIRING]
    assert manager.notification_errors == 1
    assert [e for e, _ in recorder.events] == ["firing"]


def test_disabled_manager_evaluates_nothing(
    collector: MetricsCollector, clock: ManualClock
) -> None:
    manager = AlertManager(collector, clock=clock, notifiers=[], enabled=False)
    manager.add_rule(slow_rule(for_s=0.0))
    observe(collector, 5.0)
    assert manager.evaluate() == []


@pytest.mark.parametrize(
    ("op", "holds_at", "clear_at"),
    [
        (Operator.GT, 3.0, 2.0),
        (Operator.GTE, 2.0, 1.0),
        (Operator.LT, 1.0, 2.0),
        (Operator.LTE, 2.0, 3.0),
        (Operator.EQ, 2.0, 2.5),
        (Operator.NE, 2.5, 2.0),
    ],
)
def test_every_operator_fires_and_resolves_on_the_window_aggregate(
    manager: AlertManager,
    collector: MetricsCollector,
    clock: ManualClock,
    op: Operator,
    holds_at: float,
    clear_at: float,
) -> None:
    """Threshold 2; the window's mean is what is compared, whatever the single points are."""
    manager.add_rule(
        AlertRule(
            name="depth",
            metric="queue_depth",
            operator=op,
            threshold=2.0,
            aggregation=Aggregation.MEAN,
            window_s=10,
            cooldown_s=0,
        )
    )
    depth = collector.gauge("queue_depth")
    # Two points whose mean is holds_at but neither of which equals it.
    depth.set(holds_at - 1.0)
    depth.set(holds_at + 1.0)
    collector.fold()
    [fired] = manager.evaluate()
    assert fired.state is AlertState.FIRING and fired.value == holds_at
    clock.advance(11)  # both points leave the window
    depth.set(clear_at)
    collector.fold()
    [cleared] = manager.evaluate()
    assert cleared.state is AlertState.RESOLVED and cleared.value == clear_at


def test_without_a_drainer_the_change_log_stays_bounded(
    collector: MetricsCollector, clock: ManualClock
) -> None:
    manager = AlertManager(collector, clock=clock, notifiers=[], changes_capacity=5)
    manager.add_rule(slow_rule(for_s=100.0, window_s=1.0))
    for _ in range(20):  # a flapping condition: pending, then cleared, 20 times
        observe(collector, 5.0)
        manager.evaluate()
        clock.advance(2)
        manager.evaluate()
    changes = manager.drain_changes()
    assert len(changes) == 5 and manager.changes_dropped == 15
    assert all(a.state is AlertState.RESOLVED for a in changes)
