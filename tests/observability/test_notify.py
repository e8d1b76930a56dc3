"""Notifications: log, console, and a webhook posted to a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from allele.errors import ConfigurationError
from allele.observability.notify import ConsoleNotifier, LogNotifier, WebhookNotifier
from allele.observability.types import Aggregation, Alert, AlertSeverity, AlertState, Operator


def make_alert(severity: AlertSeverity = AlertSeverity.CRITICAL) -> Alert:
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    return Alert(
        alert_id="abc123",
        rule_name="evolution_engine_error_rate_critical",
        metric="allele_component_error_rate",
        severity=severity,
        state=AlertState.FIRING,
        value=0.4,
        threshold=0.25,
        operator=Operator.GT,
        aggregation=Aggregation.MEAN,
        labels={"component_id": "evo-1"},
        started_at=now,
        updated_at=now,
        fired_at=now,
    )


class WebhookServer:
    """A real HTTP server that records JSON bodies and answers with scripted statuses."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0
        self.received = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                server.attempts += 1
                status = server.statuses.pop(0) if server.statuses else 200
                if status == 200:
                    server.bodies.append(body)
                    server.received.set()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server_factory() -> Iterator[Any]:
    servers: list[WebhookServer] = []

    def make(statuses: list[int] | None = None) -> WebhookServer:
        server = WebhookServer(statuses or [])
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def test_webhook_posts_the_alert_as_json(server_factory: Any) -> None:
    server = server_factory()
    notifier = WebhookNotifier(server.url, backoff_s=0.01)
    notifier.notify(make_alert(), "firing")
    assert notifier.flush(10)
    notifier.close()
    [body] = server.bodies
    assert body["event"] == "firing"
    assert body["alert"]["alert_id"] == "abc123" and body["alert"]["severity"] == "critical"
    assert body["alert"]["labels"] == {"component_id": "evo-1"}
    assert "evolution_engine_error_rate_critical" in body["text"]
    assert Alert.from_dict(body["alert"]) == make_alert()
    assert notifier.stats() == {
        "queued": 1,
        "sent": 1,
        "failed": 0,
        "retries": 0,
        "dropped": 0,
        "stored": 0,
        "resumed": 0,
        "lost": 0,
    }


def test_webhook_retries_a_500_then_succeeds(server_factory: Any) -> None:
    server = server_factory([500, 503])
    notifier = WebhookNotifier(server.url, backoff_s=0.01, max_attempts=4)
    notifier.notify(make_alert(), "resolved")
    assert notifier.flush(10)
    notifier.close()
    assert server.attempts == 3 and len(server.bodies) == 1
    stats = notifier.stats()
    assert (stats["sent"], stats["retries"], stats["failed"]) == (1, 2, 0)


def test_webhook_gives_up_after_max_attempts_of_errors(server_factory: Any) -> None:
    server = server_factory([500, 500, 500])
    notifier = WebhookNotifier(server.url, backoff_s=0.01, max_attempts=3)
    notifier.notify(make_alert(), "firing")
    assert notifier.flush(10)
    notifier.close()
    assert server.attempts == 3 and server.bodies == []
    assert notifier.stats()["failed"] == 1 and notifier.last_error == "HTTP 500"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed when the block ends: nobody listens


def test_unreachable_webhook_is_a_counted_failure_not_a_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    notifier = WebhookNotifier(
        f"http://127.0.0.1:{closed_port()}/hook", backoff_s=0.01, max_attempts=2
    )
    with caplog.at_level(logging.WARNING, logger="allele.observability.alerts"):
        notifier.notify(make_alert(), "firing")  # returns at once: delivery is in background
        assert notifier.flush(10)
    notifier.close()
    stats = notifier.stats()
    assert (stats["sent"], stats["failed"], stats["retries"]) == (0, 1, 1)
    assert notifier.last_error is not None and "ConnectError" in notifier.last_error
    assert "giving up" in caplog.text


def test_full_webhook_queue_drops_and_counts(server_factory: Any) -> None:
    notifier = WebhookNotifier(f"http://127.0.0.1:{closed_port()}/", queue_size=1, backoff_s=5)
    for _ in range(5):
        notifier.notify(make_alert(), "firing")
    assert notifier.stats()["dropped"] >= 3
    notifier.close(timeout_s=0.1)


def test_webhook_url_must_be_http() -> None:
    with pytest.raises(ConfigurationError, match="must start with http:// or https://"):
        WebhookNotifier("ftp://example/hook")


def test_log_notifier_levels_follow_severity(caplog: pytest.LogCaptureFixture) -> None:
    notifier = LogNotifier()
    with caplog.at_level(logging.INFO, logger="allele.observability.alerts"):
        notifier.notify(make_alert(AlertSeverity.CRITICAL), "firing")
        notifier.notify(make_alert(AlertSeverity.CRITICAL), "resolved")
    levels = [r.levelno for r in caplog.records]
    assert levels == [logging.CRITICAL, logging.INFO]
    assert "[CRITICAL] firing: evolution_engine_error_rate_critical" in caplog.records[0].message


