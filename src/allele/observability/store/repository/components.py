"""Component snapshots in the store: the latest one per component id."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from allele.errors import ValidationError
from allele.observability.store.repository.base import (
    Repository,
    _as_dict,
    _dumps,
    _insert_for,
    _optional_time,
    _text,
)
from allele.observability.store.schema import (
    components,
)
from allele.observability.types import (
    ComponentMetrics,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ComponentSnapshot:
    """A component's latest stored snapshot: its id, type, when it was taken (epoch seconds)
    and the whole saved ``payload`` (``ComponentMetrics.to_dict()``)."""

    component_id: str
    component_type: str | None
    updated_at: float
    payload: dict[str, Any]

    @property
    def health(self) -> str:
        """The health it reported ("unknown" when the payload has none)."""
        return str(self.payload.get("health", "unknown"))

    def to_dict(self) -> dict[str, Any]:
        """The saved payload (a copy)."""
        return dict(self.payload)

    def to_metrics(self) -> ComponentMetrics:
        """The ``ComponentMetrics`` it was saved from."""
        return ComponentMetrics.from_dict(self.payload)


class ComponentRepository(Repository):
    """The latest snapshot of each component, loaded as ``ComponentSnapshot``."""

    def __init__(self, engine: Engine, uri: str) -> None:
        super().__init__(engine, uri)
        self._upserts: dict[str, Any] = {}

    def upsert_components(self, items: Iterable[Any]) -> int:
        """Insert or replace component snapshots (``ComponentMetrics`` or dicts) by id."""
        rows = []
        for item in items:
            payload = _as_dict(item, "component")
            component_id = payload.get("component_id")
            if component_id is None:
                raise ValidationError(
                    f"component {payload!r} has no 'component_id'; every component needs one"
                )
            updated = _optional_time(payload.get("timestamp"))
            rows.append(
                {
                    "component_id": str(component_id),
                    "component_type": _text(payload.get("component_type")),
                    "updated_at": updated if updated is not None else time.time(),
                    "payload": _dumps(payload),
                }
            )
        if not rows:
            return 0
        with self._guard(f"saving {len(rows)} components"), self._engine.begin() as conn:
            conn.execute(self._upsert(conn), rows)
        return len(rows)

    def _upsert(self, conn: Connection) -> Any:
        """The INSERT ... ON CONFLICT statement, built once: the flusher upserts components on
        every flush, and building the statement costs more than running it."""
        stmt = self._upserts.get("components")
        if stmt is None:
            insert = _insert_for(conn, components)
            changes = {c: insert.excluded[c] for c in _COMPONENT_COLUMNS if c != "component_id"}
            stmt = insert.on_conflict_do_update(
                index_elements=[components.c.component_id], set_=changes
            )
            self._upserts["components"] = stmt
        return stmt

    def load_components(self) -> list[ComponentSnapshot]:
        """The latest snapshot of every stored component, by component id."""
        stmt = select(
            components.c.component_id,
            components.c.component_type,
            components.c.updated_at,
            components.c.payload,
        ).order_by(components.c.component_id)
        with self._guard("loading components"), self._engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [
            ComponentSnapshot(str(cid), kind, float(updated), dict(json.loads(text)))
            for cid, kind, updated, text in rows
        ]


_COMPONENT_COLUMNS = ("component_id", "component_type", "updated_at", "payload")
