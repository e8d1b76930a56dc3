"""The store's shared parts: the repository base (engine, URI, error guard) and the
JSON and label helpers every table uses."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from enum import Enum
from typing import Any

import numpy as np
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from allele.errors import StoreError, ValidationError
from allele.observability.clock import utc_datetime
from allele.observability.store.epoch import to_epoch
from allele.observability.store.faults import safe_url, store_error
from allele.observability.store.schema import (
    series,
)

log = logging.getLogger(__name__)


LabelFilter = Mapping[str, str] | Iterable[tuple[str, str]]


def labels_to_text(labels: Iterable[tuple[str, str]]) -> str:
    """The canonical JSON text of a label set (sorted keys, no spaces)."""
    return json.dumps(dict(labels), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def labels_from_text(text: str) -> tuple[tuple[str, str], ...]:
    """The sorted label pairs stored as ``text``."""
    return tuple(sorted((str(k), str(v)) for k, v in json.loads(text).items()))


def _label_pairs(labels: LabelFilter) -> tuple[tuple[str, str], ...]:
    pairs = labels.items() if isinstance(labels, Mapping) else labels
    try:
        return tuple(sorted((str(k), str(v)) for k, v in pairs))
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"labels={labels!r} must be a mapping or (name, value) pairs of strings"
        ) from exc


def _json_default(value: Any) -> Any:
    # Alert and component dicts may carry enums, datetimes or numpy scalars.
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dumps(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, default=_json_default, sort_keys=True)


def _as_dict(item: Any, what: str) -> dict[str, Any]:
    if isinstance(item, Mapping):
        return dict(item)
    to_dict = getattr(item, "to_dict", None)
    if callable(to_dict):
        result = to_dict()
        if isinstance(result, Mapping):
            return dict(result)
    raise ValidationError(f"{what} {item!r} is neither a mapping nor has to_dict() -> dict")


def _optional_time(value: Any) -> float | None:
    """Epoch seconds of a stored time field: a number, an aware datetime or an ISO string."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    try:
        return to_epoch(value)
    except ValidationError:
        return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value.value if isinstance(value, Enum) else value)


def _iso(seconds: float) -> str:
    return utc_datetime(seconds).isoformat()


def _insert_for(conn: Connection, table: Any = series) -> Any:
    """A dialect INSERT that supports ``on_conflict_*`` (SQLite and PostgreSQL share the API)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


class Repository:
    """What every part of the store shares: the engine, the URI (masked in errors), the
    driver's parameter mark and the guard that turns driver errors into ``StoreError``."""

    def __init__(self, engine: Engine, uri: str) -> None:
        self._engine = engine
        self._uri = uri
        self._mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        try:
            yield
        except (SQLAlchemyError, OSError) as exc:
            raise store_error(exc, action, self._uri) from exc
        except (UnicodeError, OverflowError) as exc:
            # Raised by the driver itself, unwrapped: a label it cannot encode, say.
            raise StoreError(
                f"{action} failed on the store {safe_url(self._uri)}: the driver refused the "
                f"data ({type(exc).__name__}: {exc})"
            ) from exc
