"""Alert routing on a ManualClock: the route tree, group timers, inhibition, silences,
keep_firing_for, receivers' payloads and the routes file."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from allele.errors import ConfigurationError, ValidationError
from allele.observability.alerts import AlertManager
from allele.observability.clock import ManualClock, utc_datetime
from allele.observability.collector import MetricsCollector
from allele.observability.matchers import Matcher
from allele.observability.receivers import (
    Notification,
    Receiver,
    RoutedAlert,
    WebhookIntegration,
    alertmanager_payload,
    slack_payload,
)
from allele.observability.routing import InhibitRule, Route, Router, RoutingConfig, router_from_file
from allele.observability.routing_config import load_routes, parse_duration
from allele.observability.silences import Silence, Silences
from allele.observability.types import AlertRule, AlertSeverity, AlertState, Operator


class RecordingIntegration:
    """A fake integration that keeps every notification it is given."""

    def __init__(self, send_resolved: bool = True) -> None:
        self.send_resolved = send_resolved
        self.got: list[Notification] = []

    def send(self, notification: Notification) -> None:
        self.got.append(notification)

    def close(self) -> None:
        pass


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def alert(status: str = "firing", **labels: str) -> RoutedAlert:
    return RoutedAlert(labels=dict(labels), annotations={"summary": "x"}, status=status)


def make_router(
    clock: ManualClock,
    route: Route | None = None,
    inhibit: list[InhibitRule] | None = None,
    receivers: tuple[str, ...] = ("team",),
) -> tuple[Router, dict[str, RecordingIntegration]]:
    sinks = {name: RecordingIntegration() for name in receivers}
    config = RoutingConfig(
        route
        or Route(
            receiver="team",
            group_by=["alertname"],
            group_wait_s=30,
            group_interval_s=300,
            repeat_interval_s=3600,
        ),
        {name: Receiver(name, [sink]) for name, sink in sinks.items()},
        inhibit or [],
    )
    return Router(config, clock=clock), sinks


def fps(notification: Notification) -> list[str]:
    return sorted(a.labels["component_id"] for a in notification.alerts)


# --- group timers -------------------------------------------------------------------------------


def test_first_notification_waits_group_wait_and_holds_the_whole_group(clock: ManualClock) -> None:
    router, sinks = make_router(clock)
    router.submit([alert(alertname="slow", component_id="a")])
    clock.advance(10)
    router.submit([alert(alertname="slow", component_id="b")])
    assert router.tick() == []
    clock.advance(19)
    assert router.tick() == []  # 29 s after the group appeared
    clock.advance(1)
    [sent] = router.tick()
    assert fps(sent) == ["a", "b"] and sent.status == "firing"
    assert sent.group_labels == {"alertname": "slow"}
    assert sinks["team"].got == [sent]


def test_changes_wait_for_group_interval_and_unchanged_groups_repeat(clock: ManualClock) -> None:
    router, sinks = make_router(clock)
    router.submit([alert(alertname="slow", component_id="a")])
    clock.advance(30)
    assert len(router.tick()) == 1
    clock.advance(60)
    router.submit([alert(alertname="slow", component_id="b")])
    clock.advance(200)
    assert router.tick() == []  # 290 s after the first flush: not yet
    clock.advance(40)
    [update] = router.tick()  # the group_interval tick after the change
    assert fps(update) == ["a", "b"]
    # Unchanged from now on: nothing every group_interval, then a repeat after repeat_interval.
    for _ in range(11):
        clock.advance(300)
        assert router.tick() == []
    clock.advance(300)
    [repeat] = router.tick()
    assert fps(repeat) == ["a", "b"]
    assert len(sinks["team"].got) == 3


def test_hurry_brings_a_notified_groups_update_to_group_wait_after_the_alert(
    clock: ManualClock,
) -> None:
    router, _ = make_router(clock)
    router.submit([alert(alertname="slow", component_id="a")])
    clock.advance(30)
    assert len(router.tick()) == 1
    clock.advance(60)
    new = RoutedAlert(
        {"alertname": "slow", "component_id": "b"}, starts_at=utc_datetime(clock.time() - 10)
    )
    router.submit([new])
    router.hurry([new])
    clock.advance(19)
    assert router.tick() == []  # 29 s after b started
    clock.advance(1)
    [update] = router.tick()  # group_wait after b started, not group_interval after the flush
    assert fps(update) == ["a", "b"]
    router.hurry([RoutedAlert({"alertname": "other"})])  # in no group: nothing happens
    clock.advance(299)
    assert router.tick() == []  # the group_interval counts again from this update


def test_resolution_is_notified_then_the_group_ends(clock: ManualClock) -> None:
    router, sinks = make_router(clock)
    router.submit(
        [alert(alertname="slow", component_id="a"), alert(alertname="slow", component_id="b")]
    )
    clock.advance(30)
    router.tick()
    router.submit([alert("resolved", alertname="slow", component_id="a")])
    clock.advance(300)
    [partial] = router.tick()
    assert partial.status == "firing"
    assert [(a.labels["component_id"], a.status) for a in partial.alerts] == [
        ("b", "firing"),
        ("a", "resolved"),
    ]
    router.submit([alert("resolved", alertname="slow", component_id="b")])
    clock.advance(300)
    [done] = router.tick()
    assert done.status == "resolved" and fps(done) == ["b"]
    assert router.groups() == []
    clock.advance(3600)
    assert router.tick() == [] and len(sinks["team"].got) == 3


def test_an_alert_resolved_before_group_wait_sends_nothing(clock: ManualClock) -> None:
    router, sinks = make_router(clock)
    router.submit([alert(alertname="blip", component_id="a")])
    clock.advance(5)
    router.submit([alert("resolved", alertname="blip", component_id="a")])
    clock.advance(30)
    assert router.tick() == [] and sinks["team"].got == []


def test_group_by_separates_groups_and_dots_group_by_every_label(clock: ManualClock) -> None:
    router, _ = make_router(
        clock, Route(receiver="team", group_by=["component_id"], group_wait_s=0)
    )
    router.submit([alert(alertname="x", component_id="a"), alert(alertname="y", component_id="a")])
    router.submit([alert(alertname="x", component_id="b")])
    sent = router.tick()
    assert sorted((n.group_labels["component_id"], len(n.alerts)) for n in sent) == [
        ("a", 2),
        ("b", 1),
    ]
    every, _ = make_router(clock, Route(receiver="team", group_by=["..."], group_wait_s=0))
    every.submit([alert(alertname="x", component_id="a"), alert(alertname="y", component_id="a")])
    assert len(every.tick()) == 2


# --- the route tree -----------------------------------------------------------------------------


def tree() -> Route:
    return Route(
        receiver="team",
        group_by=["alertname"],
        group_wait_s=0,
        routes=[
            Route(
                matchers=[Matcher.parse('severity="critical"')], receiver="pager", continue_=True
            ),
            Route(matchers=[Matcher.parse('component_id=~"llm-.*"')], receiver="llm"),
            Route(matchers=[Matcher.parse('component_id=~"llm-.*|db"')], receiver="db"),
        ],
    )


def receivers_of(router: Router, **labels: str) -> list[str]:
    return [r.receiver or "" for r in router.config.route.match(labels)]


def test_first_matching_child_wins_continue_goes_on_and_unmatched_stays_at_the_root(
    clock: ManualClock,
) -> None:
    router, _ = make_router(clock, tree(), receivers=("team", "pager", "llm", "db"))
    assert receivers_of(router, component_id="llm-1", severity="warning") == ["llm"]
    assert receivers_of(router, component_id="llm-1", severity="critical") == ["pager", "llm"]
    assert receivers_of(router, component_id="db", severity="warning") == ["db"]
    assert receivers_of(router, component_id="web", severity="warning") == ["team"]
    # A continuing route that is the only match leaves nothing to the parent.
    assert receivers_of(router, component_id="web", severity="critical") == ["pager"]


def test_children_inherit_timers_and_group_by(clock: ManualClock) -> None:
    router, sinks = make_router(clock, tree(), receivers=("team", "pager", "llm", "db"))
    [pager_route, llm_route, _] = router.config.route.routes
    assert pager_route.group_by == ["alertname"] and pager_route.group_wait_s == 0
    assert llm_route.repeat_interval_s == 4 * 3600.0  # Alertmanager's default from the root
    router.submit([alert(alertname="down", component_id="llm-1", severity="critical")])
    router.tick()
    assert [len(sinks[name].got) for name in ("team", "pager", "llm", "db")] == [0, 1, 1, 0]


def test_unknown_receiver_and_bad_matchers_are_errors() -> None:
    with pytest.raises(ConfigurationError, match="unknown receiver"):
        RoutingConfig(Route(receiver="nobody"), {})
    with pytest.raises(ValidationError, match="operator"):
        Matcher("a", "==", "b")
    with pytest.raises(ValidationError, match="regular expression"):
        Matcher.parse('a=~"("')


# --- inhibition and silences --------------------------------------------------------------------


def test_inhibition_mutes_targets_with_equal_labels_while_the_source_fires(
    clock: ManualClock,
) -> None:
    rule = InhibitRule(
        source_matchers=[Matcher.parse('severity="critical"')],
        target_matchers=[Matcher.parse('severity="warning"')],
        equal=["component_id"],
    )
    router, _ = make_router(
        clock, Route(receiver="team", group_by=["component_id"], group_wait_s=0), [rule]
    )
    router.submit(
        [
            alert(alertname="down", severity="critical", component_id="db"),
            alert(alertname="slow", severity="warning", component_id="db"),
            alert(alertname="slow", severity="warning", component_id="web"),
        ]
    )
    sent = {n.group_labels["component_id"]: n for n in router.tick()}
    assert [a.labels["alertname"] for a in sent["db"].alerts] == ["down"]
    assert [a.labels["alertname"] for a in sent["web"].alerts] == ["slow"]
    assert router.muted_by({"severity": "warning", "component_id": "db"})["inhibit_rules"] == [
        "inhibit_rules[0]"
    ]
    # The source resolves: the warning on db is no longer inhibited and gets notified.
    router.submit([alert("resolved", alertname="down", severity="critical", component_id="db")])
    clock.advance(300)
    [db] = router.tick()
    assert sorted((a.labels["alertname"], a.status) for a in db.alerts) == [
        ("down", "resolved"),
        ("slow", "firing"),
    ]


def test_silences_mute_only_while_active_and_can_be_expired(clock: ManualClock) -> None:
    router, sinks = make_router(clock, Route(receiver="team", group_by=["..."], group_wait_s=0))
    silences = router.silences
    start = utc_datetime(clock.time())
    later = silences.add(
        ['component_id="db"'],
        created_by="ana",
        comment="maintenance tonight",
        starts_at=start + timedelta(hours=1),
        duration_s=3600,
    )
    now_silence = silences.add(
        ['alertname=~"slow|down"', 'component_id="db"'],
        created_by="ana",
        comment="db migration",
        duration_s=600,
    )
    assert [s.silence_id for s in silences.list("active")] == [now_silence.silence_id]
    assert [s.silence_id for s in silences.list("pending")] == [later.silence_id]
    router.submit(
        [alert(alertname="slow", component_id="db"), alert(alertname="slow", component_id="web")]
    )
    [web] = router.tick()
    assert fps(web) == ["web"]
    silences.expire(now_silence.silence_id)
    assert [s.silence_id for s in silences.list("expired")] == [now_silence.silence_id]
    clock.advance(300)
    [db] = router.tick()
    assert fps(db) == ["db"] and len(sinks["team"].got) == 2
    with pytest.raises(ValidationError, match="already expired"):
        silences.expire(now_silence.silence_id)


def test_silences_validate_and_persist_in_the_store(clock: ManualClock) -> None:
    from allele.observability.store import open_store

    with pytest.raises(ValidationError, match="comment"):
        Silences(clock=clock).add(['a="b"'], created_by="ana", comment=" ", duration_s=60)
    with pytest.raises(ValidationError, match="at least one matcher"):
        Silences(clock=clock).add([], created_by="ana", comment="c", duration_s=60)
    with pytest.raises(ValidationError, match="exactly one"):
        Silences(clock=clock).add(['a="b"'], created_by="ana", comment="c")
    with open_store("sqlite://") as store:
        mine = Silences(clock=clock, store=store)
        made = mine.add(['component_id="db"'], created_by="ana", comment="why", duration_s=60)
        other = Silences(clock=clock, store=store)  # another process reading the same store
        [seen] = other.list()
        assert seen.to_dict() == made.to_dict()
        other.expire(made.silence_id[:8])
        mine.refresh()
        assert mine.list("active") == [] and len(mine.list("expired")) == 1


# --- keep_firing_for and the AlertManager feeding the router --------------------------------------


def test_keep_firing_for_holds_a_recovering_alert_then_resolves(clock: ManualClock) -> None:
    collector = MetricsCollector(clock=clock)
    router, sinks = make_router(
        clock, Route(receiver="team", group_by=["alertname"], group_wait_s=0, group_interval_s=10)
    )
    manager = AlertManager(collector, clock=clock, notifiers=[router])
    manager.add_rule(
        AlertRule(
            name="errors",
            metric="error_rate",
            operator=Operator.GT,
            threshold=0.5,
            window_s=5,
            keep_firing_for_s=60,
            severity=AlertSeverity.ERROR,
        )
    )
    gauge = collector.gauge("error_rate", {"component_id": "llm"})

    def step(value: float, seconds: float = 10) -> list[Any]:
        gauge.set(value)
        collector.fold()
        changed = manager.evaluate()
        clock.advance(seconds)
        return changed

    [firing] = step(0.9)
    assert firing.state is AlertState.FIRING
    [recovering] = step(0.1)
    assert recovering.state is AlertState.RECOVERING
    assert [a.alert_id for a in manager.active_alerts()] == [firing.alert_id]
    [back] = step(0.9)  # flaps back within keep_firing_for: the same alert, firing again
    assert back.state is AlertState.FIRING and back.alert_id == firing.alert_id
    states = [step(0.1) for _ in range(7)]
    assert states[0][0].state is AlertState.RECOVERING
    assert [c for c in states[1:6]] == [[]] * 5  # recovering, nothing changes
    assert states[6][0].state is AlertState.RESOLVED  # cleared for 60 s
    statuses = [n.status for n in sinks["team"].got]
    assert statuses == ["firing", "resolved"]  # the flap sent nothing


def test_alertmanager_alerts_are_routed_with_alertname_and_severity(clock: ManualClock) -> None:
    collector = MetricsCollector(clock=clock)
    router, sinks = make_router(
        clock, Route(receiver="team", group_by=["alertname"], group_wait_s=0)
    )
    manager = AlertManager(collector, clock=clock, notifiers=[router])
    manager.add_rule(AlertRule(name="slow", metric="lat", operator=Operator.GT, threshold=1))
    collector.gauge("lat", {"component_id": "a"}).set(5)
    collector.gauge("lat", {"component_id": "b"}).set(5)
    collector.fold()
    manager.evaluate()
    [sent] = sinks["team"].got
    assert fps(sent) == ["a", "b"]
    # Both series come from this writer, so its ``instance`` is common too.
    assert sent.common_labels == {
        "alertname": "slow",
        "severity": "warning",
        "instance": collector.instance,
    }


# --- receivers ----------------------------------------------------------------------------------


def notification(clock: ManualClock) -> Notification:
    start = utc_datetime(clock.time())
    firing = RoutedAlert(
        {"alertname": "slow", "component_id": "a", "severity": "error"},
        {"summary": "p95 latency 3 s"},
        starts_at=start,
    )
    resolved = RoutedAlert(
        {"alertname": "slow", "component_id": "b", "severity": "error"},
        {"summary": "p95 latency 2 s"},
        starts_at=start,
        ends_at=start + timedelta(minutes=1),
        status="resolved",
    )
    return Notification(
        "n1",
        "team",
        'root:{alertname="slow"}',
        "firing",
        {"alertname": "slow"},
        [firing, resolved],
        start,
    )


def test_alertmanager_webhook_payload(clock: ManualClock) -> None:
    payload = alertmanager_payload(notification(clock), "http://allele")
    assert payload["version"] == "4" and payload["status"] == "firing"
    assert payload["receiver"] == "team" and payload["groupLabels"] == {"alertname": "slow"}
    assert payload["commonLabels"] == {"alertname": "slow", "severity": "error"}
    assert payload["externalURL"] == "http://allele" and payload["truncatedAlerts"] == 0
    first, second = payload["alerts"]
    assert first["endsAt"] == "0001-01-01T00:00:00Z" and first["startsAt"].startswith("2023-11-14")
    assert second["status"] == "resolved" and second["endsAt"].startswith("2023-11-14T22:14")
    assert len(first["fingerprint"]) == 16 and first["fingerprint"] != second["fingerprint"]


def test_slack_payload(clock: ManualClock) -> None:
    payload = slack_payload(notification(clock), channel="#ops")
    assert payload["channel"] == "#ops" and payload["text"] == "[FIRING:1] alertname=slow"
    assert [a["color"] for a in payload["attachments"]] == ["danger", "good"]
    assert payload["attachments"][0]["text"] == "p95 latency 3 s"


def test_webhook_integrations_post_both_formats(clock: ManualClock) -> None:
    bodies: list[tuple[str, dict[str, Any]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append((str(request.url), json.loads(request.content)))
        return httpx.Response(200)

    transport = httpx.MockTransport(handler)
    am = WebhookIntegration("http://am.test/hook", transport=transport)
    slack = WebhookIntegration("http://slack.test/x", format="slack", transport=transport)
    assert am.send_resolved and not slack.send_resolved  # Alertmanager's defaults
    for integration in (am, slack):
        integration.send(notification(clock))
        assert integration.flush(10)
        integration.close()
    assert sorted(url for url, _ in bodies) == ["http://am.test/hook", "http://slack.test/x"]
    by_url = dict(bodies)
    assert by_url["http://am.test/hook"]["version"] == "4"
    assert "attachments" in by_url["http://slack.test/x"]
    with pytest.raises(ConfigurationError, match="format"):
        WebhookIntegration("http://x", format="teams")


# --- the routes file ----------------------------------------------------------------------------

GOOD = """
[route]
receiver = "team"
group_by = ["alertname"]
group_wait = "10s"
group_interval = "1m"
repeat_interval = "1h30m"

