"""Engines for the store: URI checks, SQLite pragmas, and Alembic migrations applied on open."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from allele.errors import StoreError
from allele.observability.store.faults import mask_secrets, safe_url, store_error

ENV_VAR = "ALLELE_STORE_URI"
DEFAULT_URI = "sqlite:///allele.db"
SUPPORTED_BACKENDS = ("sqlite", "postgresql")
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any fixed number works: it only has to be the same in every process migrating one database.
_PG_MIGRATION_LOCK = 0x616C6C656C65


def resolve_uri(uri: str | None) -> str:
    """The URI to open: ``uri``, else ``$ALLELE_STORE_URI``, else ``sqlite:///allele.db``."""
    if uri is not None:
        return uri
    return os.environ.get(ENV_VAR) or DEFAULT_URI


def parse_uri(uri: str) -> URL:
    """The SQLAlchemy URL of ``uri``, or a StoreError naming it and what is accepted."""
    if not isinstance(uri, str) or not uri.strip():
        raise StoreError(f"store URI {uri!r} is empty; expected e.g. sqlite:///allele.db")
    try:
        url = make_url(uri)
        # The port is parsed lazily: a bad one must fail here, not at the first connect.
        if url.port is not None and not 1 <= url.port <= 65535:
            raise ValueError(f"port {url.port} is not in 1..65535")
    except (ArgumentError, ValueError) as exc:
        # The error names the URI masked: a URI that does not parse may still hold a password.
        raise StoreError(
            f"invalid store URI {safe_url(uri)!r} ({mask_secrets(str(exc))}): expected a "
            "SQLAlchemy URL such as sqlite:///allele.db or postgresql+psycopg://user@host:5432/db "
            "(port an integer in 1..65535)"
        ) from None
    backend = url.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise StoreError(
            f"store URI {safe_url(url)!r} uses backend {backend!r}; supported backends are "
            f"{', '.join(SUPPORTED_BACKENDS)}"
        )
    return url


def is_memory(url: URL) -> bool:
    """Whether ``url`` is an in-memory SQLite database (one process sees it, no other)."""
    return url.database in (None, "", ":memory:") or "mode=memory" in str(url)


def create_store_engine(url: URL, busy_timeout_ms: int = 5000) -> Engine:
    """An engine for ``url``; SQLite connections get WAL, synchronous=NORMAL and busy_timeout."""
    kwargs: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False}
        if is_memory(url):
            # Every connection to ":memory:" is a new empty database: share one connection.
            kwargs["poolclass"] = StaticPool
    else:
        kwargs["pool_pre_ping"] = True
        # Short: an unreachable server is retried by the flusher in the background, and a
        # shutdown must not wait for a connection attempt.
        kwargs["connect_args"] = {"connect_timeout": 3}
    try:
        engine = create_engine(url, **kwargs)
    except (NoSuchModuleError, ImportError, ArgumentError) as exc:
        raise StoreError(
            f"cannot create an engine for the store {safe_url(url)!r}: {exc}; for PostgreSQL "
            "install the driver with: pip install 'allele[postgres]'"
        ) from exc
    if url.get_backend_name() == "sqlite":
        _install_sqlite_pragmas(engine, busy_timeout_ms)
    return engine


#: Page size of a new SQLite store, in bytes (an existing database keeps its own).
SQLITE_PAGE_SIZE = 16384


def _install_sqlite_pragmas(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            # Takes effect only while the database is still empty (a new store). Chunks are
            # blobs of up to tens of kB: 16 kB pages quarter the overflow pages, WAL frames
            # and checkpoint writes per flush, and with them the writer's CPU.
            cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
            # WAL lets readers (dashboards, exports) run while the flusher writes; NORMAL
            # syncs at checkpoints only, which is still safe against application crashes.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        finally:
            cursor.close()


def migrate(engine: Engine, uri: str) -> None:
    """Bring the database at ``engine`` to the newest revision in ``migrations/versions``."""
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    heads = set(ScriptDirectory.from_config(config).get_heads())
    try:
        # A store already at the newest revision (every start but the first) is only read:
        # no migration lock, so opening a store that another process is writing (or holds
        # locked) does not wait for it.
        if _revisions(engine) == heads:
            return
        # Alembic's ``context`` is a module-level proxy: one migration per process at a time.
        with _MIGRATING, engine.connect() as conn:
            restore = _lock_for_migration(conn)
            try:
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
                conn.commit()
            finally:
                if restore is not None:
                    conn.exec_driver_sql(restore)
    except SQLAlchemyError as exc:
        raise store_error(exc, "applying migrations", uri) from exc


_MIGRATING = threading.Lock()


def _revisions(engine: Engine) -> set[str]:
    """The revisions the database is at (empty for a new database)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return set()
        rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        return {str(row[0]) for row in rows}


#: How long a SQLite open waits for another process's migration (a cold start on a busy machine
#: can take seconds), whatever shorter busy timeout the store's writes use.
_MIGRATION_WAIT_MS = 60_000


def _lock_for_migration(conn: Connection) -> str | None:
    """Take the migration lock; returns the SQL that restores the connection afterwards."""
    # Two processes opening a fresh database at once must not both create the tables.
    if conn.dialect.name == "sqlite":
        busy = int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one())
        restore = f"PRAGMA busy_timeout={busy}"
        conn.exec_driver_sql(f"PRAGMA busy_timeout={max(busy, _MIGRATION_WAIT_MS)}")
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            conn.exec_driver_sql(restore)  # the pooled connection keeps the store's timeout
            raise
        return restore
    elif conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    return None
