"""Alembic environment for the observability store: migrations run on the caller's connection.

``open_store`` passes its live connection in ``config.attributes["connection"]`` so that the
migration sees the same database (including an in-memory SQLite one) and, on PostgreSQL, the
same ``search_path`` -- the version table lands in the schema the store works in. Every file in
``versions/`` is a revision; Alembic orders them by their ``down_revision`` chain.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool
from sqlalchemy.engine import Connection

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=None,
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Apply migrations on the given connection, or on a fresh engine from ``sqlalchemy.url``."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as conn:
        _run(conn)


if context.is_offline_mode():
    raise RuntimeError("the observability store applies migrations online only")
run_migrations_online()