[[route.routes]]
matchers = ['severity="critical"']
receiver = "pager"

[[receivers]]
name = "team"
log_configs = [{}]

[[receivers]]
name = "pager"
webhook_configs = [{ url = "http://127.0.0.1:9/hook" }]
slack_configs = [{ api_url = "http://127.0.0.1:9/slack", channel = "#ops" }]

[[inhibit_rules]]
source_matchers = ['severity="critical"']
target_matchers = ['severity="warning"']
equal = ["component_id"]
"""


def test_durations() -> None:
    assert parse_duration("1h30m") == 5400 and parse_duration("250ms") == 0.25
    assert parse_duration(12) == 12.0
    for bad in ("5x", "-1s", True, "m"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_a_good_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "routes.toml"
    path.write_text(GOOD)
    config = load_routes(path)
    assert config.route.group_wait_s == 10 and config.route.repeat_interval_s == 5400
    [pager] = config.route.routes
    assert pager.receiver == "pager" and pager.group_interval_s == 60
    assert [type(i).__name__ for i in config.receivers["pager"].integrations] == [
        "WebhookIntegration",
        "WebhookIntegration",
    ]
    assert config.inhibit_rules[0].equal == ["component_id"]


def test_a_bad_file_gives_one_line_per_problem(tmp_path: Path) -> None:
    path = tmp_path / "routes.toml"
    path.write_text(
        """
