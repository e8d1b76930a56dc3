"""The alert policy: severity by breach size, escalation delays, cooldown, resolution."""

from __future__ import annotations

import pytest

from allele.cmr.alerting import AlertPolicy
from allele.errors import ValidationError

CONFIG = {
    "alert_cooldown": 60.0,
    "escalation_rules": {
        "critical": {"immediate": True},
        "error": {"delay": 30.0},
        "warning": {"delay": 300.0},
    },
}


def _states(events) -> list[tuple[str, str]]:
    return [(e.state, e.severity) for e in events]


def test_severity_follows_the_breach_ratio() -> None:
    policy = AlertPolicy(CONFIG)
    assert policy.severity_of(0.9) is None
    assert policy.severity_of(1.5) == "warning"
    assert policy.severity_of(2.0) == "error"
    assert policy.severity_of(5.0) == "critical"


def test_critical_fires_at_once_and_warning_after_its_delay() -> None:
    policy = AlertPolicy(CONFIG)
    assert _states(policy.evaluate("high_latency", 0.5, 0.1, 5.0, 0.0, "m")) == [
        ("firing", "critical")
    ]
    policy = AlertPolicy(CONFIG)
    assert policy.evaluate("high_latency", 0.15, 0.1, 1.5, 0.0, "m") == []
    assert policy.evaluate("high_latency", 0.15, 0.1, 1.5, 299.0, "m") == []
    fired = policy.evaluate("high_latency", 0.15, 0.1, 1.5, 300.0, "m")
    assert _states(fired) == [("firing", "warning")]
    assert "0.15 above threshold 0.1" in fired[0].message


def test_an_active_alert_escalates_past_the_cooldown() -> None:
    policy = AlertPolicy(
        {**CONFIG, "escalation_rules": {"warning": {"delay": 0.0}, "error": {"delay": 30.0}}}
    )
    assert _states(policy.evaluate("low_efficiency", 0.6, 0.7, 1.2, 0.0, "m")) == [
        ("firing", "warning")
    ]
    assert policy.evaluate("low_efficiency", 0.3, 0.7, 2.3, 10.0, "m") == []  # error: 30 s
    escalated = policy.evaluate("low_efficiency", 0.3, 0.7, 2.3, 40.0, "m")
    assert _states(escalated) == [("firing", "error")]
    assert escalated[0].escalated_from == "warning"
    assert "below threshold" in escalated[0].message
    assert policy.active() == {"low_efficiency": "error"}


def test_cooldown_holds_back_a_new_alert_and_resolution_is_sent() -> None:
    policy = AlertPolicy(CONFIG)
    policy.evaluate("high_error_rate", 0.5, 0.05, 10.0, 0.0, "m")
    resolved = policy.evaluate("high_error_rate", 0.0, 0.05, 0.0, 5.0, "m")
    assert _states(resolved) == [("resolved", "critical")]
    assert policy.evaluate("high_error_rate", 0.5, 0.05, 10.0, 20.0, "m") == []
    assert policy.suppressed == 1
    assert _states(policy.evaluate("high_error_rate", 0.5, 0.05, 10.0, 61.0, "m")) == [
        ("firing", "critical")
    ]


def test_disabled_alerts_and_bad_config() -> None:
    assert AlertPolicy({"enable_alerts": False}).evaluate("x", 1.0, 0.1, 10.0, 0.0, "m") == []
    with pytest.raises(ValidationError, match="console, log"):
        AlertPolicy({"alert_channels": ["pager"]})
    with pytest.raises(ValidationError, match="allowed"):
        AlertPolicy({"cooldown": 3})
    with pytest.raises(ValidationError, match="alert_cooldown"):
        AlertPolicy({"alert_cooldown": -1})
