"""Streaming detectors: one small state per series, constant memory, causal scores in [0, 1].

They follow river's contract: ``score_one(x)`` scores an observation with the state as it is
(the score at time t uses only data up to t) and ``learn_one(x)`` folds it in. ``x`` is a number
or a mapping with ``"value"`` and optionally ``"timestamp"`` (a ``datetime`` or epoch seconds:
the spacing of the first two gives the daily season). ``score_learn_one(x)`` does both at once.

The default, ``ResidualNoveltyDetector``, is the combination that scores best on NAB (see
``benchmarks/bench_nab.py``), built from two views of the series:

- ``ResidualDetector``: the residual against a forecast, the better (by running squared error)
  of an exponentially weighted level and a per-phase seasonal profile of one day, scaled by its
  running deviation into a z; the z is then ranked against every z seen before (a histogram of
  bounded size), so the score is "how much more extreme than this series' own history" and one
  threshold fits noisy and quiet series alike (the adaptive threshold);
- ``PatternNoveltyDetector``: each value quantised into ``levels`` bands of the range seen so
  far; the score is the share of the current contexts (the band, and the pair previous band ->
  band) never seen before, which catches new shapes at ordinary values;
- the residual view runs twice, with a daily and a weekly season, and the one with the
  better running forecast error gives the rank;
- the blend ``0.93 * residual + 0.07 * novelty`` passes only when it beats the recent peak (a
  peak decaying by 0.9995 per point), so one incident fires once rather than on every row.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, Protocol

from allele.errors import ValidationError, check_int, check_real

Observation = float | Mapping[str, Any]

_WARMUP = 100  # rows before any score: the statistics mean nothing earlier
_MAX_SEASON = 5000  # a longer "day" (sub-20 s spacing) is not tracked: memory stays bounded
_WEEKS_BEFORE_CHOICE = 2  # weeks the weekly forecast learns before it may be chosen


class StreamingDetector(Protocol):
    """river's anomaly-detector contract."""

    def learn_one(self, x: Observation) -> None: ...

    def score_one(self, x: Observation) -> float: ...


def _value_time(x: Observation) -> tuple[float, float | None]:
    if type(x) is float and x - x == 0.0:  # the hot path: a finite float
        return x, None
    if isinstance(x, Mapping):
        if "value" not in x:
            raise ValidationError(f"an observation mapping needs a 'value' key, got {sorted(x)}")
        value, ts = x["value"], x.get("timestamp")
    else:
        value, ts = x, None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"observation value must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValidationError(f"observation value must be finite, got {v!r}")
    if ts is None:
        return v, None
    if isinstance(ts, datetime):
        return v, ts.timestamp()
    return v, float(ts)


class _Base:
    """The score_one / learn_one split over ``_evaluate`` (score, and remember the update) and
    ``_commit`` (apply the remembered update)."""

    def __init__(self) -> None:
        self._scored: Observation | None = None

    def _evaluate(self, value: float, ts: float | None) -> float:
        raise NotImplementedError

    def _commit(self) -> None:
        raise NotImplementedError

    def score_one(self, x: Observation) -> float:
        """The anomaly score of ``x`` in [0, 1], without learning it."""
        value, ts = _value_time(x)
        score = self._evaluate(value, ts)
        self._scored = x
        return score

    def learn_one(self, x: Observation) -> None:
        """Fold ``x`` into the state (reusing the work of a ``score_one(x)`` just before)."""
        scored, self._scored = self._scored, None
        if scored is not x:
            value, ts = _value_time(x)
            self._evaluate(value, ts)
        self._commit()

    def score_learn_one(self, x: Observation) -> float:
        """``score_one(x)`` then ``learn_one(x)``: the score of ``x`` before it was learnt."""
        value, ts = _value_time(x)
        score = self._evaluate(value, ts)
        self._commit()
        self._scored = None
        return score


