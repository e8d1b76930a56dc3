"""Alert routing as Alertmanager does it: a route tree, groups on timers, inhibition, silences.

The ``Router`` is a notifier of the ``AlertManager`` (and takes alerts from anything else through
``submit``). Each alert, with labels ``alertname`` (the rule), ``severity`` and its series'
labels, walks the route tree: a route takes it when its matchers hold; its children are tried
in order, the first that takes it wins unless that child has ``continue = true`` (then the next
ones are tried too); an alert no child takes stays with the parent. Children inherit what they
do not set (receiver, ``group_by`` and the three timers).

In the route it lands on, the alert joins the *group* of alerts sharing its values of the
route's ``group_by`` labels (``["..."]`` groups by every label, an empty list puts them all in
one group). A group notifies its receiver as Alertmanager's does:

* the first notification waits ``group_wait`` after the group's first alert started (so that
  the alerts of one incident arrive together; an alert that reaches the router late waits only
  what is left, as Alertmanager flushes at once for alerts older than ``group_wait``);
* after that the group is looked at every ``group_interval``, and notifies only when it changed
  (an alert began firing, or one resolved);
* a group that did not change but still fires notifies again after ``repeat_interval``.

Before a group notifies, alerts that an *inhibition rule* covers (a firing alert matching the
rule's source matchers with the same values of its ``equal`` labels mutes the alerts matching
its target matchers) and alerts an active *silence* matches are left out; a group whose alerts
are all muted sends nothing. Resolved alerts leave the group once notified; an empty group ends.

Time comes from the clock (a ``ManualClock`` in tests); ``tick()`` flushes the groups that are
due, and the ``AlertManager`` calls it after every evaluation. Sent notifications are kept in
``sent`` and, with a store, in the notification log (``obs_notifications``).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from allele.errors import AlleleError, ConfigurationError
from allele.observability.clock import Clock, SystemClock, utc_datetime
from allele.observability.matchers import Matcher, all_match
from allele.observability.receivers import (
    LogIntegration,
    Notification,
    Receiver,
    RoutedAlert,
    fingerprint,
)
from allele.observability.silences import Silences
from allele.observability.types import Alert, AlertState

logger = logging.getLogger("allele.observability.alerts")

#: ``group_by = ["..."]``: group by every label (each alert its own group).
ALL_LABELS = "..."

# Alertmanager's defaults.
DEFAULT_GROUP_WAIT_S = 30.0
DEFAULT_GROUP_INTERVAL_S = 300.0
DEFAULT_REPEAT_INTERVAL_S = 4 * 3600.0


@dataclass
class Route:
    """A node of the route tree; ``None`` fields are inherited from the parent."""

    receiver: str | None = None
    matchers: list[Matcher] = field(default_factory=list)
    group_by: list[str] | None = None
    group_wait_s: float | None = None
    group_interval_s: float | None = None
    repeat_interval_s: float | None = None
    continue_: bool = False
    routes: list[Route] = field(default_factory=list)
    # Set by ``resolve``: this route's place in the tree, part of its groups' keys.
    path: str = ""

    def resolve(self, parent: Route | None = None, path: str = "root") -> Route:
        """A copy with everything inherited filled in (the root gets Alertmanager's defaults)."""

        def pick(name: str, default: Any) -> Any:
            mine = getattr(self, name)
            if mine is not None:
                return mine
            return getattr(parent, name) if parent is not None else default

        resolved = Route(
            receiver=pick("receiver", None),
            matchers=list(self.matchers),
            group_by=list(pick("group_by", [])),
            group_wait_s=pick("group_wait_s", DEFAULT_GROUP_WAIT_S),
            group_interval_s=pick("group_interval_s", DEFAULT_GROUP_INTERVAL_S),
            repeat_interval_s=pick("repeat_interval_s", DEFAULT_REPEAT_INTERVAL_S),
            continue_=self.continue_,
            path=path,
        )
        if resolved.receiver is None:
            raise ConfigurationError(f"route {path} has no receiver (the root route needs one)")
        resolved.routes = [
            child.resolve(resolved, f"{path}/{i}:{','.join(map(str, child.matchers))}")
            for i, child in enumerate(self.routes)
        ]
        return resolved

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        """The routes an alert with ``labels`` lands on (Alertmanager's tree walk); assumes this
        route's own matchers were checked by the caller (the root matches everything)."""
        found: list[Route] = []
        for child in self.routes:
            if not all_match(child.matchers, labels):
                continue
            found.extend(child.match(labels))
            if not child.continue_:
                break
        return found or [self]

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """The labels that name the group an alert joins on this route."""
        assert self.group_by is not None
        if ALL_LABELS in self.group_by:
            return dict(labels)
        return {name: labels[name] for name in self.group_by if name in labels}


@dataclass
class InhibitRule:
    """A firing alert matching ``source_matchers`` mutes the alerts matching
    ``target_matchers`` that have the same values of every ``equal`` label."""

    source_matchers: list[Matcher]
    target_matchers: list[Matcher]
    equal: list[str] = field(default_factory=list)

    def mutes(self, target: Mapping[str, str], firing: Sequence[RoutedAlert]) -> bool:
        if not all_match(self.target_matchers, target):
            return False
        target_fp = fingerprint(target)
        for source in firing:
            if (
                all_match(self.source_matchers, source.labels)
                and source.fingerprint != target_fp  # an alert cannot inhibit itself
                and all(source.labels.get(n, "") == target.get(n, "") for n in self.equal)
            ):
                return True
        return False


@dataclass
class RoutingConfig:
    """What the router does: the route tree, the receivers and the inhibition rules."""

    route: Route
    receivers: dict[str, Receiver]
    inhibit_rules: list[InhibitRule] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.route = self.route.resolve()
        missing = sorted(
            {str(r.receiver) for r in _walk(self.route) if r.receiver not in self.receivers}
        )
        if missing:
            raise ConfigurationError(
                f"routes name unknown receiver(s) {missing}; defined: {sorted(self.receivers)}"
            )

    @classmethod
    def log_only(cls, **route: Any) -> RoutingConfig:
        """One route, one receiver that logs (the default without a routes file)."""
        return cls(Route(receiver="log", **route), {"log": Receiver("log", [LogIntegration()])})


def _walk(route: Route) -> Iterable[Route]:
    yield route
    for child in route.routes:
        yield from _walk(child)


@dataclass
class _Sent:
    """What a group last told a receiver (Alertmanager's notification log entry)."""

    firing: frozenset[str]
    resolved: frozenset[str]
    at_mono: float


@dataclass
class _Group:
    key: str
    route: Route
    labels: dict[str, str]
    alerts: dict[str, RoutedAlert] = field(default_factory=dict)
    next_flush_mono: float = 0.0
    flushed: bool = False
    serial: int = 0  # which group of this key (a key's group ends once empty; a new one begins)


def _group_key(route: Route, labels: Mapping[str, str]) -> str:
    return f"{route.path}:{{{','.join(f'{k}={v!r}' for k, v in sorted(labels.items()))}}}"


def alert_to_routed(alert: Alert) -> RoutedAlert:
    """The router's view of an ``AlertManager`` alert (recovering still counts as firing)."""
    labels = {"alertname": alert.rule_name, "severity": alert.severity.value, **alert.labels}
    annotations = {"summary": alert.message or alert.rule_name, "value": f"{alert.value:.6g}"}
    if alert.acknowledged_by:
        annotations["acknowledged_by"] = alert.acknowledged_by
    resolved = alert.state is AlertState.RESOLVED
    return RoutedAlert(
        labels=labels,
        annotations=annotations,
        starts_at=alert.fired_at or alert.started_at,
        ends_at=alert.resolved_at if resolved else None,
        status="resolved" if resolved else "firing",
        updated_at=alert.updated_at,
    )


class Router:
    """Routes alerts to receivers in groups (see the module docstring).

    ``config`` is a ``RoutingConfig`` (default: everything to the log); ``routes_file`` a TOML
    file read with ``load_routes`` and re-read by ``tick()`` when it changes (a bad file keeps
    the routes in force and logs one line per problem; ``last_error`` holds them).
    """

    def __init__(
        self,
        config: RoutingConfig | None = None,
        *,
        clock: Clock | None = None,
        silences: Silences | None = None,
        routes_file: str | Path | None = None,
        reload_interval_s: float = 5.0,
        store: Any = None,
        history_size: int = 1000,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self._lock = threading.RLock()
        self.routes_file = Path(routes_file) if routes_file is not None else None
        self._digest: str | None = None
        if config is None and self.routes_file is not None:
            from allele.observability.routing_config import file_digest, load_routes

            self._digest = file_digest(self.routes_file)
            config = load_routes(self.routes_file)
        self.config = config or RoutingConfig.log_only()
        self.silences = silences or Silences(clock=self.clock)
        self.reload_interval_s = reload_interval_s
        self._next_reload_mono = self.clock.monotonic() + reload_interval_s
        self._groups: dict[str, _Group] = {}
        self._serial = 0
        self._log: dict[tuple[str, str], _Sent] = {}
        self.sent: deque[Notification] = deque(maxlen=history_size)
        self.last_error: str | None = None
        self.reloads = 0
        self._records: Any = None
        self.store_errors = 0
        if store is not None:
            self.attach_store(store)

    # inputs ------------------------------------------------------------------------------------

    def attach_store(self, store: Any) -> None:
        """Log notifications to ``store`` and keep silences there from now on."""
        from allele.observability.store.repository.alerting import AlertingRecords

        self._records = AlertingRecords(store)
        self.silences.attach_store(store)

    def notify(self, alert: Alert, event: str) -> None:
        """The ``Notifier`` side: take an alert event from the ``AlertManager``."""
        self.submit([alert_to_routed(alert)])

    def submit(self, alerts: Iterable[RoutedAlert]) -> None:
        """Put alerts (new ones, or new states of known ones, by label fingerprint) into the
        groups of the routes they land on."""
        now = self.clock.monotonic()
        with self._lock:
            for alert in alerts:
                self._insert(alert, now)

    def _insert(self, alert: RoutedAlert, now_mono: float) -> None:
        for route in self.config.route.match(alert.labels):
            labels = route.group_labels(alert.labels)
            key = _group_key(route, labels)
            group = self._groups.get(key)
            if group is None:
                if alert.resolved:
                    continue  # the resolution of an alert no group holds: nothing to tell
                # group_wait counts from the alert's start: an alert that reaches the router
                # late (it was correlated first, or is old) does not wait a full group_wait more.
                self._serial += 1
                group = _Group(
                    key,
                    route,
                    labels,
                    next_flush_mono=self._due(route, alert, now_mono),
                    serial=self._serial,
                )
                self._groups[key] = group
            elif not group.flushed:
                # Before its first notification a group waits group_wait from its oldest alert.
                group.next_flush_mono = min(
                    group.next_flush_mono, self._due(route, alert, now_mono)
                )
            group.alerts[alert.fingerprint] = alert

    def _due(self, route: Route, alert: RoutedAlert, now_mono: float) -> float:
        """When group_wait after the alert's start falls (now at the latest)."""
        assert route.group_wait_s is not None
        if alert.starts_at is None:
            return now_mono + route.group_wait_s
        age = self.clock.time() - alert.starts_at.timestamp()
        return now_mono + min(route.group_wait_s, max(0.0, route.group_wait_s - age))

    def hurry(self, alerts: Iterable[RoutedAlert]) -> None:
        """Bring the next notification of the groups holding ``alerts`` forward to
        ``group_wait`` after each alert started, even for a group already notified (which
        would otherwise wait out its ``group_interval``): for an alert that may be the first
        of another incident (see ``IntelligentAlertManager``)."""
        now = self.clock.monotonic()
        with self._lock:
            for alert in alerts:
                for route in self.config.route.match(alert.labels):
                    group = self._groups.get(_group_key(route, route.group_labels(alert.labels)))
                    if group is not None and alert.fingerprint in group.alerts:
                        group.next_flush_mono = min(
                            group.next_flush_mono, self._due(route, alert, now)
                        )

    def withdraw(self, labels: Iterable[Mapping[str, str]]) -> None:
        """Take alerts out of their groups without telling anyone (an alert that moved to
        another group under new labels, e.g. into another alert cluster)."""
        gone = {fingerprint(item) for item in labels}
        with self._lock:
            for group in self._groups.values():
                for fp in gone & group.alerts.keys():
                    del group.alerts[fp]

    # time --------------------------------------------------------------------------------------

    def tick(self) -> list[Notification]:
        """Flush every group that is due; return the notifications sent."""
        now = self.clock.monotonic()
        if now >= self._next_reload_mono:  # the routes file, and silences made elsewhere
            self._next_reload_mono = now + self.reload_interval_s
            self.reload()
        sent: list[Notification] = []
        with self._lock:
            for group in [g for g in self._groups.values() if g.next_flush_mono <= now]:
                sent.extend(self._flush(group, now))
                assert group.route.group_interval_s is not None
                group.next_flush_mono = now + group.route.group_interval_s
                group.flushed = True
                if not group.alerts:
                    del self._groups[group.key]
        if sent and self._records is not None:
            try:
                self._records.save_notifications(n.to_dict() for n in sent)
            except AlleleError as exc:  # the notification went out; only its log entry is lost
                self.store_errors += 1
                logger.warning("could not log %d notification(s): %s", len(sent), exc)
        return sent

    def next_flush_in(self) -> float | None:
        """Seconds until the next group is due (None without groups)."""
        with self._lock:
            if not self._groups:
                return None
            due = min(g.next_flush_mono for g in self._groups.values())
        return max(0.0, due - self.clock.monotonic())

    def _flush(self, group: _Group, now_mono: float) -> list[Notification]:
        firing_all = [a for g in self._groups.values() for a in g.alerts.values() if not a.resolved]
        shown = [a for a in group.alerts.values() if not self._muted(a, firing_all)]
        firing = frozenset(a.fingerprint for a in shown if not a.resolved)
        resolved = frozenset(a.fingerprint for a in shown if a.resolved)
        receiver = group.route.receiver
        assert receiver is not None
        out: list[Notification] = []
        if self._needs_update(group, receiver, firing, resolved, now_mono):
            notification = Notification(
                notification_id=uuid.uuid4().hex,
                receiver=receiver,
                group_key=group.key,
                status="firing" if firing else "resolved",
                group_labels=dict(group.labels),
                alerts=sorted(
                    shown, key=lambda a: (a.resolved, a.rank, a.starts_at or utc_datetime(0))
                ),
                sent_at=utc_datetime(self.clock.time()),
            )
            self.config.receivers[receiver].send(notification)
            self.sent.append(notification)
            out.append(notification)
            self._log[(group.key, receiver)] = _Sent(firing, resolved, now_mono)
        # Resolved alerts have been told (or were muted): they leave the group.
        for fp in [fp for fp, a in group.alerts.items() if a.resolved]:
            del group.alerts[fp]
        if not group.alerts:
            self._log.pop((group.key, receiver), None)
        return out

    def _needs_update(
        self,
        group: _Group,
        receiver: str,
        firing: frozenset[str],
        resolved: frozenset[str],
        now_mono: float,
    ) -> bool:
        entry = self._log.get((group.key, receiver))
        if entry is None:
            return bool(firing)
        if not firing <= entry.firing:
            return True  # something new fires
        if not firing:
            return bool(entry.firing)  # everything it told about has ended
        if not resolved <= entry.resolved and resolved & entry.firing:
            return True  # an alert it told about has resolved
        assert group.route.repeat_interval_s is not None
        return now_mono - entry.at_mono >= group.route.repeat_interval_s

    def _muted(self, alert: RoutedAlert, firing: Sequence[RoutedAlert]) -> bool:
        if self.silences.silenced_by(alert.labels):
            return True
        return any(rule.mutes(alert.labels, firing) for rule in self.config.inhibit_rules)

    def muted_by(self, labels: Mapping[str, str]) -> dict[str, list[str]]:
        """Why an alert with ``labels`` would be muted now: silence ids and inhibiting rules."""
        with self._lock:
            firing = [a for g in self._groups.values() for a in g.alerts.values() if not a.resolved]
        rules = [
            f"inhibit_rules[{i}]"
            for i, rule in enumerate(self.config.inhibit_rules)
            if rule.mutes(labels, firing)
        ]
        return {"silences": self.silences.silenced_by(labels), "inhibit_rules": rules}

    # reading -----------------------------------------------------------------------------------

    def groups(self) -> list[dict[str, Any]]:
        """The current groups: key, receiver, labels and their alerts."""
        with self._lock:
            return [
                {
                    "group_key": g.key,
                    "receiver": g.route.receiver,
                    "labels": dict(g.labels),
                    "alerts": [a.to_dict() for a in g.alerts.values()],
                }
                for g in self._groups.values()
            ]

    def groups_of(self, labels: Mapping[str, str]) -> list[str]:
        """``"<group key>#<serial>"`` of each group holding the alert with ``labels`` now."""
        fp = fingerprint(labels)
        with self._lock:
            return [f"{g.key}#{g.serial}" for g in self._groups.values() if fp in g.alerts]

    # configuration -----------------------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read ``routes_file`` if it changed; True when new routes took effect. A bad file
        keeps the routes in force; its problems are logged, one per line, and kept in
        ``last_error``. The silences are refreshed from the store too."""
        self.silences.refresh()
        if self.routes_file is None:
            return False
        from allele.observability.routing_config import file_digest, load_routes

        digest = file_digest(self.routes_file)
        if digest is None or digest == self._digest:
            return False
        self._digest = digest
        try:
            config = load_routes(self.routes_file)
        except ConfigurationError as exc:
            self.last_error = str(exc)
            for line in str(exc).splitlines():
                logger.error("rejected alert routes reload, keeping the routes in force: %s", line)
            return False
        self.apply(config)
        self.last_error = None
        self.reloads += 1
        logger.info("reloaded alert routes from %s", self.routes_file)
        return True

    def apply(self, config: RoutingConfig) -> None:
        """Use ``config`` from now on: every held alert is routed again (groups whose key did not
        change keep their notification log, so nothing is sent twice)."""
        with self._lock:
            old_receivers = self.config.receivers
            held = [a for g in self._groups.values() for a in g.alerts.values()]
            self.config = config
            self._groups = {}
            now = self.clock.monotonic()
            for alert in held:
                self._insert(alert, now)
        for name, receiver in old_receivers.items():
            if config.receivers.get(name) is not receiver:
                receiver.close()

    def close(self) -> None:
        """Close every receiver (stops webhook senders)."""
        for receiver in self.config.receivers.values():
            receiver.close()

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait for queued webhook deliveries (the engine calls this when it stops)."""
        ok = True
        for receiver in self.config.receivers.values():
            for integration in receiver.integrations:
                flush = getattr(integration, "flush", None)
                if callable(flush):
                    ok = bool(flush(timeout_s)) and ok
        return ok


def router_from_file(path: str | Path, *, clock: Clock | None = None) -> Router:
    """A router on the routes file at ``path``. A file that does not validate is logged, one
    line per problem, and the router logs every alert until the file is fixed (it re-reads
    it when it changes): monitoring must not stop the program over its configuration."""
    try:
        return Router(routes_file=path, clock=clock)
    except ConfigurationError as exc:
        for line in str(exc).splitlines():
            logger.error("alert routes not used, logging alerts instead: %s", line)
        router = Router(RoutingConfig.log_only(), routes_file=path, clock=clock)
        from allele.observability.routing_config import file_digest

        router._digest = file_digest(Path(path))  # re-read only once it changes
        router.last_error = str(exc)
        return router
