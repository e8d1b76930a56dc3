"""The alert routes file: a TOML file named by ``ALLELE_ALERT_ROUTES``, read into a
``RoutingConfig``, validated as a whole (every problem is reported, one line each).

The layout follows Alertmanager's configuration::

    [route]
    receiver = "team"
    group_by = ["alertname", "component_id"]   # ["..."]: every label
    group_wait = "30s"                         # durations: 30s, 5m, 4h, 1h30m, 2d, or seconds
    group_interval = "5m"
    repeat_interval = "4h"

    [[route.routes]]
    matchers = ['severity="critical"']
    receiver = "pager"
    continue = true

    [[receivers]]
    name = "team"
    log_configs = [{}]
    console_configs = [{ send_resolved = false }]

    [[receivers]]
    name = "pager"
    webhook_configs = [{ url = "http://127.0.0.1:9093/hook" }]        # Alertmanager payload
    slack_configs = [{ api_url = "https://hooks.slack.com/...", channel = "#ops" }]

    [[inhibit_rules]]
    source_matchers = ['severity="critical"']
    target_matchers = ['severity="warning"']
    equal = ["component_id"]
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from allele.errors import AlleleError, ConfigurationError
from allele.observability.matchers import Matcher
from allele.observability.receivers import (
    ConsoleIntegration,
    LogIntegration,
    Receiver,
    WebhookIntegration,
)
from allele.observability.routing import InhibitRule, Route, RoutingConfig

ENV_VAR = "ALLELE_ALERT_ROUTES"

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(ms|s|m|h|d|w))+$")
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}

_ROUTE_KEYS = {
    "receiver",
    "matchers",
    "group_by",
    "group_wait",
    "group_interval",
    "repeat_interval",
    "continue",
    "routes",
}
_RECEIVER_KEYS = {"name", "log_configs", "console_configs", "webhook_configs", "slack_configs"}
_INHIBIT_KEYS = {"source_matchers", "target_matchers", "equal"}


def parse_duration(value: object) -> float:
    """Seconds of ``"30s"``, ``"5m"``, ``"1h30m"``, ``"2d"``... or of a number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{value!r} is negative")
        return float(value)
    if isinstance(value, str) and _DURATION.match(value.strip()):
        return sum(float(n) * _UNIT_S[u] for n, u in _PART.findall(value.strip()))
    raise ValueError(f"{value!r} is not a duration (e.g. 30s, 5m, 4h, 1h30m, or seconds)")


def file_digest(path: Path) -> str | None:
    """The content hash of ``path`` (None when it cannot be read)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def load_routes(path: str | Path) -> RoutingConfig:
    """Read and validate the routes file at ``path``; ``ConfigurationError`` lists every problem,
    one line each, prefixed with the file and where in it."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read the alert routes file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: not valid TOML: {exc}") from None
    return parse_routes(data, source=str(path))


def parse_routes(data: Mapping[str, Any], *, source: str = "routes") -> RoutingConfig:
    """Build a ``RoutingConfig`` from parsed TOML (see the module docstring)."""
    problems: list[str] = []

    def problem(where: str, text: str) -> None:
        problems.append(f"{source}: {where}: {text}")

    unknown = set(data) - {"route", "receivers", "inhibit_rules"}
    if unknown:
        problem(
            "top level",
            f"unknown key(s) {sorted(unknown)}; allowed: route, receivers, inhibit_rules",
        )
    receivers = _receivers(data.get("receivers"), problem)
    route_data = data.get("route")
    route: Route | None = None
    if not isinstance(route_data, Mapping):
        problem("route", "missing: the file needs a [route] table with a receiver")
    else:
        route = _route(route_data, "route", problem, root=True)
        if route is not None:
            for where, name in _receiver_names(route, "route"):
                if name not in receivers:
                    problem(
                        where, f"receiver {name!r} is not defined; defined: {sorted(receivers)}"
                    )
    inhibit = _inhibit_rules(data.get("inhibit_rules", []), problem)
    if problems or route is None:
        raise ConfigurationError("\n".join(problems))
    try:
        return RoutingConfig(route, receivers, inhibit)
    except AlleleError as exc:
        raise ConfigurationError(f"{source}: {exc}") from None


