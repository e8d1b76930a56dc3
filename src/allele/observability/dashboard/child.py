"""A monitored program's dashboard, served from a child process.

Serving the dashboard inside the program it watches would slow that program: each socket write
lets go of the GIL, the workload thread takes it, and the server thread then waits to get it
back. With 100 event-stream clients at one update a second that is ~100 hand-overs a second,
~1.5% of the workload's time (see "The GIL" in docs/architecture.md). So
``serve_dashboard(engine)`` runs the server (uvicorn, the event stream, JSON encoding, the
analytics views) in a child Python process, and the child reads the live engine through one
connection: each call of the source (``live_reads``, ``points``, ``acknowledge``...) is a
request that a thread of the program answers from ``EngineSource``. The event stream makes one
request a second (``live_reads``) however many browsers are watching. Benchmark suites,
silences and alert clusters are read by the child from the store itself, opened at the
engine's store URI.

The child ends with its parent: its main thread blocks on a watchdog pipe whose write end only
the parent holds, and it exits once that closes (the parent stopped the dashboard, exited or
was killed). It ignores Ctrl-C, which the terminal sends to the whole process group: the parent
decides when the dashboard stops.

``python -m allele.observability.dashboard.child CONN_FD WATCHDOG_FD`` is the child's entry
point; the parent sends its settings over the connection, never on the command line (the token
would show in ``ps``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from allele.errors import ValidationError, require
from allele.observability.dashboard.source import SeriesRef, StoreSource

#: The source methods the child may call in the parent (nothing else is answered).
CALLS = frozenset(
    {"series", "points", "components", "system", "alerts", "active_alerts", "acknowledge",
     "resolve", "live_reads"}
)  # fmt: skip


#: The watchdog write ends this process holds. A process forked from it (a multiprocessing
#: pool, say) closes its copies at once, or it would keep the dashboard alive after we die.
_WATCHDOGS: set[int] = set()


def _forget_watchdogs() -> None:
    for fd in _WATCHDOGS:
        with contextlib.suppress(OSError):
            os.close(fd)
    _WATCHDOGS.clear()


if hasattr(os, "register_at_fork"):  # POSIX; elsewhere there is no fork to guard against
    os.register_at_fork(after_in_child=_forget_watchdogs)


class SourceAnswerer:
    """The parent's side: answers the child's calls on ``source`` on a daemon thread."""

    def __init__(self, source: StoreSource, conn: Connection) -> None:
        self.source = source
        self.conn = conn
        self.answered = 0
        self._thread = threading.Thread(
            target=self._serve, name="allele-dashboard-source", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _serve(self) -> None:
        try:
            self._answer()
        finally:
            self.conn.close()

    def _answer(self) -> None:
        while True:
            try:
                name, args = self.conn.recv()
            except (EOFError, OSError):
                return  # the child has gone
            try:
                if name not in CALLS:
                    raise ValidationError(f"the dashboard asked for {name!r}, not a source call")
                reply: tuple[str, Any] = ("ok", getattr(self.source, name)(*args))
            except Exception as exc:  # the child raises it; the program is never disturbed
                reply = ("error", exc)
            self.answered += 1
            try:
                self.conn.send(reply)
            except (EOFError, OSError):
                return
            except Exception as exc:  # an answer that does not pickle
                self.conn.send(("error", RuntimeError(f"{name}: {type(exc).__name__}: {exc}")))


class RemoteSource(StoreSource):
    """The child's side: the parent's ``EngineSource``, one request per call."""

    live = True

    def __init__(self, conn: Connection, store: Any) -> None:
        super().__init__(store)
        self._conn = conn
        self._lock = threading.Lock()  # one request at a time: the replies come in order

    def _call(self, name: str, *args: Any) -> Any:
        with self._lock:
            self._conn.send((name, args))
            status, value = self._conn.recv()
        if status == "error":
            raise value
        return value

    def series(self) -> list[SeriesRef]:
        result: list[SeriesRef] = self._call("series")
        return result

    def points(
        self, name: str, labels: Mapping[str, str], start: float | None, end: float | None
    ) -> tuple[np.ndarray, np.ndarray]:
        ts, values = self._call("points", name, dict(labels), start, end)
        return ts, values

    def components(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("components")
        return result

    def system(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("system")
        return result

    def alerts(self, state: str | None = None) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("alerts", state)
        return result

    def active_alerts(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("active_alerts")
        return result

    def live_reads(
        self, series: Sequence[tuple[str, Mapping[str, str], float | None]]
    ) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[dict[str, Any]], list[dict[str, Any]]]:
        asked = [(name, dict(labels), since) for name, labels, since in series]
        result: tuple[Any, Any, Any] = self._call("live_reads", asked)
        return result

    def acknowledge(self, alert_id: str, by: str, comment: str | None) -> dict[str, Any]:
        result: dict[str, Any] = self._call("acknowledge", alert_id, by, comment)
        return result

    def resolve(self, alert_id: str, by: str, comment: str | None) -> dict[str, Any]:
        result: dict[str, Any] = self._call("resolve", alert_id, by, comment)
        return result

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


class ChildDashboard:
    """The dashboard of ``source`` served by a child process; ``stop()`` ends it.

    Same surface as ``DashboardServer``: ``start()``, ``url``, ``port``, ``host``, ``stop()``.
    """

    def __init__(
        self,
        source: StoreSource,
        host: str,
        port: int,
        token: str | None,
        store_uri: str | None,
        mlflow_uri: str | None = None,
    ) -> None:
        require("uvicorn", "dashboard")  # said here, not as a child's failure
        self.source = source
        self.host = host
        self.port = port
        self._settings = {
            "host": host,
            "port": port,
            "token": token,
            "store_uri": store_uri,
            "mlflow_uri": mlflow_uri,
        }
        self._process: subprocess.Popen[bytes] | None = None
        self._watchdog: int | None = None
        self._answerer: SourceAnswerer | None = None

    def start(self, timeout: float = 60.0) -> ChildDashboard:
        ours, theirs = socket.socketpair()
        watch_read, watch_write = os.pipe()
        try:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "allele.observability.dashboard.child",
                    str(theirs.fileno()),
                    str(watch_read),
                ],
                pass_fds=(theirs.fileno(), watch_read),
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
            os.close(watch_read)
        self._watchdog = watch_write
        _WATCHDOGS.add(watch_write)
        conn = Connection(ours.detach())
        try:
            conn.send(self._settings)
            if not conn.poll(timeout):
                raise ValidationError(
                    f"the dashboard's process did not start on {self.host} within {timeout:g} s"
                )
            status, value = conn.recv()
        except (EOFError, OSError):
            self.stop()
            raise ValidationError(
                f"the dashboard's process ended before serving on {self.host} "
                "(its error is printed above)"
            ) from None
        except BaseException:
            self.stop()
            raise
        if status != "ready":
            self.stop()
            raise ValidationError(f"the dashboard could not start on {self.host}: {value}")
        self.port = int(value)
        self._answerer = SourceAnswerer(self.source, conn)
        self._answerer.start()
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def stop(self, timeout: float = 5.0) -> None:
        if self._watchdog is not None:
            _WATCHDOGS.discard(self._watchdog)
            os.close(self._watchdog)  # the child stops its server and exits
            self._watchdog = None
        if self._process is not None:
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._answerer is not None:
            self._answerer.join(timeout)


def _child(conn_fd: int, watchdog_fd: int) -> None:
    # Ctrl-C reaches every process of the terminal's group; the parent decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(conn_fd)
    settings: dict[str, Any] = conn.recv()
    from allele.observability.dashboard.server import DashboardServer, build_app

    store = None
    try:
        if settings["store_uri"]:
            from allele.observability.store import open_store

            store = open_store(settings["store_uri"])
        source = RemoteSource(conn, store)
        host, token = settings["host"], settings["token"]
        app = build_app(source, host, token, mlflow_uri=settings["mlflow_uri"])
        server = DashboardServer(app, settings["host"], settings["port"]).start()
    except Exception as exc:
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", server.port))
    try:
        while os.read(watchdog_fd, 1):
            pass
    except OSError:
        pass
    server.stop()
    if store is not None:
        store.close()


if __name__ == "__main__":
    _child(int(sys.argv[1]), int(sys.argv[2]))
