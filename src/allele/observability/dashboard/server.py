"""Running the dashboard: in the background of a monitored program, or on its own over a store.

>>> from allele.observability.dashboard import serve_dashboard
>>> server = serve_dashboard(port=0)        # doctest: +SKIP
>>> server.url                              # doctest: +SKIP
'http://127.0.0.1:43127/'
>>> server.stop()                           # doctest: +SKIP

The host and port default to ``ALLELE_DASHBOARD_HOST`` / ``_PORT``; changes through the API
(acknowledge, resolve) need ``ALLELE_DASHBOARD_TOKEN``, except on a server that listens on
loopback only, which allows them without one and says so when it starts.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import threading
import time
from typing import Any

from allele.errors import ValidationError, require
from allele.observability.dashboard.child import ChildDashboard
from allele.observability.dashboard.source import EngineSource, StoreSource

logger = logging.getLogger("allele.dashboard")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) resolves only to loopback addresses."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def startup_notice(host: str, port: int, token: str | None) -> str:
    """The line a server prints at start: where it listens and who may change things."""
    where = f"http://{host}:{port}/"
    if token:
        return f"dashboard at {where} (changes need the token in ALLELE_DASHBOARD_TOKEN)"
    if is_loopback(host):
        return (
            f"dashboard at {where} (loopback only: changes are allowed without a token; "
            "set ALLELE_DASHBOARD_TOKEN before listening elsewhere)"
        )
    return (
        f"dashboard at {where} (read-only: listening beyond loopback without "
        "ALLELE_DASHBOARD_TOKEN, so acknowledge and resolve are refused)"
    )


class DashboardServer:
    """A uvicorn server on a daemon thread; ``stop()`` ends it."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        require("uvicorn", "dashboard")
        import uvicorn

        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="on",
            # An idle keep-alive connection is closed after 5 s, and at most 200 connections
            # are served at once: a crowd of tabs cannot pile up sockets without bound.
            timeout_keep_alive=5,
            limit_concurrency=200,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, name="allele-dashboard", daemon=True
        )
        self.host = host

    def start(self, timeout: float = 10.0) -> DashboardServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ValidationError(f"the dashboard could not start on {self.host}")
            time.sleep(0.02)
        return self

    @property
    def port(self) -> int:
        servers = getattr(self._server, "servers", [])
        for server in servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return int(self._server.config.port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)


def settings_defaults(
    host: str | None, port: int | None, token: str | None
) -> tuple[str, int, str | None]:
    """Host, port and token: the arguments, else the ``ALLELE_DASHBOARD_*`` settings."""
    from allele.observability.config import get_settings

    settings = get_settings()
    secret = settings.dashboard_token
    chosen = host or settings.dashboard_host
    # "localhost" may resolve to ::1 first; the server binds the IPv4 loopback explicitly.
    chosen = "127.0.0.1" if chosen == "localhost" else chosen
    return (
        chosen,
        settings.dashboard_port if port is None else port,
        token if token is not None else (secret.get_secret_value() if secret else None),
    )


def mlflow_link() -> str | None:
    """The MLflow UI to link to: the tracking URI when MLflow is on and served over HTTP."""
    from allele.observability.config import get_settings

    settings = get_settings()
    uri = settings.mlflow_tracking_uri
    return uri if settings.mlflow_enabled and uri.startswith(("http://", "https://")) else None


def build_app(source: StoreSource, host: str, token: str | None, **options: Any) -> Any:
    from allele.observability.dashboard.app import create_app

    options.setdefault("mlflow_uri", mlflow_link())
    return create_app(
        source, token=token, allow_unauthenticated_changes=is_loopback(host), **options
    )


def serve_dashboard(
    engine: Any = None,
    *,
    host: str | None = None,
    port: int | None = None,
    token: str | None = None,
    isolated: bool | None = None,
) -> DashboardServer | ChildDashboard:
    """Serve the live dashboard of ``engine`` (default: the process-wide one) in the background.

    The server runs in a child process that reads the engine through one connection
    (``allele.observability.dashboard.child``), so that browsers, however many, never compete
    with the program for its GIL. ``isolated=False`` serves it on a thread of this process
    instead; that is also what an engine whose store lives in memory gets (a child process
    cannot open that store), with a warning.
    """
    if engine is None:
        from allele.observability.engine import get_observability_engine

        engine = get_observability_engine()
    host, port, token = settings_defaults(host, port, token)
    source = EngineSource(engine)
    store_uri = shareable_uri(source.store)
    if isolated is None:
        # The child gets its connection and watchdog as inherited descriptors: POSIX only.
        isolated = os.name == "posix" and (source.store is None or store_uri is not None)
        if not isolated:
            why = (
                "the engine's store is in memory, which another process cannot open"
                if os.name == "posix"
                else "a child process is only used on POSIX systems"
            )
            logger.warning(
                "%s: the dashboard is served on a thread of this process (its clients cost "
                "the program some of its speed)",
                why,
            )
    server: DashboardServer | ChildDashboard
    if isolated:
        server = ChildDashboard(source, host, port, token, store_uri, mlflow_link()).start()
    else:
        server = DashboardServer(build_app(source, host, token), host, port).start()
    logger.warning(startup_notice(host, server.port, token))
    return server


def shareable_uri(store: Any) -> str | None:
    """The URI another process can open ``store`` at, or None (no store, or one in memory)."""
    if store is None:
        return None
    from allele.observability.store.database import is_memory, parse_uri

    uri = str(store.uri)
    return None if is_memory(parse_uri(uri)) else uri