def _receiver_names(route: Route, where: str) -> list[tuple[str, str]]:
    out = [(where, route.receiver)] if route.receiver is not None else []
    for i, child in enumerate(route.routes):
        out.extend(_receiver_names(child, f"{where}.routes[{i}]"))
    return out


def _matchers(value: Any, where: str, problem: Any) -> list[Matcher]:
    if not isinstance(value, list):
        problem(
            where,
            f"must be a list of matcher strings such as 'severity=\"critical\"', got {value!r}",
        )
        return []
    out = []
    for i, item in enumerate(value):
        try:
            out.append(Matcher.parse(item))
        except AlleleError as exc:
            problem(f"{where}[{i}]", str(exc))
    return out


def _route(data: Mapping[str, Any], where: str, problem: Any, root: bool = False) -> Route | None:
    unknown = set(data) - _ROUTE_KEYS
    if unknown:
        problem(
            where, f"unknown key(s) {sorted(unknown)}; allowed: {', '.join(sorted(_ROUTE_KEYS))}"
        )
    route = Route()
    receiver = data.get("receiver")
    if receiver is not None and not (isinstance(receiver, str) and receiver):
        problem(f"{where}.receiver", f"must be a receiver name, got {receiver!r}")
    elif receiver is not None:
        route.receiver = receiver
    elif root:
        problem(f"{where}.receiver", "missing: the root route needs a receiver")
    if "matchers" in data:
        if root:
            problem(f"{where}.matchers", "the root route matches every alert; it takes no matchers")
        route.matchers = _matchers(data["matchers"], f"{where}.matchers", problem)
    if "group_by" in data:
        group_by = data["group_by"]
        if not isinstance(group_by, list) or not all(isinstance(g, str) for g in group_by):
            problem(
                f"{where}.group_by", f'must be a list of label names (or ["..."]), got {group_by!r}'
            )
        else:
            route.group_by = list(group_by)
    for key in ("group_wait", "group_interval", "repeat_interval"):
        if key in data:
            try:
                seconds = parse_duration(data[key])
            except ValueError as exc:
                problem(f"{where}.{key}", str(exc))
                continue
            if key != "group_wait" and seconds <= 0:
                problem(f"{where}.{key}", f"must be > 0, got {data[key]!r}")
            setattr(route, f"{key}_s", seconds)
    if "continue" in data:
        if not isinstance(data["continue"], bool):
            problem(f"{where}.continue", f"must be true or false, got {data['continue']!r}")
        elif root and data["continue"]:
            problem(f"{where}.continue", "the root route cannot continue")
        else:
            route.continue_ = data["continue"]
    children = data.get("routes", [])
    if not isinstance(children, list):
        problem(f"{where}.routes", f"must be a list of route tables, got {children!r}")
        children = []
    for i, child in enumerate(children):
        if not isinstance(child, Mapping):
            problem(f"{where}.routes[{i}]", f"must be a table, got {child!r}")
            continue
        built = _route(child, f"{where}.routes[{i}]", problem)
        if built is not None:
            route.routes.append(built)
    return route


