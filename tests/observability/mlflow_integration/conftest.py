"""A real ``mlflow server`` for the MLflow tests: 127.0.0.1, a free port, SQLite, one worker.

One server for the whole session (it takes several seconds to start); ``restart()`` stops and
starts it again on the same port and database, for the tests that need an outage.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("mlflow", reason="needs the mlflow extra (pip install -e '.[dev]')")

STARTUP_TIMEOUT_S = 180.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class MlflowServer:
    """A running ``mlflow server`` process and where it keeps its data."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        mlflow = Path(sys.executable).parent / "mlflow"
        command = [
            str(mlflow if mlflow.exists() else shutil.which("mlflow") or "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{self.folder / 'mlflow.db'}",
            "--artifacts-destination",
            str(self.folder / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]
        log = open(self.folder / "server.log", "ab")  # noqa: SIM115 - the server's own log
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {self.log_tail()}")
            try:
                if httpx.get(f"{self.uri}/health", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(
            f"mlflow server did not start in {STARTUP_TIMEOUT_S} s: {self.log_tail()}"
        )

    def stop(self) -> None:
        if self.process is None:
            return
        # The server runs uvicorn (and job runners) in its own session: stop the whole group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self) -> str:
        path = self.folder / "server.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """The session's MLflow tracking server (with proxied artifacts)."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


def make_run(
    name: str = "grid",
    cells: int = 6,
    samples: int = 12,
    scale: float = 1.0,
    seed: int = 0,
    suite_id: str | None = None,
) -> Any:
    """A finished SuiteRun of ``cells`` cells with log-normal timings (test data, not measured)."""
    import uuid
    from datetime import UTC, datetime, timedelta

    import numpy as np

    from allele.observability.benchmarking.model import CellResult, SuiteRun

    rng = np.random.default_rng(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for i in range(cells):
        times = (rng.lognormal(-6.0, 0.05, samples) * scale * (1 + i / 10)).tolist()
        out.append(
            CellResult(
                params={"size": 10 * (i + 1), "kernel": "sort"},
                samples={"time_s": times, "peak_rss_bytes": [1e7 + i, 1.1e7 + i]},
                metrics={
                    "ops_per_s": float(1 / np.median(times)),
                    "peak_rss_bytes": 1.1e7 + i,
                    "best_fitness": 0.5 + i / 100,
                },
                inner_loops=4,
                processes=2,
                run_indices=[0, 1],
                node="test-node",
                started_at=start + timedelta(seconds=i),
                finished_at=start + timedelta(seconds=i + 1),
            )
        )
    return SuiteRun(
        name=name,
        component="python",
        suite_id=suite_id or uuid.uuid4().hex,
        config={
            "name": name,
            "runs": 2,
            "samples": samples,
            "params": {"kernel": "sort"},
            "matrix": {"size": [10 * (i + 1) for i in range(cells)]},
        },
        machine={"node": "test-machine"},
        commit={"id": "0123456789abcdef", "dirty": False},
        cells=out,
        created_at=datetime.now(UTC),
    )


@pytest.fixture
def config(mlflow_server: MlflowServer, spool_dir: Path) -> Any:
    """MLflow settings pointing at the session's server, with a fresh spool and prefix."""
    import uuid

    from allele.observability.mlflow_integration.config import mlflow_config

    return mlflow_config(
        tracking_uri=mlflow_server.uri,
        spool_dir=str(spool_dir),
        experiment_prefix=f"t{uuid.uuid4().hex[:8]}_",
    )


@pytest.fixture
def suite_run() -> Any:
    """``make_run``: builds SuiteRun test data."""
    return make_run


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Each test reads the ALLELE_* settings of its own environment."""
    from allele.observability import config as settings

    settings.reset_settings()
    yield
    settings.reset_settings()
