"""Alerts in the store: upserted by id, handled (acknowledged, resolved) from any process."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.engine import Connection, Engine, RowMapping

from allele.errors import ValidationError
from allele.observability.store.epoch import Instant, to_epoch
from allele.observability.store.repository.base import (
    Repository,
    _as_dict,
    _dumps,
    _insert_for,
    _iso,
    _optional_time,
    _text,
)
from allele.observability.store.schema import (
    alerts,
)
from allele.observability.types import (
    Alert,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """One stored alert: the columns the store indexes and filters on (epoch seconds for
    times), and the whole saved ``payload`` (``Alert.to_dict()``, handling filled in)."""

    alert_id: str
    state: str
    rule_name: str | None
    metric: str | None
    severity: str | None
    component: str | None
    updated_at: float
    acknowledged_by: str | None
    acknowledged_at: float | None
    resolved_by: str | None
    resolved_at: float | None
    payload: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The saved payload (a copy): ``Alert.to_dict()`` with the handling filled in."""
        return dict(self.payload)

    def to_alert(self) -> Alert:
        """The ``Alert`` it was saved from (``ValidationError`` if the payload is not one)."""
        return Alert.from_dict(self.payload)


class AlertRepository(Repository):
    """Alerts by id: saved from ``Alert`` objects or dicts, loaded as ``StoredAlert``."""

    def __init__(self, engine: Engine, uri: str) -> None:
        super().__init__(engine, uri)
        self._upserts: dict[str, Any] = {}

    #
    # Rows hold ``Alert.to_dict()`` in ``payload``; the columns beside it index what the CLI
    # filters on and keep the handling (who acknowledged or resolved, when, why) that another
    # process may have recorded. The running AlertManager stays the authority on ``state``.

    _HANDLING = (
        "acknowledged_by",
        "acknowledged_at",
        "acknowledgement_comment",
        "resolved_by",
        "resolved_at",
        "resolution_comment",
    )

    def save_alerts(self, items: Iterable[Any]) -> int:
        """Insert or update alerts (``Alert`` objects or their dicts) by ``alert_id``.

        Acknowledgement and resolution details already stored (e.g. recorded from the CLI in
        another process) are kept when the incoming alert does not carry its own.
        """
        rows = [self._alert_row(_as_dict(item, "alert")) for item in items]
        if not rows:
            return 0
        with self._guard(f"saving {len(rows)} alerts"), self._engine.begin() as conn:
            conn.execute(self._upsert(conn), rows)
        return len(rows)

    def _upsert(self, conn: Connection) -> Any:
        """The INSERT ... ON CONFLICT statement, built once (building it costs more than
        running it); handling already stored is kept when the incoming row has none."""
        stmt = self._upserts.get("alerts")
        if stmt is None:
            insert = _insert_for(conn, alerts)
            changes = {
                column: (
                    func.coalesce(insert.excluded[column], alerts.c[column])
                    if column in self._HANDLING
                    else insert.excluded[column]
                )
                for column in _ALERT_COLUMNS
                if column != "alert_id"
            }
            stmt = insert.on_conflict_do_update(index_elements=[alerts.c.alert_id], set_=changes)
            self._upserts["alerts"] = stmt
        return stmt

    @classmethod
    def _alert_row(cls, payload: dict[str, Any]) -> dict[str, Any]:
        alert_id = payload.get("alert_id")
        if alert_id is None:
            raise ValidationError(f"alert {payload!r} has no 'alert_id'; every alert needs one")
        labels = payload.get("labels")
        component = labels.get("component_id") if isinstance(labels, Mapping) else None
        updated = _optional_time(payload.get("updated_at"))
        row = {
            "alert_id": str(alert_id),
            "rule_name": _text(payload.get("rule_name")),
            "metric": _text(payload.get("metric")),
            "state": _text(payload.get("state")) or "firing",
            "severity": _text(payload.get("severity")),
            "component": _text(component),
            "updated_at": updated if updated is not None else time.time(),
            "payload": _dumps(payload),
        }
        for column in cls._HANDLING:
            value = payload.get(column)
            row[column] = _optional_time(value) if column.endswith("_at") else _text(value)
        return row

    def load_alerts(self, state: str | None = None) -> list[StoredAlert]:
        """Stored alerts (newest first), optionally only those in ``state``.

        Each one's ``payload`` is the saved ``Alert.to_dict()`` with handling recorded
        elsewhere filled in (``to_alert()`` makes the ``Alert``).
        """
        stmt: Select[Any] = select(alerts).order_by(alerts.c.updated_at.desc())
        if state is not None:
            stmt = stmt.where(alerts.c.state == str(state))
        with self._guard("loading alerts"), self._engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [self._stored(row) for row in rows]

    @classmethod
    def _stored(cls, row: RowMapping) -> StoredAlert:
        payload = dict(json.loads(row["payload"]))
        for column in cls._HANDLING:
            value = row[column]
            if value is not None and payload.get(column) is None:
                payload[column] = _iso(value) if column.endswith("_at") else value
        return StoredAlert(
            alert_id=str(row["alert_id"]),
            state=str(row["state"]),
            rule_name=row["rule_name"],
            metric=row["metric"],
            severity=row["severity"],
            component=row["component"],
            updated_at=float(row["updated_at"]),
            acknowledged_by=row["acknowledged_by"],
            acknowledged_at=row["acknowledged_at"],
            resolved_by=row["resolved_by"],
            resolved_at=row["resolved_at"],
            payload=payload,
        )

    def get_alert(self, alert_id: str) -> StoredAlert:
        """The stored alert ``alert_id``; ``ValidationError`` when there is none."""
        with self._guard("loading an alert"), self._engine.connect() as conn:
            row = self._alert_for_update(conn, alert_id)
        return self._stored(row)

    @staticmethod
    def _alert_for_update(conn: Connection, alert_id: str) -> RowMapping:
        row = (
            conn.execute(select(alerts).where(alerts.c.alert_id == alert_id))
            .mappings()
            .one_or_none()
        )
        if row is None:
            raise ValidationError(f"no stored alert has alert_id={alert_id!r}")
        return row

    def acknowledge_alert(
        self, alert_id: str, by: str, comment: str | None = None, at: Instant | None = None
    ) -> StoredAlert:
        """Record that ``by`` has seen active alert ``alert_id``; returns the updated alert."""
        return self._handle(alert_id, "acknowledge", by, comment, at)

    def resolve_alert(
        self, alert_id: str, by: str, comment: str | None = None, at: Instant | None = None
    ) -> StoredAlert:
        """Resolve active alert ``alert_id`` by hand (``by``, when, why); returns it updated."""
        return self._handle(alert_id, "resolve", by, comment, at)

    def _handle(
        self, alert_id: str, action: str, by: str, comment: str | None, at: Instant | None
    ) -> StoredAlert:
        if not isinstance(by, str) or not by.strip():
            raise ValidationError(f"by={by!r} must name who is handling the alert")
        when = time.time() if at is None else to_epoch(at, "at")
        stamp = _iso(when)
        with self._guard(f"trying to {action} alert {alert_id!r}"), self._engine.begin() as conn:
            row = self._alert_for_update(conn, alert_id)
            if row["state"] == "resolved":
                resolved = row["resolved_at"]
                raise ValidationError(
                    f"cannot {action} alert {alert_id!r}: it was resolved at "
                    f"{_iso(resolved) if resolved is not None else '?'}"
                )
            payload = dict(json.loads(row["payload"]))
            if action == "acknowledge":
                handling = {
                    "acknowledged_by": by,
                    "acknowledged_at": stamp,
                    "acknowledgement_comment": comment,
                }
            else:
                handling = {
                    "state": "resolved",
                    "resolved_by": by,
                    "resolved_at": stamp,
                    "resolution_comment": comment,
                }
            payload.update(handling, updated_at=stamp)
            values = {k: (when if k.endswith("_at") else v) for k, v in handling.items()}
            conn.execute(
                update(alerts)
                .where(alerts.c.alert_id == alert_id)
                .values(**values, updated_at=when, payload=_dumps(payload))
            )
        return self.get_alert(alert_id)


# The columns the alert and component rows carry (``_alert_row``, ``upsert_components``).
_ALERT_COLUMNS = (
    "alert_id",
    "rule_name",
    "metric",
    "state",
    "severity",
    "component",
    "updated_at",
    "payload",
    *AlertRepository._HANDLING,
)