def _receivers(value: Any, problem: Any) -> dict[str, Receiver]:
    if value is None:
        problem("receivers", "missing: define at least one [[receivers]] with a name")
        return {}
    if not isinstance(value, list):
        problem("receivers", f"must be an array of tables ([[receivers]]), got {value!r}")
        return {}
    out: dict[str, Receiver] = {}
    for i, item in enumerate(value):
        where = f"receivers[{i}]"
        if not isinstance(item, Mapping):
            problem(where, f"must be a table, got {item!r}")
            continue
        unknown = set(item) - _RECEIVER_KEYS
        if unknown:
            problem(
                where,
                f"unknown key(s) {sorted(unknown)}; allowed: {', '.join(sorted(_RECEIVER_KEYS))}",
            )
        name = item.get("name")
        if not isinstance(name, str) or not name:
            problem(f"{where}.name", f"must be a non-empty string, got {name!r}")
            continue
        if name in out:
            problem(f"{where}.name", f"receiver {name!r} is defined twice")
            continue
        out[name] = Receiver(name, _integrations(item, where, problem))
    return out


def _integrations(item: Mapping[str, Any], where: str, problem: Any) -> list[Any]:
    built: list[Any] = []
    for key in ("log_configs", "console_configs", "webhook_configs", "slack_configs"):
        configs = item.get(key, [])
        if not isinstance(configs, list):
            problem(f"{where}.{key}", f"must be a list of tables, got {configs!r}")
            continue
        for j, conf in enumerate(configs):
            at = f"{where}.{key}[{j}]"
            if not isinstance(conf, Mapping):
                problem(at, f"must be a table, got {conf!r}")
                continue
            integration = _integration(key, conf, at, problem)
            if integration is not None:
                built.append(integration)
    return built


_INTEGRATION_KEYS = {
    "log_configs": {"send_resolved"},
    "console_configs": {"send_resolved"},
    "webhook_configs": {"url", "send_resolved"},
    "slack_configs": {"api_url", "channel", "username", "send_resolved"},
}


def _integration(key: str, conf: Mapping[str, Any], at: str, problem: Any) -> Any:
    allowed = _INTEGRATION_KEYS[key]
    unknown = set(conf) - allowed
    if unknown:
        problem(at, f"unknown key(s) {sorted(unknown)}; allowed: {', '.join(sorted(allowed))}")
        return None
    send_resolved = conf.get("send_resolved")
    if send_resolved is not None and not isinstance(send_resolved, bool):
        problem(f"{at}.send_resolved", f"must be true or false, got {send_resolved!r}")
        return None
    try:
        if key == "log_configs":
            return LogIntegration(send_resolved=send_resolved is not False)
        if key == "console_configs":
            return ConsoleIntegration(send_resolved=send_resolved is not False)
        if key == "webhook_configs":
            return WebhookIntegration(str(conf.get("url", "")), send_resolved=send_resolved)
        return WebhookIntegration(
            str(conf.get("api_url", "")),
            format="slack",
            send_resolved=send_resolved,
            channel=conf.get("channel"),
            username=conf.get("username"),
        )
    except AlleleError as exc:
        problem(at, str(exc))
        return None


def _inhibit_rules(value: Any, problem: Any) -> list[InhibitRule]:
    if not isinstance(value, list):
        problem("inhibit_rules", f"must be an array of tables ([[inhibit_rules]]), got {value!r}")
        return []
    out = []
    for i, item in enumerate(value):
        where = f"inhibit_rules[{i}]"
        if not isinstance(item, Mapping):
            problem(where, f"must be a table, got {item!r}")
            continue
        unknown = set(item) - _INHIBIT_KEYS
        if unknown:
            problem(
                where,
                f"unknown key(s) {sorted(unknown)}; allowed: {', '.join(sorted(_INHIBIT_KEYS))}",
            )
        sources = _matchers(item.get("source_matchers"), f"{where}.source_matchers", problem)
        targets = _matchers(item.get("target_matchers"), f"{where}.target_matchers", problem)
        equal = item.get("equal", [])
        if not isinstance(equal, list) or not all(isinstance(e, str) for e in equal):
            problem(f"{where}.equal", f"must be a list of label names, got {equal!r}")
            equal = []
        if not targets and "target_matchers" in item:
            problem(
                f"{where}.target_matchers", "needs at least one matcher (it would mute every alert)"
            )
        out.append(InhibitRule(sources, targets, list(equal)))
    return out
