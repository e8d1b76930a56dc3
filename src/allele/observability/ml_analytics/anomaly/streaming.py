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
    phase's seasonal profile; ``season_length`` (rows per day) is taken from the first two
    timestamps when not given, and 0 turns the season off. The rank uses ``bins`` bins of
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
    ) -> None:
        super().__init__()
        self.memory = check_int("memory", memory, 0, 10**9)
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
        self._profile: list[float | None] = []
        self._season_var = 0.0
        self._err_level = 0.0
        self._err_season = 0.0
        # A Fenwick tree over the z bins: prefix counts in O(log bins) per row.
        self._tree = [0.0] * (self.bins + 1)
        self._counts = [0.0] * self.bins
        self._count = 0.0
        # What the last evaluation saw, for AnomalyResult: the forecast, the z, which baseline.
        self.expected = math.nan
        self.z = 0.0
        self.baseline = "level"
        self._pending: tuple[float, float, int, int, float | None, float, int] | None = None

    @property
    def season_length(self) -> int:
        """Rows per season (0: no season), once known."""
        return self._season or 0

    def _evaluate(self, value: float, ts: float | None) -> float:
        n = self.n + 1
        if self._season is None and ts is not None:
            if self._first_ts is None:
                self._first_ts = ts
            elif ts > self._first_ts:
                rows = round(86400.0 / (ts - self._first_ts))
                self._season = rows if 1 < rows <= _MAX_SEASON else 0
        level = value if self._level is None else self._level
        r = value - level
        var = self._var
        z = abs(r) / math.sqrt(var) if var > 0 else (0.0 if r == 0 else 50.0)
        expected, baseline = level, "level"
        season = self._season or 0
        phase = n % season if season else 0
        seasonal = self._profile[phase] if season and len(self._profile) == season else None
        rs = 0.0
        if seasonal is not None:
            rs = value - seasonal
            sv = self._season_var
            if n > 2 * season and self._err_season < self._err_level:
                z = abs(rs) / math.sqrt(sv) if sv > 0 else (0.0 if rs == 0 else 50.0)
                expected, baseline = seasonal, "seasonal"
        raw = z if z < 49.0 else 49.0
        b = int(raw / self.bin_width)
        if b >= self.bins:
            b = self.bins - 1
        seen = self._count
        if seen > 0:
            # The Fenwick prefix sum below bin b, inlined (the hot loop), plus half the bin.
            tree, below, i = self._tree, 0.0, b
            while i > 0:
                below += tree[i]
                i -= i & -i
            rank = (below + 0.5 * self._counts[b]) / seen
        else:
            rank = 0.0
        if self.magnitude:
            rank = (1 - self.magnitude) * rank + self.magnitude * (1 - math.exp(-raw / 8.0))
        self.expected, self.z, self.baseline = expected, raw, baseline
        self._pending = (value, r, b, phase, seasonal, rs, season)
        return rank if n >= _WARMUP else 0.0

    def _commit(self) -> None:
        if self._pending is None:
            return
        value, r, b, phase, seasonal, rs, season = self._pending
        self._pending = None
        n = self.n = self.n + 1
        if self._level is None:
            self._level = value
        if season:
            if len(self._profile) != season:
                self._profile = [None] * season
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
        i, tree, bins = b + 1, self._tree, self.bins
        while i <= bins:
            tree[i] += 1.0
            i += i & -i
        self._counts[b] += 1.0
        self._count += 1.0
        if self.memory and n % self.memory == 0:
            # Halve every count: the rank forgets old rows with a half-life of `memory` rows.
            self._tree = [v * 0.5 for v in tree]
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

    ``weight`` is the residual's share of the blend; a blend passes only above the running peak
    of earlier blends, which decays by ``decay`` per row (0.9995: an incident's echo fades over
    a few thousand rows), and is 0 otherwise. ``memory`` is the residual rank's half-life.
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
        self.residual = ResidualDetector(
            season_length=season_length, magnitude=magnitude, memory=memory
        )
        self.novelty = PatternNoveltyDetector(levels=levels)
        self._peak = 0.0
        self.blend = 0.0

    def _evaluate(self, value: float, ts: float | None) -> float:
        w = self.weight
        blend = w * self.residual._evaluate(value, ts) + (1 - w) * self.novelty._evaluate(value, ts)
        self.blend = blend
        return blend if blend > self._peak else 0.0

    def _commit(self) -> None:
        self.residual._commit()
        self.novelty._commit()
        peak = self._peak * self.decay
        self._peak = self.blend if self.blend > peak else peak

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
