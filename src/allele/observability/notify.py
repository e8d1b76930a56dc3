"""Alert notifications: to the log, to the console (rich) and to a webhook (JSON POST).

A notifier gets ``notify(alert, event)`` where ``event`` is "firing", "resolved" or
"acknowledged". Notifiers never raise into the alert manager and never block it: the webhook
notifier queues the payload and posts it from a background thread, retrying with exponential
backoff; a webhook that stays unreachable is counted as a failure in ``stats()``.

Events still undelivered when the webhook notifier stops (``suspend``) are handed to its
``outbox`` (the engine gives it the store: ``Store.save_notifications``) and delivered on the
next start (``resume``); without an outbox they are counted as ``lost`` and logged. Logs name
the webhook by scheme and host only: its path and query carry tokens.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from datetime import UTC, datetime
from typing import Any, Protocol

from allele.errors import ConfigurationError
from allele.observability.intervals import MIN_POLL_S, MIN_TIMEOUT_S, check_seconds
from allele.observability.redact import mask_webhook_url
from allele.observability.types import Alert, AlertSeverity

logger = logging.getLogger("allele.observability.alerts")

EVENTS = ("firing", "resolved", "acknowledged")

_LOG_LEVEL = {
    AlertSeverity.INFO: logging.INFO,
    AlertSeverity.WARNING: logging.WARNING,
    AlertSeverity.ERROR: logging.ERROR,
    AlertSeverity.CRITICAL: logging.CRITICAL,
}
_STYLE = {
    AlertSeverity.INFO: "cyan",
    AlertSeverity.WARNING: "yellow",
    AlertSeverity.ERROR: "red",
    AlertSeverity.CRITICAL: "bold white on red",
}


class Notifier(Protocol):
    """Something that tells people about alert events."""

    def notify(self, alert: Alert, event: str) -> None:
        """Deliver (or queue) one event; must not raise for delivery failures."""
        ...

    def close(self) -> None:
        """Release resources (threads, connections)."""
        ...


def describe(alert: Alert, event: str) -> str:
    """Return the one-line human text of an alert event."""
    where = ",".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
    text = (
        f"[{alert.severity.value.upper()}] {event}: {alert.rule_name} -- "
        f"{alert.aggregation.value}({alert.metric}{{{where}}}) = {alert.value:.6g} "
        f"({alert.operator.value} {alert.threshold:g})"
    )
    if event == "acknowledged" and alert.acknowledged_by:
        text += f" by {alert.acknowledged_by}"
    if event == "resolved" and alert.resolved_by:
        text += f" by {alert.resolved_by}"
    return text


class Outbox(Protocol):
    """Where undelivered webhook payloads wait for the next start (e.g. the ``Store``)."""

    def save_notifications(self, target: str, payloads: list[dict[str, Any]]) -> int: ...

    def take_notifications(self, target: str) -> list[dict[str, Any]]: ...


class LogNotifier:
    """Logs alert events on the ``allele.observability.alerts`` logger, at a level that follows
    the severity (resolutions and acknowledgements at INFO)."""

    def __init__(self, log: logging.Logger | None = None) -> None:
        self.log = log or logger

    def notify(self, alert: Alert, event: str) -> None:
        level = _LOG_LEVEL[alert.severity] if event == "firing" else logging.INFO
        self.log.log(level, "%s", describe(alert, event), extra={"alert": alert.to_dict()})

    def close(self) -> None:
        return None


class ConsoleNotifier:
    """Prints alert events on a rich console (stderr by default), coloured by severity."""

    def __init__(self, console: Any = None) -> None:
        if console is None:
            from rich.console import Console

            console = Console(stderr=True)
        self.console = console

    def notify(self, alert: Alert, event: str) -> None:
        from rich.markup import escape

        style = _STYLE[alert.severity] if event == "firing" else "green"
        self.console.print(f"[{style}]{escape(describe(alert, event))}[/]")

    def close(self) -> None:
        return None


class WebhookNotifier:
    """POSTs each alert event as JSON to ``url`` from a background thread.

    Payload: ``{"event": ..., "alert": alert.to_dict(), "text": ..., "sent_at": ISO UTC}``.
    A delivery that gets a transport error or a non-2xx status is retried up to
    ``max_attempts`` times in all, waiting ``backoff_s * 2**n`` seconds (capped at
    ``max_backoff_s``) between attempts; then it counts as ``failed``. When more than
    ``queue_size`` events wait, new ones are dropped and counted. ``transport`` is passed to
    ``httpx.Client`` (tests may give a mock transport; the default is the network).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        max_attempts: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        queue_size: int = 1000,
        headers: dict[str, str] | None = None,
        transport: Any = None,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            shown = mask_webhook_url(url) if isinstance(url, str) else repr(url)
            raise ConfigurationError(
                f"webhook url must start with http:// or https://, got {shown}"
            )
        if max_attempts < 1:
            raise ConfigurationError(f"webhook max_attempts must be >= 1, got {max_attempts!r}")
        check_seconds(timeout_s, "timeout_s", minimum=MIN_TIMEOUT_S)
        check_seconds(backoff_s, "backoff_s", minimum=MIN_POLL_S)
        check_seconds(max_backoff_s, "max_backoff_s", minimum=backoff_s)
        self.url = url
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.headers = dict(headers or {})
        self._transport = transport
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._stats = {
            "queued": 0,
            "sent": 0,
            "failed": 0,
            "retries": 0,
            "dropped": 0,
            "stored": 0,
            "resumed": 0,
            "lost": 0,
        }
        self.last_error: str | None = None
        #: Where ``suspend`` leaves undelivered payloads (set by the engine to its store).
        self.outbox: Outbox | None = None
        self._inflight: dict[str, Any] | None = None
        self._unsent: list[dict[str, Any]] = []

    @property
    def target(self) -> str:
        """The webhook as logs show it (scheme and host; path and query hidden)."""
        return mask_webhook_url(self.url)

    @property
    def _outbox_key(self) -> str:
        # The outbox is keyed by a digest: the URL's token never reaches the database.
        import hashlib

        return hashlib.sha256(self.url.encode()).hexdigest()[:32]

    def notify(self, alert: Alert, event: str) -> None:
        payload = {
            "event": event,
            "alert": alert.to_dict(),
            "text": describe(alert, event),
            "sent_at": datetime.now(UTC).isoformat(),
        }
        self.post(payload)

    def post(self, payload: dict[str, Any]) -> None:
        """Queue any JSON ``payload`` for delivery (the router's receivers use this for
        Alertmanager and Slack payloads); undelivered at a stop, it goes to the outbox."""
        if self._stop.is_set():
            self._count("dropped")
            return
        self._ensure_thread()
        try:
            self._queue.put_nowait(payload)
        except queue.Full:
            self._count("dropped")
            logger.warning(
                "webhook queue full (%d); dropped %s", self._queue.maxsize, _what(payload)
            )
            return
        self._count("queued")

    def stats(self) -> dict[str, int]:
        """Return delivery counts: queued, sent, failed, retries, dropped, stored (left in the
        outbox at a stop), resumed (taken from it at a start) and lost (no outbox to take)."""
        with self._stats_lock:
            return dict(self._stats)

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued event is delivered or failed; return False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the sender after trying to deliver what is queued for up to ``timeout_s``;
        what is left goes to the outbox (see ``suspend``). Later events are dropped."""
        self.suspend(timeout_s)
        self._stop.set()

    def suspend(self, timeout_s: float = 0.5) -> int:
        """Deliver what is queued for up to ``timeout_s``, then stop the sender and hand what
        is still undelivered to the outbox; returns how many were stored there. A later
        ``notify`` starts a new sender."""
        self.flush(timeout_s)
        thread = self._thread
        stop, self._stop = self._stop, threading.Event()
        stop.set()
        if thread is not None:
            with contextlib.suppress(queue.Full):  # the sender stops on its event anyway
                self._queue.put_nowait(None)
            thread.join(min(timeout_s, 0.5))
        with self._thread_lock:
            self._thread = None
        left = list(self._unsent)
        self._unsent.clear()
        if self._inflight is not None:
            left.append(self._inflight)
            self._inflight = None
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            self._queue.task_done()
            if item is not None:
                left.append(item)
        if not left:
            return 0
        if self.outbox is not None:
            try:
                stored = self.outbox.save_notifications(self._outbox_key, left)
            except Exception as exc:
                logger.error(
                    "webhook %s: %d undelivered notification(s) could not be stored (%s); lost",
                    self.target,
                    len(left),
                    exc,
                )
            else:
                with self._stats_lock:
                    self._stats["stored"] += stored
                logger.warning(
                    "webhook %s: %d undelivered notification(s) stored for the next start",
                    self.target,
                    stored,
                )
                return stored
        with self._stats_lock:
            self._stats["lost"] += len(left)
        logger.warning(
            "webhook %s: %d undelivered notification(s) dropped at stop (no outbox to keep them)",
            self.target,
            len(left),
        )
        return 0

    def resume(self) -> int:
        """Queue the notifications a previous stop left in the outbox; returns how many."""
        if self.outbox is None:
            return 0
        try:
            payloads = self.outbox.take_notifications(self._outbox_key)
        except Exception as exc:
            logger.error("webhook %s: cannot read stored notifications (%s)", self.target, exc)
            return 0
        for payload in payloads:
            self._ensure_thread()
            try:
                self._queue.put_nowait(payload)
            except queue.Full:
                self._count("dropped")
                continue
            self._count("resumed")
        if payloads:
            logger.info(
                "webhook %s: delivering %d notification(s) stored at the previous stop",
                self.target,
                len(payloads),
            )
        return len(payloads)

    def retry_delay(self, attempt: int) -> float:
        """Return the wait in seconds before ``attempt`` (1 = the first retry): ``backoff_s``
        doubled per retry, at most ``max_backoff_s``."""
        return float(min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)))

    def _count(self, what: str) -> None:
        with self._stats_lock:
            self._stats[what] += 1

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._thread_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="allele-webhook", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        import httpx

        kwargs: dict[str, Any] = {"timeout": self.timeout_s, "headers": self.headers}
        if self._transport is not None:
            kwargs["transport"] = self._transport
        stop = self._stop  # this sender's own: suspend() replaces it for the next sender
        with httpx.Client(**kwargs) as client:
            while not stop.is_set():
                try:
                    payload = self._queue.get(timeout=1.0)
                except queue.Empty:
                    continue
                if payload is None or stop.is_set():
                    # Stopping: a payload goes back for suspend() or the next sender.
                    if payload is not None:
                        with contextlib.suppress(queue.Full):
                            self._queue.put_nowait(payload)
                    self._queue.task_done()
                    return
                try:
                    if payload is None:
                        return
                    self._inflight = payload
                    if not self._deliver(client, payload):
                        return  # stopping: suspend() takes it as undelivered
                    self._inflight = None
                except Exception:  # never let one payload kill the sender
                    logger.exception("webhook sender failed on one payload")
                    self._count("failed")
                finally:
                    self._queue.task_done()

    def _deliver(self, client: Any, payload: dict[str, Any]) -> bool:
        """Post ``payload`` with retries; False when a stop interrupted it (undelivered)."""
        import httpx

        stop = self._stop
        for attempt in range(self.max_attempts):
            if attempt:
                self._count("retries")
                if stop.wait(self.retry_delay(attempt)):
                    return False
            try:
                response = client.post(self.url, json=payload)
            except httpx.HTTPError as exc:
                # httpx may name the URL in its message: hide its token.
                self.last_error = f"{type(exc).__name__}: {exc}".replace(self.url, self.target)
                continue
            if 200 <= response.status_code < 300:
                self._count("sent")
                return True
            self.last_error = f"HTTP {response.status_code}"
        self._count("failed")
        logger.warning(
            "webhook %s: giving up on %s after %d attempt(s): %s",
            self.target,
            _what(payload),
            self.max_attempts,
            self.last_error,
        )
        return True


def _what(payload: dict[str, Any]) -> str:
    """What a payload is, for log lines: an alert event, an Alertmanager group's status, or
    a Slack message."""
    return str(payload.get("event") or payload.get("status") or "message")
