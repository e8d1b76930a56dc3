"""Silences: mute the notifications of the alerts that match, between a start and an end.

A silence is Alertmanager's: label matchers, ``starts_at``, ``ends_at``, who created it and why
(both required). It is *pending* before its start, *active* until its end, then *expired*;
expiring one early moves its end to now. The router asks ``silenced_by(labels)`` before every
notification: a silenced alert stays in its group (and comes back when the silence ends) but is
left out of what is sent.

With a store, every change is saved at once (table ``obs_silences``) and ``refresh()`` reads
the silences other processes (``allele alerts silence add``) saved.
"""

from __future__ import annotations

import builtins
import logging
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from allele.errors import AlleleError, ValidationError
from allele.observability.clock import Clock, SystemClock, iso_utc, parse_utc, utc_datetime
from allele.observability.matchers import Matcher, all_match, parse_matchers

logger = logging.getLogger("allele.observability.alerts")

STATES = ("pending", "active", "expired")


@dataclass
class Silence:
    """Mutes alerts matching every one of ``matchers`` from ``starts_at`` until ``ends_at``."""

    silence_id: str
    matchers: list[Matcher]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    updated_at: datetime = field(default_factory=lambda: utc_datetime(0))

    def __post_init__(self) -> None:
        self.matchers = parse_matchers(self.matchers)
        if not self.matchers:
            raise ValidationError("a silence needs at least one matcher (it would mute everything)")
        for name in ("starts_at", "ends_at"):
            value = getattr(self, name)
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise ValidationError(
                    f"silence {name} must be a timezone-aware datetime, got {value!r}"
                )
        if self.ends_at < self.starts_at:
            raise ValidationError(
                f"silence ends_at {self.ends_at.isoformat()} must not be before starts_at "
                f"{self.starts_at.isoformat()}"
            )
        for name in ("created_by", "comment"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValidationError(f"silence {name} must be a non-empty string, got {value!r}")

    def state(self, now: datetime) -> str:
        """``pending``, ``active`` or ``expired`` at ``now``."""
        if now < self.starts_at:
            return "pending"
        return "active" if now < self.ends_at else "expired"

    def mutes(self, labels: Mapping[str, str], now: datetime) -> bool:
        """Whether this silence mutes an alert with ``labels`` at ``now``."""
        return self.state(now) == "active" and all_match(self.matchers, labels)

    def to_dict(self) -> dict[str, Any]:
        return {
            "silence_id": self.silence_id,
            "matchers": [str(m) for m in self.matchers],
            "starts_at": iso_utc(self.starts_at),
            "ends_at": iso_utc(self.ends_at),
            "created_by": self.created_by,
            "comment": self.comment,
            "updated_at": iso_utc(self.updated_at),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Silence:
        def when(name: str) -> datetime:
            value = parse_utc(data.get(name))
            if value is None:
                raise ValidationError(f"silence {data.get('silence_id')!r} has no {name}")
            return value

        return cls(
            silence_id=str(data["silence_id"]),
            matchers=list(data["matchers"]),
            starts_at=when("starts_at"),
            ends_at=when("ends_at"),
            created_by=str(data.get("created_by", "")),
            comment=str(data.get("comment", "")),
            updated_at=parse_utc(data.get("updated_at")) or when("starts_at"),
        )


class Silences:
    """The silences a router consults; optionally saved to and refreshed from a store."""

    def __init__(self, *, clock: Clock | None = None, store: Any = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._by_id: dict[str, Silence] = {}
        self._records: Any = None
        if store is not None:
            self.attach_store(store)

    def attach_store(self, store: Any) -> None:
        """Save changes to ``store`` from now on and read the silences already in it."""
        from allele.observability.store.repository.alerting import AlertingRecords

        self._records = AlertingRecords(store)
        for silence in list(self._by_id.values()):
            self._records.save_silence(silence.to_dict())
        self.refresh()

    def now(self) -> datetime:
        return utc_datetime(self.clock.time())

    def add(
        self,
        matchers: Iterable[str | Matcher],
        *,
        created_by: str,
        comment: str,
        starts_at: datetime | None = None,
        ends_at: datetime | None = None,
        duration_s: float | None = None,
    ) -> Silence:
        """Create a silence from ``starts_at`` (default now) to ``ends_at`` or for
        ``duration_s`` seconds (exactly one of the two)."""
        if (ends_at is None) == (duration_s is None):
            raise ValidationError("give a silence either ends_at or duration_s (exactly one)")
        start = starts_at or self.now()
        if duration_s is not None:
            if not isinstance(duration_s, int | float) or duration_s <= 0:
                raise ValidationError(f"silence duration must be > 0 seconds, got {duration_s!r}")
            ends_at = start + timedelta(seconds=float(duration_s))
        assert ends_at is not None
        if ends_at <= start:
            raise ValidationError(
                f"silence ends_at {ends_at.isoformat()} must be after its start {start.isoformat()}"
            )
        silence = Silence(
            silence_id=uuid.uuid4().hex,
            matchers=list(matchers),  # type: ignore[arg-type]
            starts_at=start,
            ends_at=ends_at,
            created_by=created_by,
            comment=comment,
            updated_at=self.now(),
        )
        self._put(silence)
        return silence

    def expire(self, silence_id: str) -> Silence:
        """End a pending or active silence now; an expired one is an error."""
        with self._lock:
            silence = self._find(silence_id)
        now = self.now()
        if silence.state(now) == "expired":
            raise ValidationError(
                f"silence {silence.silence_id} already expired at {silence.ends_at.isoformat()}"
            )
        if silence.state(now) == "pending":  # as Alertmanager: it never starts
            silence.starts_at = now
        silence.ends_at = now
        silence.updated_at = now
        self._put(silence)
        return silence

    def _find(self, silence_id: str) -> Silence:
        if silence_id in self._by_id:
            return self._by_id[silence_id]
        matches = [s for s in self._by_id.values() if s.silence_id.startswith(silence_id)]
        if len(matches) == 1 and silence_id:
            return matches[0]
        if matches:
            raise ValidationError(
                f"silence id prefix {silence_id!r} matches {len(matches)} silences; give more of it"
            )
        raise ValidationError(f"no silence with id {silence_id!r}")

    def _put(self, silence: Silence) -> None:
        with self._lock:
            self._by_id[silence.silence_id] = silence
        if self._records is not None:
            self._records.save_silence(silence.to_dict())

    def list(self, state: str | None = None) -> builtins.list[Silence]:
        """The silences (only those in ``state`` when given), latest start first."""
        if state is not None and state not in STATES:
            raise ValidationError(f"unknown silence state {state!r}; allowed: {', '.join(STATES)}")
        now = self.now()
        with self._lock:
            items = list(self._by_id.values())
        items.sort(key=lambda s: s.starts_at, reverse=True)
        return [s for s in items if state is None or s.state(now) == state]

    def silenced_by(self, labels: Mapping[str, str]) -> builtins.list[str]:
        """Ids of the active silences that mute an alert with ``labels``."""
        now = self.now()
        with self._lock:
            return [s.silence_id for s in self._by_id.values() if s.mutes(labels, now)]

    def refresh(self) -> None:
        """Read the store's silences (other processes may have added or expired some)."""
        if self._records is None:
            return
        try:
            stored = [Silence.from_dict(d) for d in self._records.load_silences()]
        except AlleleError as exc:  # keep muting with what we have
            logger.warning("could not refresh silences from the store: %s", exc)
            return
        with self._lock:
            for silence in stored:
                mine = self._by_id.get(silence.silence_id)
                if mine is None or silence.updated_at >= mine.updated_at:
                    self._by_id[silence.silence_id] = silence
