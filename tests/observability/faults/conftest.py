"""The fault suite's shared parts: the figures table, the program runner, the TCP proxy.

Every fault test states what it may lose and records ``(fault, recorded, stored, allowed
loss)`` with the ``figures`` fixture; the table is printed at the end of the run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PROGRAM = Path(__file__).with_name("fault_program.py")
_FIGURES: list[tuple[str, int, int, str]] = []


@pytest.fixture
def figures():
    """``figures(fault, recorded, stored, allowed)`` adds a row to the end-of-run table."""

    def add(fault: str, recorded: int, stored: int, allowed: str) -> None:
        _FIGURES.append((fault, int(recorded), int(stored), allowed))

    return add


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _FIGURES:
        return
    write = terminalreporter.write_line
    terminalreporter.section("fault suite: points recorded and stored")
    write(f"{'fault':<44} {'recorded':>9} {'stored':>9} {'lost':>6}  may lose")
    for fault, recorded, stored, allowed in _FIGURES:
        write(f"{fault:<44} {recorded:>9} {stored:>9} {recorded - stored:>6}  {allowed}")


@dataclass
class Program:
    process: subprocess.Popen[str]
    counter_file: Path

    def recorded(self) -> int:
        import numpy as np

        return int(np.fromfile(self.counter_file, dtype=np.int64)[0])


def start_program(
    uri: str, path: str, mode: str, flush_s: float, tmp_path: Path, instance: str = ""
) -> Program:
    """Run ``fault_program.py`` and wait for its READY line; ``instance`` labels its series."""
    counter = tmp_path / f"recorded-{path}-{mode}-{instance}.bin"
    counter.write_bytes(b"\0" * 8)
    env = {**os.environ, "ALLELE_INSTANCE": f"fault-{path}", "FAULT_INSTANCE": instance}
    process = subprocess.Popen(
        [sys.executable, str(PROGRAM), uri, path, mode, str(flush_s), str(counter)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if line.strip() != "READY":
        process.kill()
        _, err = process.communicate(timeout=30)
        raise AssertionError(f"the program did not start: {line!r} {err}")
    return Program(process, counter)


def end(program: Program, signum: int, timeout: float = 60) -> str:
    program.process.send_signal(signum)
    _, stderr = program.process.communicate(timeout=timeout)
    return stderr


class TcpProxy:
    """A TCP proxy on 127.0.0.1 (free port) to ``target``; ``stop()`` refuses and resets every
    connection, as a database restart does; ``start()`` accepts again on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown first: a close alone leaves the socket listening while the accept
            # thread is blocked on it.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                # RST, not FIN (what a crashed server's peer sees); shutdown first, since a
                # close alone does not wake the pipe thread blocked in recv on it.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            with contextlib.suppress(OSError):
                conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.close()


@pytest.fixture
def pg_proxy(postgres_url) -> Iterator[tuple[TcpProxy, str]]:
    """A proxy in front of the test PostgreSQL, and the test schema's URL through it."""
    proxy = TcpProxy(("127.0.0.1", 5432)).start()
    yield proxy, postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    proxy.stop()


SIGNALS = {"SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}
