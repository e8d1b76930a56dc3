"""The observability repository: write and read series, alerts and components.

Points are written in one transaction per call with the driver's ``executemany`` (the fastest
path SQLAlchemy offers: no per-row Python objects beyond one tuple), and read back as numpy
arrays. Time windows are half-open, ``start <= ts < end``, in epoch seconds UTC or aware
datetimes.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from itertools import chain
from typing import Any

import numpy as np
from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, RowMapping
from sqlalchemy.exc import SQLAlchemyError

from allele.errors import ValidationError
from allele.observability.clock import utc_datetime
from allele.observability.store.epoch import Instant, optional_epoch, to_epoch
from allele.observability.store.faults import safe_url, store_error
from allele.observability.store.schema import alerts, components, points, series
from allele.observability.types import MetricType, SeriesBatch, SeriesKey

log = logging.getLogger(__name__)

LabelFilter = Mapping[str, str] | Iterable[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class SeriesPoints:
    """Points of a time window, ordered by time: epoch seconds and values (float64)."""

    timestamps: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return int(self.values.shape[0])


@dataclass(frozen=True, slots=True)
class Aggregate:
    """Summary of the values in a window; statistics are ``None`` when the window is empty."""

    count: int
    sum: float | None
    min: float | None
    max: float | None
    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None

    @classmethod
    def of(cls, values: np.ndarray) -> Aggregate:
        """The summary of ``values`` (percentiles by numpy's linear interpolation)."""
        if values.size == 0:
            return cls(0, None, None, None, None, None, None, None)
        p50, p95, p99 = np.percentile(values, [50.0, 95.0, 99.0])
        return cls(
            count=int(values.size),
            sum=float(values.sum()),
            min=float(values.min()),
            max=float(values.max()),
            mean=float(values.mean()),
            p50=float(p50),
            p95=float(p95),
            p99=float(p99),
        )

    def to_dict(self) -> dict[str, float | int | None]:
        """The fields as a JSON-ready dict."""
        return {field: getattr(self, field) for field in self.__slots__}


@dataclass(frozen=True, slots=True)
class SeriesStats:
    """All-time count and sum of one series and its most recent point."""

    key: SeriesKey
    count: int
    sum: float
    last_ts: float
    last_value: float


@dataclass(frozen=True, slots=True)
class Deleted:
    """What a retention pass removed."""

    points: int
    alerts: int


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


class Store:
    """Series, alerts and components in one SQL database (see ``open_store``)."""

    def __init__(self, engine: Engine, uri: str) -> None:
        self._engine = engine
        self._uri = uri
        self._series_ids: dict[SeriesKey, int] = {}
        placeholder = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._insert_points_sql = (
            f"INSERT INTO {points.name} (series_id, ts, value) "
            f"VALUES ({placeholder}, {placeholder}, {placeholder})"
        )

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine the store runs on."""
        return self._engine

    @property
    def uri(self) -> str:
        """The URI the store was opened with."""
        return self._uri

    def __repr__(self) -> str:
        return f"Store({safe_url(self._uri)!r})"

    def close(self) -> None:
        """Release the engine's connections."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as exc:
            raise store_error(exc, action, self._uri) from exc

    # -- points ---------------------------------------------------------------------------

    def write_batches(self, batches: Sequence[SeriesBatch]) -> int:
        """Store the points of ``batches`` in one transaction; returns how many were written.

        NaN values and non-finite timestamps cannot be stored (SQLite turns NaN into NULL): such
        points are skipped with a warning. Raises ``StoreLockedError`` / ``StoreFullError`` /
        ``StoreError`` and writes nothing when the database refuses the transaction.
        """
        keys, ts_parts, value_parts = self._clean(batches)
        if not keys:
            return 0
        lengths = np.fromiter((part.size for part in ts_parts), dtype=np.int64, count=len(keys))
        total = int(lengths.sum())
        with self._guard(f"writing {total} points"), self._engine.begin() as conn:
            ids, new_ids = self._resolve_series(conn, keys)
            rows = np.empty(total, dtype=[("s", "i8"), ("t", "f8"), ("v", "f8")])
            rows["s"] = np.repeat(np.asarray(ids, dtype=np.int64), lengths)
            rows["t"] = np.concatenate(ts_parts)
            rows["v"] = np.concatenate(value_parts)
            # tolist() of a structured array yields plain tuples: the cheapest row form for
            # the driver's executemany.
            conn.exec_driver_sql(self._insert_points_sql, rows.tolist())
        # Only after commit: a rolled-back transaction also rolled back new series rows.
        self._series_ids.update(new_ids)
        return total

    def _clean(
        self, batches: Sequence[SeriesBatch]
    ) -> tuple[list[SeriesKey], list[np.ndarray], list[np.ndarray]]:
        keys: list[SeriesKey] = []
        ts_parts: list[np.ndarray] = []
        value_parts: list[np.ndarray] = []
        for batch in batches:
            ts = np.asarray(batch.timestamps, dtype=np.float64).ravel()
            values = np.asarray(batch.values, dtype=np.float64).ravel()
            if ts.shape != values.shape:
                raise ValidationError(
                    f"series {batch.key.name!r} has {ts.size} timestamps but {values.size} "
                    "values; a batch needs one timestamp per value"
                )
            keep = np.isfinite(ts) & ~np.isnan(values)
            if not keep.all():
                log.warning(
                    "skipping %d point(s) of series %r with NaN values or non-finite timestamps",
                    int((~keep).sum()),
                    batch.key.name,
                )
                ts, values = ts[keep], values[keep]
            if ts.size:
                keys.append(batch.key)
                ts_parts.append(ts)
                value_parts.append(values)
        return keys, ts_parts, value_parts

    def _resolve_series(
        self, conn: Connection, keys: Sequence[SeriesKey]
    ) -> tuple[list[int], dict[SeriesKey, int]]:
        new: dict[SeriesKey, int] = {}
        for key in dict.fromkeys(k for k in keys if k not in self._series_ids):
            new[key] = self._series_id(conn, key)
        return [self._series_ids.get(k) or new[k] for k in keys], new

    def _series_id(self, conn: Connection, key: SeriesKey) -> int:
        row = {"name": key.name, "labels": labels_to_text(key.labels), "kind": str(key.kind)}
        insert = _insert_for(conn).on_conflict_do_nothing(
            index_elements=[series.c.name, series.c.labels, series.c.kind]
        )
        conn.execute(insert, row)
        found = conn.execute(
            select(series.c.series_id).where(
                series.c.name == row["name"],
                series.c.labels == row["labels"],
                series.c.kind == row["kind"],
            )
        ).scalar_one()
        return int(found)

    def list_series(self, name: str | None = None) -> list[SeriesKey]:
        """Every stored series (optionally of one metric name), ordered by name then labels."""
        return [key for _, key in self._series_rows(name)]

    def _series_rows(
        self, name: str | None, labels: LabelFilter | None = None
    ) -> list[tuple[int, SeriesKey]]:
        stmt = select(series.c.series_id, series.c.name, series.c.labels, series.c.kind)
        if name is not None:
            stmt = stmt.where(series.c.name == name)
        with self._guard("listing series"), self._engine.connect() as conn:
            rows = conn.execute(stmt.order_by(series.c.name, series.c.labels)).all()
        wanted = set(_label_pairs(labels)) if labels is not None else set()
        found: list[tuple[int, SeriesKey]] = []
        for series_id, series_name, label_text, kind in rows:
            pairs = labels_from_text(label_text)
            # A label filter selects every series that carries all the given pairs.
            if wanted <= set(pairs):
                found.append((int(series_id), SeriesKey(series_name, pairs, MetricType(kind))))
        return found

    def query_series(
        self,
        name: str,
        labels: LabelFilter | None = None,
        start: Instant | None = None,
        end: Instant | None = None,
    ) -> SeriesPoints:
        """Points of metric ``name`` in ``[start, end)``, merged over the matching series.

        ``labels`` selects the series that carry all the given label pairs; ``None`` takes
        every series of the metric.
        """
        ids = [series_id for series_id, _ in self._series_rows(name, labels)]
        return self._points(ids, optional_epoch(start, "start"), optional_epoch(end, "end"))

    def _points(self, ids: Sequence[int], start: float | None, end: float | None) -> SeriesPoints:
        if not ids:
            return SeriesPoints(np.empty(0), np.empty(0))
        stmt = select(points.c.ts, points.c.value).where(points.c.series_id.in_(ids))
        if start is not None:
            stmt = stmt.where(points.c.ts >= start)
        if end is not None:
            stmt = stmt.where(points.c.ts < end)
        with self._guard("reading points"), self._engine.connect() as conn:
            rows = conn.execute(stmt.order_by(points.c.ts)).all()
        if not rows:
            return SeriesPoints(np.empty(0), np.empty(0))
        # fromiter over the flattened rows: np.array(rows) would probe every Row for the array
        # protocol, which costs ~20x the fetch itself.
        flat = np.fromiter(chain.from_iterable(rows), dtype=np.float64, count=2 * len(rows))
        return SeriesPoints(flat[0::2].copy(), flat[1::2].copy())

    def iter_series(
        self, name: str | None = None, start: Instant | None = None, end: Instant | None = None
    ) -> Iterator[tuple[SeriesKey, SeriesPoints]]:
        """Each stored series (optionally one metric) with its points in ``[start, end)``."""
        lo, hi = optional_epoch(start, "start"), optional_epoch(end, "end")
        for series_id, key in self._series_rows(name):
            yield key, self._points([series_id], lo, hi)

    def aggregate(
        self,
        name: str,
        start: Instant,
        end: Instant,
        labels: LabelFilter | None = None,
    ) -> Aggregate:
        """count/sum/min/max/mean/p50/p95/p99 of metric ``name`` over ``[start, end)``."""
        lo, hi = to_epoch(start, "start"), to_epoch(end, "end")
        if hi < lo:
            raise ValidationError(f"end={end!r} is before start={start!r}; expected start <= end")
        return Aggregate.of(self.query_series(name, labels, lo, hi).values)

    def series_stats(self, name: str | None = None) -> list[SeriesStats]:
        """All-time count and sum and the latest point of every series that has points."""
        keys = dict(self._series_rows(name))
        if not keys:
            return []
        totals = (
            select(
                points.c.series_id,
                func.count().label("n"),
                func.sum(points.c.value).label("total"),
                func.max(points.c.ts).label("last_ts"),
            )
            .where(points.c.series_id.in_(list(keys)))
            .group_by(points.c.series_id)
            .subquery()
        )
        # The value at the latest timestamp; ties (two points at one instant) take the larger.
        stmt = (
            select(
                totals.c.series_id,
                totals.c.n,
                totals.c.total,
                totals.c.last_ts,
                func.max(points.c.value),
            )
            .join(
                points,
                (points.c.series_id == totals.c.series_id) & (points.c.ts == totals.c.last_ts),
            )
            .group_by(totals.c.series_id, totals.c.n, totals.c.total, totals.c.last_ts)
        )
        with self._guard("summarising series"), self._engine.connect() as conn:
            rows = conn.execute(stmt).all()
        stats = [
            SeriesStats(keys[int(sid)], int(n), float(total), float(last_ts), float(last_value))
            for sid, n, total, last_ts, last_value in rows
        ]
        return sorted(stats, key=lambda s: (s.key.name, s.key.labels))

    def delete_older_than(self, ts: Instant) -> Deleted:
        """Remove points older than ``ts`` and alerts resolved before it."""
        cutoff = to_epoch(ts, "ts")
        with self._guard("deleting old data"), self._engine.begin() as conn:
            removed_points = conn.execute(delete(points).where(points.c.ts < cutoff)).rowcount
            removed_alerts = conn.execute(
                delete(alerts).where(
                    alerts.c.resolved_at.is_not(None), alerts.c.resolved_at < cutoff
                )
            ).rowcount
        return Deleted(points=int(removed_points or 0), alerts=int(removed_alerts or 0))

    # -- alerts ---------------------------------------------------------------------------
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
            stmt = _insert_for(conn, alerts)
            changes = {
                column: (
                    func.coalesce(stmt.excluded[column], alerts.c[column])
                    if column in self._HANDLING
                    else stmt.excluded[column]
                )
                for column in rows[0]
                if column != "alert_id"
            }
            conn.execute(
                stmt.on_conflict_do_update(index_elements=[alerts.c.alert_id], set_=changes),
                rows,
            )
        return len(rows)

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

    def load_alerts(self, state: str | None = None) -> list[dict[str, Any]]:
        """Stored alerts as dicts (newest first), optionally only those in ``state``.

        Each dict is the saved ``Alert.to_dict()`` with handling recorded elsewhere filled in,
        ready for ``Alert.from_dict``.
        """
        stmt: Select[Any] = select(alerts).order_by(alerts.c.updated_at.desc())
        if state is not None:
            stmt = stmt.where(alerts.c.state == str(state))
        with self._guard("loading alerts"), self._engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [self._alert_dict(row) for row in rows]

    @classmethod
    def _alert_dict(cls, row: RowMapping) -> dict[str, Any]:
        payload = dict(json.loads(row["payload"]))
        for column in cls._HANDLING:
            value = row[column]
            if value is not None and payload.get(column) is None:
                payload[column] = _iso(value) if column.endswith("_at") else value
        return payload

    def get_alert(self, alert_id: str) -> dict[str, Any]:
        """The stored alert ``alert_id``; ``ValidationError`` when there is none."""
        with self._guard("loading an alert"), self._engine.connect() as conn:
            row = self._alert_for_update(conn, alert_id)
        return self._alert_dict(row)

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
    ) -> dict[str, Any]:
        """Record that ``by`` has seen active alert ``alert_id``; returns the updated alert."""
        return self._handle(alert_id, "acknowledge", by, comment, at)

    def resolve_alert(
        self, alert_id: str, by: str, comment: str | None = None, at: Instant | None = None
    ) -> dict[str, Any]:
        """Resolve active alert ``alert_id`` by hand (``by``, when, why); returns it updated."""
        return self._handle(alert_id, "resolve", by, comment, at)

    def _handle(
        self, alert_id: str, action: str, by: str, comment: str | None, at: Instant | None
    ) -> dict[str, Any]:
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

    # -- components -----------------------------------------------------------------------

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
            stmt = _insert_for(conn, components)
            changes = {c: stmt.excluded[c] for c in rows[0] if c != "component_id"}
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[components.c.component_id], set_=changes
                ),
                rows,
            )
        return len(rows)

    def load_components(self) -> list[dict[str, Any]]:
        """The latest snapshot of every stored component, by component id."""
        stmt = select(components.c.payload).order_by(components.c.component_id)
        with self._guard("loading components"), self._engine.connect() as conn:
            return [dict(json.loads(text)) for (text,) in conn.execute(stmt)]


def _iso(seconds: float) -> str:
    return utc_datetime(seconds).isoformat()


def _insert_for(conn: Connection, table: Any = series) -> Any:
    """A dialect INSERT that supports ``on_conflict_*`` (SQLite and PostgreSQL share the API)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
