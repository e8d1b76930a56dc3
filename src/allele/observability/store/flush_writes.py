"""The flusher's writes: pending points, alert changes and component snapshots into the
store, with the fault handling that keeps monitoring alive (see ``store.flusher``).

A transient failure (locked, unreachable, full) keeps everything pending and schedules a retry
with backoff; a batch the store refuses for good is found by halving the write, set aside and
logged once per series, while every other series is written. ``Flusher`` is built from this
mixin; its ``__init__`` owns the state used here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from allele.errors import StoreError, ValidationError
from allele.observability.store.faults import TransientStoreError, mask_secrets
from allele.observability.store.repository.store import Store
from allele.observability.store.spool import Spool
from allele.observability.types import SeriesBatch, SeriesKey

if TYPE_CHECKING:
    from pathlib import Path

    from allele.observability.store.flusher import FlushStats, StoreOpener

# The flusher's logger: these are the flusher's messages.
log = logging.getLogger("allele.observability.store.flusher")

#: How many set-aside batches are kept for inspection (``set_aside()``); older ones are counted.
SET_ASIDE_KEEP = 100


class StoreWrites:
    """Writing what a ``Flusher`` holds pending, one attempt per call."""

    # Set by Flusher.__init__.
    _store: Store | None
    _opener: StoreOpener | None
    _backoff: float
    _max_backoff: float
    _pending: list[SeriesBatch]
    _pending_points: int
    _pending_alerts: dict[str, dict[str, Any]]
    _pending_components: list[Any]
    _written_components: dict[str | None, Any]
    _poisoned: set[SeriesKey]
    _set_aside: list[SeriesBatch]
    _spooled: list[Path]
    _failures: int
    _retry_at: float
    _stats: FlushStats

    def _write_all(self) -> None:
        try:
            store = self._open()
            self._write_points(store)
            self._write_alerts(store)
            self._write_components(store)
        except TransientStoreError as exc:
            self._transient(exc)
            return
        if self._failures:
            log.warning("the store is writable again after %d failed attempt(s)", self._failures)
        self._failures = 0
        self._retry_at = 0.0

    def _open(self) -> Store:
        if self._store is not None:
            return self._store
        assert self._opener is not None
        try:
            self._store = self._opener()
        except TransientStoreError:
            raise
        except StoreError as exc:
            # Opening failed for another reason (e.g. migrations): still worth retrying, the
            # points wait meanwhile.
            raise TransientStoreError(str(exc)) from exc
        log.warning("opened the store %s", self._store)
        return self._store

    def _transient(self, exc: Exception) -> None:
        self._failures += 1
        delay = min(self._max_backoff, self._backoff * 2 ** (self._failures - 1))
        self._retry_at = time.monotonic() + delay
        message = mask_secrets(str(exc))
        self._stats = replace(
            self._stats, failed_writes=self._stats.failed_writes + 1, last_error=message
        )
        if self._failures == 1:
            log.warning(
                "the store is unavailable (%s); keeping %d pending point(s) and retrying "
                "with backoff",
                message,
                self._pending_points,
            )

    def _write_points(self, store: Store) -> None:
        if not self._pending:
            return
        batches = [b for b in self._pending if b.key not in self._poisoned]
        refused = [b for b in self._pending if b.key in self._poisoned]
        written = 0
        if batches:
            written, more = self._write_isolating(store, batches)
            refused.extend(more)
        self._pending.clear()
        self._pending_points = 0
        for path in self._spooled:
            Spool.done(path)
        self._spooled.clear()
        self._set_aside_batches(refused)
        self._stats = replace(self._stats, points_written=self._stats.points_written + written)

    def _write_isolating(
        self, store: Store, batches: Sequence[SeriesBatch]
    ) -> tuple[int, list[SeriesBatch]]:
        """Write ``batches``; a permanent failure splits the series in halves until the ones
        the store refuses are found. Returns (points written, refused batches); a transient
        failure raises (what was written stays written, the rest stays pending)."""
        try:
            return store.write_batches(batches), []
        except TransientStoreError:
            raise
        except (StoreError, ValidationError) as exc:
            self._stats = replace(
                self._stats,
                failed_writes=self._stats.failed_writes + 1,
                last_error=mask_secrets(str(exc)),
            )
            keys = list(dict.fromkeys(b.key for b in batches))
            if len(keys) == 1:
                self._poison(keys[0], exc)
                return 0, list(batches)
            half = set(keys[: len(keys) // 2])
            first = [b for b in batches if b.key in half]
            second = [b for b in batches if b.key not in half]
            written = 0
            refused: list[SeriesBatch] = []
            try:
                for part in (first, second):
                    done, bad = self._write_isolating(store, part)
                    written += done
                    refused.extend(bad)
                    # Written parts leave the pending list at once: a transient failure in a
                    # later part must not write them twice.
                    self._forget_pending(part)
            except TransientStoreError:
                self._stats = replace(
                    self._stats, points_written=self._stats.points_written + written
                )
                raise
            return written, refused

    def _forget_pending(self, part: Sequence[SeriesBatch]) -> None:
        ids = {id(b) for b in part}
        kept = [b for b in self._pending if id(b) not in ids]
        self._pending_points -= sum(len(b.values) for b in self._pending if id(b) in ids)
        self._pending[:] = kept

    def _poison(self, key: SeriesKey, exc: Exception) -> None:
        if key not in self._poisoned:
            self._poisoned.add(key)
            log.error(
                "the store refuses series %r %r (%s); its points are set aside from now on, "
                "every other series is still written",
                key.name,
                key.labels,
                mask_secrets(str(exc)),
            )

    def _set_aside_batches(self, refused: Sequence[SeriesBatch]) -> None:
        if not refused:
            return
        self._set_aside.extend(refused)
        del self._set_aside[:-SET_ASIDE_KEEP]
        points = sum(len(b.values) for b in refused)
        self._stats = replace(self._stats, points_set_aside=self._stats.points_set_aside + points)

    def _write_alerts(self, store: Store) -> None:
        if not self._pending_alerts:
            return
        alerts = list(self._pending_alerts.values())
        try:
            written = store.save_alerts(alerts)
        except TransientStoreError:
            raise
        except (StoreError, ValidationError) as exc:
            log.error("dropped %d alert change(s): %s", len(alerts), mask_secrets(str(exc)))
            written = 0
        self._pending_alerts.clear()
        self._stats = replace(self._stats, alerts_written=self._stats.alerts_written + written)

    def _write_components(self, store: Store) -> None:
        if not self._pending_components:
            return
        done = self._written_components
        snapshot = [
            item for item in self._pending_components if done.get(_component_id(item)) is not item
        ]
        self._pending_components = []
        if not snapshot:
            return
        try:
            written = store.upsert_components(snapshot)
        except TransientStoreError:
            self._pending_components = snapshot
            raise
        except (StoreError, ValidationError) as exc:
            log.error("dropped %d component snapshot(s): %s", len(snapshot), mask_secrets(str(exc)))
            return
        for item in snapshot:
            done[_component_id(item)] = item
        self._stats = replace(
            self._stats, components_written=self._stats.components_written + written
        )


def _component_id(item: Any) -> str | None:
    """The id of a component snapshot (an object with ``component_id`` or a mapping)."""
    found = getattr(item, "component_id", None)
    if found is None and isinstance(item, Mapping):
        found = item.get("component_id")
    return None if found is None else str(found)