class ResidualDetector(_Base):
    """The residual of a level-or-seasonal forecast, as a z ranked against its own history.

    ``level_alpha`` is the weight of the newest value in the level, ``scale_alpha`` that of the
    newest squared residual in the scale, ``season_alpha`` that of the newest value in its
    phase's seasonal profile; ``season_length`` (rows per season of ``season_days`` days) is
    taken from the first two timestamps when not given, and 0 turns the season off (so does a
    season of more than 5,000 rows). The rank uses ``bins`` bins of
    ``bin_width`` z each (memory independent of the series' length); with ``memory`` > 0 it
    halves every count each ``memory`` rows, so that it follows a series whose noise changes.
    ``magnitude`` > 0 mixes that share of the z itself into the score (a rank saturates at 1).
    """

    def __init__(
        self,
        *,
        season_length: int | None = None,
        level_alpha: float = 0.05,
        scale_alpha: float = 0.01,
        season_alpha: float = 0.3,
        select_alpha: float = 0.01,
        bins: int = 200,
        bin_width: float = 0.25,
        magnitude: float = 0.0,
        memory: int = 0,
        season_days: int = 1,
    ) -> None:
        super().__init__()
        self.memory = check_int("memory", memory, 0, 10**9)
        self.season_days = check_int("season_days", season_days, 1, 366)
        self.level_alpha = check_real("level_alpha", level_alpha, 0, 1, low_open=True)
        self.scale_alpha = check_real("scale_alpha", scale_alpha, 0, 1, low_open=True)
        self.season_alpha = check_real("season_alpha", season_alpha, 0, 1, low_open=True)
        self.select_alpha = check_real("select_alpha", select_alpha, 0, 1, low_open=True)
        self.bins = check_int("bins", bins, 2, 100_000)
        self.bin_width = check_real("bin_width", bin_width, 0, math.inf, low_open=True)
        self.magnitude = check_real("magnitude", magnitude, 0, 1)
        self._season = (
            None if season_length is None else check_int("season_length", season_length, 0, 10**6)
        )
        self._first_ts: float | None = None
        self.n = 0
        self._level: float | None = None
        self._var = 0.0
        self._season_var = 0.0
        self._err_level = 0.0
        self._err_season = 0.0
        # How many rows (halved every `memory` rows) fell in each z bin.
        self._counts = [0.0] * self.bins
        self._count = 0.0
        self._profile = [None] * self._season if self._season else []
        # What the last evaluation saw (its update, and for AnomalyResult its forecast, z and
        # baseline); `_dirty` while that update is still to be applied.
        self._last: tuple[Any, ...] = ()
        self._dirty = False

    @property
    def season_length(self) -> int:
        """Rows per season (0: no season), once known."""
        return self._season or 0

    @property
    def forecast_error(self) -> float:
        """The running squared error of the better of its two forecasts (level, seasonal)."""
        if self._season and self._err_season > 0:
            return min(self._err_level, self._err_season)
        return self._err_level

    def _evaluate(self, value: float, ts: float | None) -> float:
        n = self.n + 1
        if self._season is None and ts is not None:
            self._infer_season(ts)
        level = value if self._level is None else self._level
        r = value - level
        var = self._var
        z = abs(r) / math.sqrt(var) if var > 0 else (0.0 if r == 0 else 50.0)
        expected = level
        season = self._season or 0
        phase = n % season if season else 0
        seasonal = self._profile[phase] if season else None
        rs = 0.0
        chose_season = False
        if seasonal is not None:
            rs = value - seasonal
            if n > 2 * season and self._err_season < self._err_level:
                sv = self._season_var
                z = abs(rs) / math.sqrt(sv) if sv > 0 else (0.0 if rs == 0 else 50.0)
                expected, chose_season = seasonal, True
        raw = z if z < 49.0 else 49.0
        b = int(raw / self.bin_width)
        if b >= self.bins:
            b = self.bins - 1
        seen = self._count
        # The count of rows with a smaller z: a C-level sum over the bins below. Ordinary rows
        # have small z, so the slice is short where it matters for speed.
        counts = self._counts
        rank = (sum(counts[:b]) + 0.5 * counts[b]) / seen if seen > 0 else 0.0
        if self.magnitude:
            rank = (1 - self.magnitude) * rank + self.magnitude * (1 - math.exp(-raw / 8.0))
        self._last = (value, r, b, phase, seasonal, rs, season, expected, raw, chose_season)
        self._dirty = True
        return rank if n >= _WARMUP else 0.0

    def _infer_season(self, ts: float) -> None:
        if self._first_ts is None:
            self._first_ts = ts
        elif ts > self._first_ts:
            rows = round(self.season_days * 86400.0 / (ts - self._first_ts))
            self._season = rows if 1 < rows <= _MAX_SEASON else 0
            self._profile = [None] * self._season

    @property
    def expected(self) -> float:
        """The forecast the last evaluated row was compared with."""
        return self._last[7] if self._last else math.nan

    @property
    def z(self) -> float:
        """The last evaluated row's residual in units of its scale (at most 49)."""
        return self._last[8] if self._last else 0.0

    @property
    def baseline(self) -> str:
        """Which forecast the last row was compared with: ``level`` or ``seasonal``."""
        return "seasonal" if self._last and self._last[9] else "level"

    def _commit(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        value, r, b, phase, seasonal, rs, season = self._last[:7]
        n = self.n = self.n + 1
        if self._level is None:
            self._level = value
        if season:
            if seasonal is not None:
                a = self.scale_alpha
                self._season_var = (1 - a) * (self._season_var + a * rs * rs)
                self._err_season += self.select_alpha * (rs * rs - self._err_season)
                self._profile[phase] = seasonal + self.season_alpha * (value - seasonal)
            else:
                self._profile[phase] = value
        self._err_level += self.select_alpha * (r * r - self._err_level)
        self._level += self.level_alpha * r
        a = self.scale_alpha
        self._var = (1 - a) * (self._var + a * r * r)
        self._counts[b] += 1.0
        self._count += 1.0
        if self.memory and n % self.memory == 0:
            # Halve every count: the rank forgets old rows with a half-life of `memory` rows.
            self._counts = [v * 0.5 for v in self._counts]
            self._count *= 0.5


class PatternNoveltyDetector(_Base):
    """The share of the current value's contexts (its band, and the band pair) never seen.

    Values fall into ``levels`` bands of the range seen so far (a new extreme is always new);
    at most ``(levels + 1) * (levels + 2)`` contexts exist, so memory is bounded.
    """

    def __init__(self, *, levels: int = 10) -> None:
        super().__init__()
        self.levels = check_int("levels", levels, 1, 1000)
        self.n = 0
        self._lo = math.inf
        self._hi = -math.inf
        self._prev = -1
        self._seen: set[int] = set()
        self._pending: tuple[float, float, int, int, int] | None = None

    def _evaluate(self, value: float, ts: float | None) -> float:
        lo = value if value < self._lo else self._lo
        hi = value if value > self._hi else self._hi
        span = hi - lo
        band = int((value - lo) / span * self.levels) if span > 0 else 0
        seen = self._seen
        if self._prev < 0:
            pair = -1
            score = 0.0 if band in seen else 1.0
        else:
            width = self.levels + 1
            pair = width + self._prev * width + band
            score = ((band not in seen) + (pair not in seen)) * 0.5
        self._pending = (lo, hi, band, pair, 0)
        return score if self.n + 1 >= _WARMUP else 0.0

    def _commit(self) -> None:
        if self._pending is None:
            return
        self._lo, self._hi, band, pair, _ = self._pending
        self._pending = None
        self.n += 1
        self._prev = band
        self._seen.add(band)
        if pair >= 0:
            self._seen.add(pair)


class ResidualNoveltyDetector(_Base):
    """The default detector: residual rank and pattern novelty blended, repeats suppressed.

    The residual comes from two ``ResidualDetector``: one with a daily season, one with a weekly
    season; once the weekly one has seen two weeks, the one whose forecast has been better (by
    running squared error) gives the rank. ``weight`` is the residual's share of the blend; a
    blend passes only above the running peak of earlier blends, which decays by ``decay`` per
    row (0.9995: an incident's echo fades over a few thousand rows), and is 0 otherwise.
    ``memory`` is the residual ranks' half-life.
    """

    def __init__(
        self,
        *,
        season_length: int | None = None,
        weight: float = 0.93,
        decay: float = 0.9995,
        levels: int = 10,
        magnitude: float = 0.0,
        memory: int = 500,
    ) -> None:
        super().__init__()
        self.weight = check_real("weight", weight, 0, 1)
        self.decay = check_real("decay", decay, 0, 1)
        self.daily = ResidualDetector(
            season_length=season_length, magnitude=magnitude, memory=memory
        )
        weekly = None if season_length is None else 7 * season_length
        self.weekly = ResidualDetector(
            season_length=weekly if weekly is None or weekly <= _MAX_SEASON else 0,
            season_days=7,
            magnitude=magnitude,
            memory=memory,
        )
        self.novelty = PatternNoveltyDetector(levels=levels)
        self.residual = self.daily  # the one that gave the last rank
        self._use_weekly = False
        self._peak = 0.0
        self.blend = 0.0

    def _evaluate(self, value: float, ts: float | None) -> float:
        daily, weekly = self.daily, self.weekly
        rank_daily = daily._evaluate(value, ts)
        rank_weekly = weekly._evaluate(value, ts)
        if self._use_weekly:
            rank, self.residual = rank_weekly, weekly
        else:
            rank, self.residual = rank_daily, daily
        w = self.weight
        blend = w * rank + (1 - w) * self.novelty._evaluate(value, ts)
        self.blend = blend
        return blend if blend > self._peak else 0.0

    def _commit(self) -> None:
        daily, weekly = self.daily, self.weekly
        daily._commit()
        weekly._commit()
        self.novelty._commit()
        peak = self._peak * self.decay
        self._peak = self.blend if self.blend > peak else peak
        # Which residual view scores the next row: decided on the state after this one.
        self._use_weekly = (
            weekly.n > _WEEKS_BEFORE_CHOICE * weekly.season_length
            and weekly.forecast_error < daily.forecast_error
        )

    @property
    def expected(self) -> float:
        return self.residual.expected


def score_series(
    detector: StreamingDetector, values: Iterator[float] | list[float], timestamps: Any = None
) -> list[float]:
    """Score a whole series causally (score each row, then learn it), row by row."""
    step = getattr(detector, "score_learn_one", None)
    out = []
    if timestamps is None:
        for v in values:
            if step is not None:
                out.append(step(v))
            else:
                out.append(detector.score_one(v))
                detector.learn_one(v)
        return out
    for v, t in zip(values, timestamps, strict=True):
        x = {"value": v, "timestamp": t}
        if step is not None:
            out.append(step(x))
        else:
            out.append(detector.score_one(x))
            detector.learn_one(x)
    return out
