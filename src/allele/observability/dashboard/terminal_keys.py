"""The terminal dashboard's keys: a thread reading them in cbreak mode, and ``handle_key``,
which switches views, selects and acknowledges alerts through the source."""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from allele.errors import ValidationError
from allele.observability.dashboard.source import StoreSource
from allele.observability.dashboard.terminal_snapshot import VIEWS, Snapshot
from allele.observability.dashboard.terminal_views import State


def find_alert(alerts: Sequence[dict[str, Any]], name: str) -> dict[str, Any]:
    """The active alert ``name`` designates: its id, an id prefix or its rule name (one only)."""
    name = name.strip()
    active = [a for a in alerts if a.get("state") != "resolved"]
    exact = [a for a in active if a.get("alert_id") == name]
    matches = exact or [
        a
        for a in active
        if a.get("rule_name") == name or str(a.get("alert_id", "")).startswith(name)
    ]
    if not name or not matches:
        known = ", ".join(sorted({str(a.get("rule_name")) for a in active})) or "none"
        raise ValidationError(f"no active alert named {name!r}; active rules: {known}")
    if len(matches) > 1:
        ids = ", ".join(str(a.get("alert_id", ""))[:8] for a in matches)
        raise ValidationError(f"{name!r} names {len(matches)} active alerts ({ids}): type an id")
    return matches[0]


def handle_key(key: str, state: State, snap: Snapshot, source: StoreSource, by: str) -> bool:
    """Act on one key; returns whether the data must be read again (after an acknowledgement
    or ``r``). Errors (an unknown alert name, a store that refuses) become the footer message."""
    if state.typing is not None:
        if key in ("\r", "\n"):
            name, state.typing = state.typing, None
            rows = snap.active_alerts + [a for a in snap.alerts if a.get("state") == "resolved"]
            try:
                if name.strip():
                    alert = find_alert(snap.alerts, name)
                elif rows and 0 <= state.selected < len(rows):
                    alert = find_alert(snap.alerts, str(rows[state.selected].get("alert_id")))
                else:
                    raise ValidationError("no alert selected: type its rule name or id")
                source.acknowledge(str(alert["alert_id"]), by, "acknowledged in allele monitor")
            except Exception as exc:  # the store's refusal is shown, the dashboard goes on
                state.message = f"not acknowledged: {exc}"
                return False
            state.message = (
                f"acknowledged {alert.get('rule_name')} ({str(alert['alert_id'])[:8]}) as {by}"
            )
            return True
        if key == "\x1b":
            state.typing, state.message = None, "acknowledgement cancelled"
        elif key in ("\x7f", "\b"):
            state.typing = state.typing[:-1]
        elif key.isprintable():
            state.typing += key
        return False
    state.message = ""
    if key in ("1", "2", "3", "4", "5"):
        state.view = VIEWS[int(key) - 1]
    elif key in ("\t", "l", "\x1b[C"):
        state.view = VIEWS[(VIEWS.index(state.view) + 1) % len(VIEWS)]
    elif key in ("\x1b[Z", "h", "\x1b[D"):
        state.view = VIEWS[(VIEWS.index(state.view) - 1) % len(VIEWS)]
    elif key in ("j", "\x1b[B"):
        state.view = "alerts"
        state.selected = min(state.selected + 1, max(len(snap.alerts) - 1, 0))
    elif key in ("k", "\x1b[A"):
        state.view = "alerts"
        state.selected = max(state.selected - 1, 0)
    elif key == "a":
        state.typing = ""
    elif key == "r":
        return True
    elif key in ("q", "\x03"):
        state.quit = True
    return False


def split_keys(data: str) -> list[str]:
    """Keys in what the terminal sent: arrows and shift-Tab are one key of several chars."""
    keys, i = [], 0
    while i < len(data):
        if data[i] == "\x1b" and data[i + 1 : i + 2] == "[" and i + 2 < len(data):
            keys.append(data[i : i + 3])
            i += 3
        else:
            keys.append(data[i])
            i += 1
    return keys


@contextlib.contextmanager
def key_reader(keys: queue.Queue[str]) -> Iterator[None]:
    """Keys typed on stdin into ``keys``, read by a daemon thread in cbreak mode; the terminal
    is given back as it was on exit."""
    import select
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                data = os.read(fd, 64).decode(errors="replace")
                if not data:  # stdin closed
                    return
                for key in split_keys(data):
                    keys.put(key)

    tty.setcbreak(fd)
    thread = threading.Thread(target=read, name="allele-monitor-keys", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(1.0)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _has_termios() -> bool:
    """Whether keys can be read one by one here (POSIX terminals; not Windows)."""
    try:
        import termios  # noqa: F401
    except ImportError:
        return False
    return True
