"""Store failures, sorted by what the caller should do about them.

A locked database is worth retrying (another writer will let go); a full database or a broken
schema is not, and the flusher drops the batch and logs why. Both are ``StoreError`` so callers
that do not care may catch one type.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from allele.errors import StoreError


class StoreLockedError(StoreError):
    """The database is locked by another connection; retrying later may succeed."""


class StoreFullError(StoreError):
    """The database refused the write for lack of space; retrying will not help."""


_LOCKED = ("database is locked", "database table is locked", "lock timeout", "deadlock detected")
_FULL = ("database or disk is full", "no space left", "disk full", "could not extend file")


def safe_url(uri: str | URL) -> str:
    """The URI with any password hidden, for error messages and logs."""
    try:
        url = uri if isinstance(uri, URL) else make_url(uri)
    except ArgumentError:
        return str(uri)
    return url.render_as_string(hide_password=True)


def store_error(exc: BaseException, action: str, uri: str | URL) -> StoreError:
    """The ``StoreError`` subclass that says what went wrong while doing ``action``."""
    message = str(exc.orig) if isinstance(exc, DBAPIError) and exc.orig is not None else str(exc)
    text = message.lower()
    where = safe_url(uri)
    if any(marker in text for marker in _LOCKED):
        return StoreLockedError(f"{action} failed: the store {where} is locked ({message})")
    if any(marker in text for marker in _FULL):
        return StoreFullError(f"{action} failed: the store {where} is full ({message})")
    if isinstance(exc, SQLAlchemyError | OSError):
        return StoreError(f"{action} failed on the store {where}: {message}")
    return StoreError(f"{action} failed on the store {where}: {exc!r}")
