"""Persistence for observability: metric points, alerts and components in SQLite or PostgreSQL.

>>> from allele.observability.store import open_store
>>> store = open_store("sqlite://")            # in memory; default: $ALLELE_STORE_URI
>>> store.list_series()
[]

``open_store`` applies the Alembic migrations packaged in ``migrations/`` before returning, so a
new database file is ready to use. ``Flusher`` (in ``store.flusher``) moves points from a
collector into a store in the background.
"""

from __future__ import annotations

from allele.observability.store.database import DEFAULT_URI, ENV_VAR, resolve_uri
from allele.observability.store.faults import StoreFullError, StoreLockedError
from allele.observability.store.repository.alerts import StoredAlert
from allele.observability.store.repository.compaction import Compaction
from allele.observability.store.repository.components import ComponentSnapshot
from allele.observability.store.repository.series import Aggregate, SeriesPoints, SeriesStats
from allele.observability.store.repository.store import Store

__all__ = [
    "DEFAULT_URI",
    "ENV_VAR",
    "Aggregate",
    "Compaction",
    "ComponentSnapshot",
    "SeriesPoints",
    "SeriesStats",
    "Store",
    "StoreFullError",
    "StoreLockedError",
    "StoredAlert",
    "open_store",
]


def open_store(uri: str | None = None, *, busy_timeout_ms: int = 5000) -> Store:
    """A ready ``Store`` at ``uri`` (default ``$ALLELE_STORE_URI`` or ``sqlite:///allele.db``).

    Raises ``StoreError`` naming the URI when it is malformed, its backend is unsupported or the
    database cannot be reached; migrations run before the store is returned.
    """
    from allele.observability.store.database import create_store_engine, migrate, parse_uri

    resolved = resolve_uri(uri)
    url = parse_uri(resolved)
    engine = create_store_engine(url, busy_timeout_ms=busy_timeout_ms)
    try:
        migrate(engine, resolved)
    except BaseException:
        engine.dispose()
        raise
    return Store(engine, resolved)
