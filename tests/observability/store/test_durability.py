"""What survives the end of a monitored process: signals and exit flush all, a crash one interval.

Each test runs ``recording_program.py`` in a subprocess against a real SQLite file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from allele.observability.store import open_store

PROGRAM = Path(__file__).with_name("recording_program.py")


def _start(uri: str, mode: str, interval_s: float) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, str(PROGRAM), uri, mode, str(interval_s)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.strip() == "READY", process.stderr.read() if process.stderr else line
    return process


@pytest.fixture
def uri(tmp_path) -> str:
    uri = f"sqlite:///{tmp_path / 'durable.db'}"
    open_store(uri).close()  # migrate once before the child opens it
    return uri


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_flush_every_recorded_point(uri, signum):
    # The interval is an hour, so only the signal handler can have written the points.
    process = _start(uri, "fixed", 3600.0)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == -signum, stderr
    values = open_store(uri).query_series("progress").values
    np.testing.assert_array_equal(values, np.arange(5000))


def test_normal_exit_flushes_through_atexit(uri):
    done = subprocess.run(
        [sys.executable, str(PROGRAM), uri, "exit", "3600"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(open_store(uri).query_series("progress").values, np.arange(5000))


def test_sigkill_loses_at_most_the_last_interval(uri):
    interval = 0.25
    process = _start(uri, "continuous", interval)
    store = open_store(uri)
    deadline = time.monotonic() + 60
    while len(store.query_series("progress")) < 500 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(3 * interval)
    killed_at = time.time()
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL

    stored = store.query_series("progress")
    # Nothing in the middle went missing: the stored values are exactly 0..n-1 ...
    np.testing.assert_array_equal(stored.values, np.arange(len(stored)))
    # ... and the lost tail is no older than one interval; the slack covers the duration of a
    # write in progress and scheduling on a loaded 2-core machine.
    slack = 1.0
    assert stored.timestamps[-1] >= killed_at - interval - slack
