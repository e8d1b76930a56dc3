"""Fixtures shared by the whole suite: services that tests need, and the CI rule for them.

A test that needs a service skips with a clear message when the service is absent, except under
CI (``CI=true``), where the service must be there and its absence fails the test.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get(
    "ALLELE_TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test"
)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def need_service(name: str, host: str, port: int) -> None:
    """Skip (or fail under CI) when ``name`` does not answer on ``host:port``."""
    if _port_open(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it")
    pytest.skip(f"{message}; start it to run this test")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL on a schema of its own, dropped after the test."""
    need_service("PostgreSQL", "127.0.0.1", 5432)
    sqlalchemy = pytest.importorskip("sqlalchemy")
    pytest.importorskip("psycopg")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


#: Headless Chromium as the browser tests launch it (no sandbox: CI runs as root).
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def _chromium() -> str | None:
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium, installed when missing under CI (we run as root there)."""
    import subprocess

    path = _chromium()
    if path is None and IN_CI:
        subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        path = _chromium()
    if path is None:
        pytest.skip("chromium is not installed (apt-get install chromium); CI=true installs it")
    pytest.importorskip("playwright.sync_api")
    return path


@pytest.fixture(scope="session")
def chromium_args() -> list[str]:
    """The command-line flags of a headless Chromium launch (``CHROMIUM_ARGS``)."""
    return list(CHROMIUM_ARGS)
