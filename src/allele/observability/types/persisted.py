"""JSON-ready (de)serialisation shared by every persisted type (``Persisted``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from datetime import UTC, datetime
from enum import Enum
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from allele.errors import ValidationError
from allele.observability.clock import parse_utc


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = get_origin(hint)
    if origin in (Union, UnionType):
        options = [a for a in get_args(hint) if a is not type(None)]
        return _decode(options[0], value) if len(options) == 1 else value
    if origin in (list, tuple):
        args = get_args(hint)
        inner = args[0] if args else Any
        items = [_decode(inner, v) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        inner = get_args(hint)[1] if get_args(hint) else Any
        return {k: _decode(inner, v) for k, v in value.items()}
    if hint is datetime:
        return parse_utc(value)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    if isinstance(hint, type) and hasattr(hint, "from_dict"):
        return hint.from_dict(value)
    return value


_T = TypeVar("_T", bound="Persisted")


class Persisted:
    """Mixin for dataclasses: ``to_dict()`` gives JSON-ready data, ``from_dict()`` reads it back.

    Datetimes become ISO-8601 UTC strings, enums their values, nested types their dicts.
    """

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as JSON-ready data."""
        return {f.name: _encode(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[_T], data: Mapping[str, Any]) -> _T:
        """Return an instance built from ``to_dict()`` output (unknown keys are an error)."""
        hints = _hints(cls)
        unknown = set(data) - set(hints)
        if unknown:
            raise ValidationError(
                f"unknown field(s) {sorted(unknown)} for {cls.__name__}; allowed: {sorted(hints)}"
            )
        return cls(**{k: _decode(hints[k], v) for k, v in data.items()})


def _hints(cls: type) -> dict[str, Any]:
    cached = _HINTS.get(cls)
    if cached is None:
        all_hints = get_type_hints(cls)
        cached = {f.name: all_hints[f.name] for f in fields(cls) if f.init}
        _HINTS[cls] = cached
    return cached


_HINTS: dict[type, dict[str, Any]] = {}


def _now() -> datetime:
    return datetime.now(UTC)


def _require_utc(owner: str, name: str, value: datetime | None) -> None:
    if value is not None and value.tzinfo is None:
        raise ValidationError(f"{owner}.{name} must be timezone-aware (UTC), got naive {value}")