[route]
receiver = "nobody"
group_wait = "soon"
colour = "red"

[[route.routes]]
matchers = ['severity=="critical"']
continue = "yes"

[[receivers]]
name = "team"
webhook_configs = [{ url = "ftp://x" }]
"""
    )
    with pytest.raises(ConfigurationError) as info:
        load_routes(path)
    lines = str(info.value).splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines)
    text = "\n".join(lines)
    for expected in (
        "route: unknown key(s) ['colour']",
        "route.group_wait: 'soon' is not a duration",
        "route.routes[0].matchers[0]:",
        "route.routes[0].continue: must be true or false",
        "receivers[0].webhook_configs[0]: webhook url must start with http",
        "route: receiver 'nobody' is not defined",
    ):
        assert expected in text
    assert len(lines) == 6


def test_reload_applies_a_good_file_and_keeps_routes_on_a_bad_one(
    tmp_path: Path, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "routes.toml"
    path.write_text(GOOD)
    router = Router(routes_file=path, clock=clock, reload_interval_s=5)
    assert router.config.route.group_wait_s == 10
    path.write_text(GOOD.replace('group_wait = "10s"', 'group_wait = "20s"'))
    clock.advance(5)
    router.tick()
    assert router.reloads == 1 and router.config.route.group_wait_s == 20
    path.write_text(
        GOOD.replace('group_wait = "10s"', 'group_wait = "later"').replace(
            'receiver = "pager"', 'receiver = "ghost"'
        )
    )
    clock.advance(5)
    with caplog.at_level(logging.ERROR, logger="allele.observability.alerts"):
        router.tick()
    assert router.reloads == 1 and router.config.route.group_wait_s == 20
    assert router.last_error is not None and len(router.last_error.splitlines()) == 2
    assert len([r for r in caplog.records if "keeping the routes in force" in r.message]) == 2
    router.close()


def test_a_bad_file_at_start_logs_alerts_until_fixed(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "routes.toml"
    path.write_text("[route]\n")
    router = router_from_file(path, clock=clock)
    assert router.config.route.receiver == "log" and router.last_error
    path.write_text(GOOD)
    assert router.reload() and router.config.route.receiver == "team"
    router.close()


def test_the_engine_routes_through_alert_routes(tmp_path: Path, clock: ManualClock) -> None:
    from allele.observability.config import ObservabilitySettings
    from allele.observability.engine import ObservabilityEngine

    path = tmp_path / "routes.toml"
    path.write_text(GOOD)
    settings = ObservabilitySettings(alert_routes=str(path), store_uri="")
    engine = ObservabilityEngine(settings, clock=clock)
    try:
        [router] = engine.alerts.notifiers
        assert isinstance(router, Router) and router.routes_file == path
    finally:
        engine.close()


def test_silence_round_trip_through_dict(clock: ManualClock) -> None:
    silence = Silences(clock=clock).add(['a="b"'], created_by="ana", comment="c", duration_s=5)
    assert Silence.from_dict(silence.to_dict()) == silence


def test_alert_routes_is_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from allele.observability.config import ObservabilitySettings

    path = tmp_path / "routes.toml"
    monkeypatch.setenv("ALLELE_ALERT_ROUTES", str(path))
    assert ObservabilitySettings().alert_routes == path


def test_the_router_honours_silences_added_in_the_store_by_another_process(
    clock: ManualClock,
) -> None:
    from allele.observability.store import open_store

    with open_store("sqlite://") as store:
        router, sinks = make_router(clock, Route(receiver="team", group_by=["..."], group_wait_s=0))
        router.attach_store(store)
        Silences(clock=clock, store=store).add(  # e.g. `allele alerts silence add`
            ['component_id="db"'], created_by="ana", comment="migration", duration_s=3600
        )
        clock.advance(5)  # the router re-reads the store every reload_interval_s
        router.submit([alert(alertname="slow", component_id="db")])
        assert router.tick() == [] and sinks["team"].got == []
        from allele.observability.store.repository.alerting import AlertingRecords

        router.submit([alert(alertname="slow", component_id="web")])
        [sent] = router.tick()
        [logged] = AlertingRecords(store).load_notifications()
        assert logged["notification_id"] == sent.notification_id and logged["receiver"] == "team"
