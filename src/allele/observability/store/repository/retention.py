"""Retention: what a store forgets, and what it never lowers (cumulative totals)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update

from allele.observability.store.epoch import Instant, to_epoch
from allele.observability.store.repository.base import (
    Repository,
)
from allele.observability.store.repository.chunks import (
    CHUNK_COLUMNS,
    cut_before,
    pack,
)
from allele.observability.store.schema import (
    alerts,
    chunks,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Deleted:
    """What a retention pass removed."""

    points: int
    alerts: int


class RetentionRepository(Repository):
    """Forgetting old data: points before a cutoff, alerts resolved before it."""

    def delete_older_than(self, ts: Instant) -> Deleted:
        """Remove points older than ``ts`` and alerts resolved before it.

        Chunks that end before ``ts`` are deleted; a chunk straddling it is rewritten with its
        points at or after ``ts``. The series' cumulative totals are not lowered.
        """
        cutoff = to_epoch(ts, "ts")
        removed = 0
        with self._guard("deleting old data"), self._engine.begin() as conn:
            old = chunks.c.t_max < cutoff
            removed += int(
                conn.execute(select(func.coalesce(func.sum(chunks.c.n), 0)).where(old)).scalar_one()
            )
            conn.execute(delete(chunks).where(old))
            straddling = conn.execute(
                select(chunks.c.chunk_id, chunks.c.n, chunks.c.ts_blob, chunks.c.value_blob).where(
                    chunks.c.t_min < cutoff
                )
            ).all()
            for chunk_id, n, ts_blob, value_blob in straddling:
                kept_ts, kept_values = cut_before(ts_blob, value_blob, cutoff)
                # t_max >= cutoff, so at least the last point is kept.
                (row,) = pack(0, kept_ts, kept_values, max_points=max(int(kept_ts.size), 1))
                conn.execute(
                    update(chunks)
                    .where(chunks.c.chunk_id == chunk_id)
                    .values(dict(zip(CHUNK_COLUMNS[1:], row[1:], strict=True)))
                )
                removed += int(n) - int(kept_ts.size)
            removed_alerts = conn.execute(
                delete(alerts).where(
                    alerts.c.resolved_at.is_not(None), alerts.c.resolved_at < cutoff
                )
            ).rowcount
        return Deleted(points=removed, alerts=int(removed_alerts or 0))
