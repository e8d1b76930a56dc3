"""The outbox (``obs_outbox``): notifications a stop could not deliver, taken at the next start."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, select

from allele.observability.store.repository.base import (
    Repository,
    _dumps,
)
from allele.observability.store.schema import (
    outbox,
)

log = logging.getLogger(__name__)


class NotificationRepository(Repository):
    """Webhook payloads a stop could not deliver, kept for the next start."""

    def save_notifications(self, target: str, payloads: Sequence[Mapping[str, Any]]) -> int:
        """Keep webhook ``payloads`` that a stop could not deliver to ``target`` (a digest of
        the webhook URL) for ``take_notifications`` at the next start; returns how many."""
        rows = [
            {"target": str(target), "queued_at": time.time(), "payload": _dumps(p)}
            for p in payloads
        ]
        if not rows:
            return 0
        with self._guard(f"saving {len(rows)} notifications"), self._engine.begin() as conn:
            conn.execute(outbox.insert(), rows)
        return len(rows)

    def take_notifications(self, target: str) -> list[dict[str, Any]]:
        """Remove and return the payloads kept for ``target``, oldest first."""
        mine = outbox.c.target == str(target)
        with self._guard("taking stored notifications"), self._engine.begin() as conn:
            rows = conn.execute(
                select(outbox.c.notification_id, outbox.c.payload)
                .where(mine)
                .order_by(outbox.c.notification_id)
            ).all()
            if rows:
                last = rows[-1][0]
                conn.execute(delete(outbox).where(mine, outbox.c.notification_id <= last))
        return [dict(json.loads(text)) for _, text in rows]
