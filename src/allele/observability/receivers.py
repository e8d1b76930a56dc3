"""Receivers: where the router's group notifications go (log, console, webhook, Slack).

A router sends one ``Notification`` per alert group at a time: the group's labels, the labels and
annotations its alerts share, and each alert (firing or resolved). A ``Receiver`` is a named list
of integrations, as in Alertmanager:

* ``LogIntegration``: one log line per notification on ``allele.observability.alerts``;
* ``ConsoleIntegration``: a rich console (stderr), coloured by status;
* ``WebhookIntegration``: a JSON POST, either Alertmanager's webhook payload (``version "4"``,
  ``groupKey``, ``status``, ``receiver``, ``groupLabels``, ``commonLabels``,
  ``commonAnnotations``, ``externalURL``, ``alerts`` with ``startsAt``/``endsAt``/
  ``fingerprint``...) or a Slack-compatible incoming-webhook message (``text`` and
  ``attachments``). Delivery (background thread, retries with backoff) is the
  ``WebhookNotifier``'s.

Each integration has ``send_resolved`` (Alertmanager's defaults: true, except Slack).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from allele.errors import ConfigurationError
from allele.observability.clock import iso_utc

logger = logging.getLogger("allele.observability.alerts")

# Alertmanager's zero time, which its payload carries as the end of a still-firing alert.
_ZERO_TIME = "0001-01-01T00:00:00Z"


def fingerprint(labels: Mapping[str, str]) -> str:
    """A stable identity of a label set (16 hex digits), as Alertmanager's fingerprint."""
    text = "\xff".join(f"{k}\xfe{labels[k]}" for k in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class RoutedAlert:
    """An alert as the router sees it: labels, annotations, times and status."""

    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    status: str = "firing"  # firing or resolved
    updated_at: datetime | None = None
    generator_url: str = ""
    # Order within a notification: lower first (alert intelligence puts the root cause at 0).
    rank: int = 1

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    @property
    def resolved(self) -> bool:
        return self.status == "resolved"

    def to_dict(self) -> dict[str, Any]:
        """Alertmanager's JSON form of one alert."""
        return {
            "status": self.status,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": iso_utc(self.starts_at) or _ZERO_TIME,
            "endsAt": (iso_utc(self.ends_at) if self.resolved else None) or _ZERO_TIME,
            "generatorURL": self.generator_url,
            "fingerprint": self.fingerprint,
        }


@dataclass
class Notification:
    """One message about one alert group to one receiver."""

    notification_id: str
    receiver: str
    group_key: str
    status: str  # firing when any alert fires, else resolved
    group_labels: dict[str, str]
    alerts: list[RoutedAlert]
    sent_at: datetime
    truncated_alerts: int = 0

    @property
    def firing(self) -> list[RoutedAlert]:
        return [a for a in self.alerts if not a.resolved]

    @property
    def common_labels(self) -> dict[str, str]:
        return _common([a.labels for a in self.alerts])

    @property
    def common_annotations(self) -> dict[str, str]:
        return _common([a.annotations for a in self.alerts])

    def title(self) -> str:
        """A one-line summary: status, count, group labels."""
        where = ", ".join(f"{k}={v}" for k, v in sorted(self.group_labels.items())) or "all"
        count = len(self.firing) if self.status == "firing" else len(self.alerts)
        return f"[{self.status.upper()}:{count}] {where}"

    def to_dict(self) -> dict[str, Any]:
        """The record kept in the notification log (the Alertmanager payload and our ids)."""
        return {
            "notification_id": self.notification_id,
            "sent_at": iso_utc(self.sent_at),
            **alertmanager_payload(self),
        }


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = maps[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


def alertmanager_payload(notification: Notification, external_url: str = "") -> dict[str, Any]:
    """Alertmanager's webhook payload (version 4) of a notification."""
    return {
        "version": "4",
        "groupKey": notification.group_key,
        "truncatedAlerts": notification.truncated_alerts,
        "status": notification.status,
        "receiver": notification.receiver,
        "groupLabels": dict(notification.group_labels),
        "commonLabels": notification.common_labels,
        "commonAnnotations": notification.common_annotations,
        "externalURL": external_url,
        "alerts": [a.to_dict() for a in notification.alerts],
    }


def slack_payload(
    notification: Notification, *, channel: str | None = None, username: str | None = None
) -> dict[str, Any]:
    """A Slack-compatible incoming-webhook message: ``text`` plus one attachment per alert
    (red while firing, green once resolved), at most 20 as Slack renders."""
    lines = []
    for alert in notification.alerts[:20]:
        summary = alert.annotations.get("summary") or alert.labels.get("alertname", "alert")
        lines.append(
            {
                "color": "good" if alert.resolved else "danger",
                "title": f"{alert.status}: {alert.labels.get('alertname', 'alert')}",
                "text": summary,
                "fields": [
                    {"title": k, "value": v, "short": True} for k, v in sorted(alert.labels.items())
                ],
                "ts": int(alert.starts_at.timestamp()) if alert.starts_at else None,
            }
        )
    payload: dict[str, Any] = {"text": notification.title(), "attachments": lines}
    if channel:
        payload["channel"] = channel
    if username:
        payload["username"] = username
    return payload


class Integration(Protocol):
    """One way of delivering notifications."""

    send_resolved: bool

    def send(self, notification: Notification) -> None: ...

    def close(self) -> None: ...


class LogIntegration:
    """Logs each notification (firing at WARNING, resolved at INFO) with its payload."""

    def __init__(self, *, send_resolved: bool = True, log: logging.Logger | None = None) -> None:
        self.send_resolved = send_resolved
        self.log = log or logger

    def send(self, notification: Notification) -> None:
        level = logging.WARNING if notification.status == "firing" else logging.INFO
        summaries = "; ".join(
            a.annotations.get("summary") or a.labels.get("alertname", "")
            for a in notification.alerts
        )
        self.log.log(
            level,
            "%s -> %s: %s",
            notification.title(),
            notification.receiver,
            summaries,
            extra={"notification": alertmanager_payload(notification)},
        )

    def close(self) -> None:
        return None


class ConsoleIntegration:
    """Prints each notification on a rich console (stderr by default)."""

    def __init__(self, *, send_resolved: bool = True, console: Any = None) -> None:
        self.send_resolved = send_resolved
        if console is None:
            from rich.console import Console

            console = Console(stderr=True)
        self.console = console

    def send(self, notification: Notification) -> None:
        from rich.markup import escape

        style = "bold red" if notification.status == "firing" else "green"
        self.console.print(f"[{style}]{escape(notification.title())}[/]")
        for alert in notification.alerts:
            text = alert.annotations.get("summary") or alert.labels.get("alertname", "")
            self.console.print(f"  {alert.status}: {escape(text)}")

    def close(self) -> None:
        return None


class WebhookIntegration:
    """POSTs each notification as Alertmanager's payload (``format="alertmanager"``) or as a
    Slack message (``format="slack"``) through a ``WebhookNotifier``'s background sender."""

    FORMATS = ("alertmanager", "slack")

    def __init__(
        self,
        url: str,
        *,
        format: str = "alertmanager",
        send_resolved: bool | None = None,
        channel: str | None = None,
        username: str | None = None,
        external_url: str = "",
        transport: Any = None,
    ) -> None:
        from allele.observability.notify import WebhookNotifier

        if format not in self.FORMATS:
            raise ConfigurationError(
                f"webhook format {format!r} is unknown; allowed: {', '.join(self.FORMATS)}"
            )
        self.format = format
        self.send_resolved = (format != "slack") if send_resolved is None else send_resolved
        self.channel = channel
        self.username = username
        self.external_url = external_url
        self.sender = WebhookNotifier(url, transport=transport)

    def payload(self, notification: Notification) -> dict[str, Any]:
        if self.format == "slack":
            return slack_payload(notification, channel=self.channel, username=self.username)
        return alertmanager_payload(notification, self.external_url)

    def send(self, notification: Notification) -> None:
        self.sender.post(self.payload(notification))

    def flush(self, timeout_s: float = 10.0) -> bool:
        return self.sender.flush(timeout_s)

    def close(self) -> None:
        self.sender.close()


@dataclass
class Receiver:
    """A named list of integrations; a notification goes to each of them."""

    name: str
    integrations: list[Any] = field(default_factory=list)

    def send(self, notification: Notification) -> int:
        """Deliver to every integration that takes it; return how many did. A failing
        integration is logged and skipped (monitoring never crashes the program)."""
        delivered = 0
        for integration in self.integrations:
            if notification.status == "resolved" and not integration.send_resolved:
                continue
            try:
                integration.send(notification)
                delivered += 1
            except Exception:
                logger.exception("receiver %s: %s failed", self.name, type(integration).__name__)
        return delivered

    def close(self) -> None:
        for integration in self.integrations:
            try:
                integration.close()
            except Exception:
                logger.exception("closing %s failed", type(integration).__name__)
