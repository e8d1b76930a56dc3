"""Store failures, sorted by what the caller should do about them.

Transient failures are worth retrying: a locked database (another writer will let go), a
database that cannot be reached (a restart, a network outage) and a full disk (space is freed).
The flusher keeps the points of a transient failure pending and retries with backoff. Any other
failure (a value or a label the database refuses, a broken schema) is permanent for the data
that caused it: the flusher sets that batch aside and carries on with the others. All are
``StoreError`` so callers that do not care may catch one type.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from allele.errors import StoreError
from allele.observability.redact import mask_secrets


class TransientStoreError(StoreError):
    """The write failed for a reason that passes (lock, outage, full disk): retry later."""


class StoreLockedError(TransientStoreError):
    """The database is locked by another connection; retrying later may succeed."""


class StoreFullError(TransientStoreError):
    """The database or its disk is full; retrying once space is freed succeeds."""


class StoreUnavailableError(TransientStoreError):
    """The database cannot be reached (refused, reset, restarting); retrying may succeed."""


_LOCKED = ("database is locked", "database table is locked", "lock timeout", "deadlock detected")
_FULL = (
    "database or disk is full",
    "no space left",
    "disk full",
    "could not extend file",
    "disk i/o error",
)
_UNAVAILABLE = (
    "connection refused",
    "connection reset",
    "could not connect",
    "server closed the connection",
    "terminating connection",
    "the connection is closed",
    "connection is lost",
    "consuming input failed",
    "connection timeout expired",
    "timeout expired",
    "the database system is starting up",
    "the database system is shutting down",
    "broken pipe",
    "unable to open database file",
    "ssl connection has been closed",
    "connection to server",
)


def safe_url(uri: str | URL) -> str:
    """The URI with any password hidden, for error messages, logs and status.

    A URI that SQLAlchemy cannot parse (a bad port, say) is masked by pattern instead of being
    returned as it is.
    """
    try:
        url = uri if isinstance(uri, URL) else make_url(uri)
        return url.render_as_string(hide_password=True)
    except (ArgumentError, ValueError, TypeError):
        return mask_secrets(str(uri))


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (a driver, SQLAlchemy or OS error) is worth retrying later."""
    if isinstance(exc, TransientStoreError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return _classify(_message(exc)) is not None


def _message(exc: BaseException) -> str:
    return str(exc.orig) if isinstance(exc, DBAPIError) and exc.orig is not None else str(exc)


def _classify(text: str) -> type[TransientStoreError] | None:
    lowered = text.lower()
    if any(marker in lowered for marker in _LOCKED):
        return StoreLockedError
    if any(marker in lowered for marker in _FULL):
        return StoreFullError
    if any(marker in lowered for marker in _UNAVAILABLE):
        return StoreUnavailableError
    return None


def store_error(exc: BaseException, action: str, uri: str | URL) -> StoreError:
    """The ``StoreError`` subclass that says what went wrong while doing ``action``."""
    message = mask_secrets(_message(exc))
    where = safe_url(uri)
    kind = _classify(message)
    if kind is None and isinstance(exc, DBAPIError) and exc.connection_invalidated:
        kind = StoreUnavailableError
    if kind is StoreLockedError:
        return StoreLockedError(f"{action} failed: the store {where} is locked ({message})")
    if kind is StoreFullError:
        return StoreFullError(f"{action} failed: the store {where} is full ({message})")
    if kind is StoreUnavailableError:
        return StoreUnavailableError(
            f"{action} failed: the store {where} cannot be reached ({message})"
        )
    if isinstance(exc, SQLAlchemyError | OSError):
        return StoreError(f"{action} failed on the store {where}: {message}")
    return StoreError(f"{action} failed on the store {where}: {mask_secrets(repr(exc))}")
