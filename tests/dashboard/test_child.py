"""The monitored program's dashboard runs in a child process that ends with the program."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from allele.errors import ValidationError
from allele.observability.dashboard.child import CALLS, SourceAnswerer

from .conftest import LiveDashboard

pytest.importorskip("uvicorn")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose: it serves nothing.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_dead(pid: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_the_live_dashboard_is_served_by_another_process(live_dashboard: LiveDashboard) -> None:
    # The conftest's server: the engine's store is a file, so the server is a child process.
    status = httpx.get(live_dashboard.url + "api/v1/status", timeout=30)
    assert status.status_code == 200
    assert status.json()["live"] is True
    child = [
        p
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and _is_dashboard_child(p, os.getpid())
    ]
    assert len(child) == 1, "exactly one dashboard child process of this test process"


def _is_dashboard_child(proc: Path, parent: int) -> bool:
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    ppid = int(stat.split(")")[-1].split()[1])
    return ppid == parent and b"allele.observability.dashboard.child" in cmdline


_PROGRAM = textwrap.dedent(
    """
    import sys, time
    from allele.observability.config import ObservabilitySettings
    from allele.observability.dashboard import serve_dashboard
    from allele.observability.engine import ObservabilityEngine

    engine = ObservabilityEngine(
        ObservabilitySettings(store_uri=sys.argv[1], collection_interval=1.0), notifiers=[]
    )
    engine.start()
    server = serve_dashboard(engine, host="127.0.0.1", port=0)
    print(server.pid, server.url, flush=True)
    time.sleep(600)
    """
)


def test_the_child_ends_when_the_program_is_killed(tmp_path: Path) -> None:
    program = subprocess.Popen(
        [sys.executable, "-c", _PROGRAM, f"sqlite:///{tmp_path / 'store.db'}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert program.stdout is not None
        pid_text, url = program.stdout.readline().split()
        child = int(pid_text)
        assert child != program.pid
        assert httpx.get(url + "api/v1/status", timeout=30).status_code == 200
        program.send_signal(signal.SIGKILL)  # no clean-up of any kind in the program
        program.wait(10)
        assert _wait_dead(child), "the dashboard's process outlived the killed program"
    finally:
        program.kill()
        program.wait()


def test_stop_ends_the_child_and_its_port(tmp_path: Path) -> None:
    from allele.observability.config import ObservabilitySettings
    from allele.observability.dashboard import serve_dashboard
    from allele.observability.engine import ObservabilityEngine

    settings = ObservabilitySettings(store_uri=f"sqlite:///{tmp_path / 's.db'}")
    engine = ObservabilityEngine(settings, notifiers=[])
    engine.start()
    try:
        server = serve_dashboard(engine, host="127.0.0.1", port=0)
        pid = server.pid
        assert pid is not None and pid != os.getpid()
        # A change goes to this engine: loopback only, so no token is needed.
        assert httpx.get(server.url + "api/v1/alerts", timeout=30).json() == []
        server.stop()
        assert _wait_dead(pid, 10)
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.url + "api/v1/status", timeout=2)
    finally:
        engine.stop()


def test_an_engine_with_a_memory_store_is_served_on_a_thread(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from allele.observability.config import ObservabilitySettings
    from allele.observability.dashboard import serve_dashboard
    from allele.observability.dashboard.server import DashboardServer
    from allele.observability.engine import ObservabilityEngine

    engine = ObservabilityEngine(ObservabilitySettings(store_uri="sqlite://"), notifiers=[])
    engine.start()
    try:
        with caplog.at_level(logging.WARNING, logger="allele.dashboard"):
            server = serve_dashboard(engine, host="127.0.0.1", port=0)
        try:
            assert isinstance(server, DashboardServer)
            assert "in memory" in caplog.text
            assert httpx.get(server.url + "api/v1/status", timeout=30).status_code == 200
        finally:
            server.stop()
    finally:
        engine.stop()


class _FakeConn:
    """A test double of the connection: the calls it is given, the replies it sent."""

    def __init__(self, calls: list[tuple[str, tuple[object, ...]]]) -> None:
        self.calls = list(calls)
        self.sent: list[tuple[str, object]] = []

    def close(self) -> None:
        self.closed = True

    def recv(self) -> tuple[str, tuple[object, ...]]:
        if not self.calls:
            raise EOFError
        return self.calls.pop(0)

    def send(self, reply: tuple[str, object]) -> None:
        self.sent.append(reply)


class _Source:
    live = True

    def components(self) -> list[dict[str, str]]:
        return [{"component_id": "a"}]

    def alerts(self, state: str | None = None) -> list[dict[str, str]]:
        raise ValidationError(f"state={state!r} is not an alert state")


def test_the_answerer_serves_only_source_calls_and_returns_errors() -> None:
    conn = _FakeConn([("components", ()), ("alerts", ("nope",)), ("__init__", ()), ("close", ())])
    answerer = SourceAnswerer(_Source(), conn)  # type: ignore[arg-type]
    answerer.start()
    answerer.join(5)
    assert conn.sent[0] == ("ok", [{"component_id": "a"}])
    status, error = conn.sent[1]
    assert status == "error" and isinstance(error, ValidationError) and "nope" in str(error)
    for status, error in conn.sent[2:]:
        assert status == "error" and "not a source call" in str(error)
    assert "close" not in CALLS and answerer.answered == 4