def test_console_notifier_prints_on_rich_console() -> None:
    from rich.console import Console

    out = io.StringIO()
    notifier = ConsoleNotifier(Console(file=out, width=200, color_system=None))
    notifier.notify(make_alert(AlertSeverity.WARNING), "firing")
    text = out.getvalue()
    assert "[WARNING] firing" in text and "allele_component_error_rate" in text


def test_retry_delays_double_up_to_the_cap() -> None:
    notifier = WebhookNotifier("http://127.0.0.1:9/hook", backoff_s=0.5, max_backoff_s=3.0)
    assert [notifier.retry_delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    notifier.close()


def test_each_retry_waits_its_scheduled_backoff(server_factory: Any) -> None:
    server = server_factory([500, 500])

    class RecordingWebhook(WebhookNotifier):
        """Records the backoff asked for before each retry, then waits the real one."""

        asked: ClassVar[list[int]] = []

        def retry_delay(self, attempt: int) -> float:
            self.asked.append(attempt)
            return super().retry_delay(attempt)

    notifier = RecordingWebhook(server.url, backoff_s=0.01, max_attempts=3)
    notifier.notify(make_alert(), "firing")
    assert notifier.flush(10)
    notifier.close()
    assert notifier.asked == [1, 2]  # two retries, each after its own delay
    assert server.attempts == 3 and len(server.bodies) == 1


def test_events_left_at_a_stop_are_stored_and_delivered_at_the_next_start(
    server_factory: Any, tmp_path: Any
) -> None:
    """A webhook down at stop: the queued events go to the store, not to /dev/null, and the
    next engine start on the same store delivers them."""
    from allele.observability.config import ObservabilitySettings
    from allele.observability.engine import ObservabilityEngine
    from allele.observability.store import open_store

    server = server_factory([500] * 1000)  # failing until told otherwise
    uri = f"sqlite:///{tmp_path / 'outbox.db'}"
    settings = ObservabilitySettings(
        store_uri=uri, webhook_url=server.url, collection_interval=3600.0
    )
    engine = ObservabilityEngine(settings)
    engine.start()
    (webhook,) = [n for n in engine.alerts.notifiers if isinstance(n, WebhookNotifier)]
    webhook.backoff_s = 5.0  # the first attempt fails; the retry waits past the stop
    for i in range(3):
        webhook.notify(make_alert(), ["firing", "acknowledged", "resolved"][i])
    engine.stop()
    assert webhook.stats()["stored"] == 3 and webhook.stats()["sent"] == 0
    with open_store(uri) as store:
        assert (
            store.engine.connect().exec_driver_sql("SELECT count(*) FROM obs_outbox").scalar_one()
            == 3
        )
    server.statuses = []  # the webhook is back
    again = ObservabilityEngine(settings)
    again.start()
    (webhook,) = [n for n in again.alerts.notifiers if isinstance(n, WebhookNotifier)]
    assert webhook.flush(20)
    again.stop()
    assert [body["event"] for body in server.bodies] == ["firing", "acknowledged", "resolved"]
    assert webhook.stats()["resumed"] == 3 and webhook.stats()["sent"] == 3


def test_the_webhook_url_path_and_query_never_reach_the_log(
    server_factory: Any, caplog: Any
) -> None:
    server = server_factory([500, 500])
    url = server.url + "/T000/B000/s3cr3t-token?key=abc123"
    notifier = WebhookNotifier(url, max_attempts=2, backoff_s=0.01)
    with caplog.at_level(logging.WARNING):
        notifier.notify(make_alert(), "firing")
        assert notifier.flush(10)
        notifier.close()
    assert "giving up" in caplog.text
    assert "s3cr3t" not in caplog.text and "abc123" not in caplog.text
    assert f"127.0.0.1:{server.httpd.server_address[1]}/***" in caplog.text
    with pytest.raises(ConfigurationError) as refused:
        WebhookNotifier("ftp://hooks.example.com/T0/s3cr3t")
    assert "s3cr3t" not in str(refused.value)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"timeout_s": 1e-300}, "timeout_s=1e-300 must be a finite number of seconds >= 0.01"),
        ({"backoff_s": float("inf")}, "backoff_s=inf"),
    ],
)
def test_webhook_durations_have_floors(kwargs: dict[str, float], fragment: str) -> None:
    from allele.errors import ValidationError

    with pytest.raises(ValidationError, match=fragment):
        WebhookNotifier("https://hooks.example.com/x", **kwargs)


def test_the_settings_watcher_refuses_a_busy_loop_interval(tmp_path: Any) -> None:
    from allele.errors import ValidationError
    from allele.observability.config import SettingsWatcher

    with pytest.raises(ValidationError, match="interval_s=1e-300"):
        SettingsWatcher(tmp_path / "s.toml", interval_s=1e-300)
