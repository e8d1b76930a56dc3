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
from collections.abc import Callable, Iterator, Mapping
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
    """The score_one / learn_one split over one ``_step`` that scores and updates together."""

    def __init__(self) -> None:
        self._pending: tuple[Observation, float, Callable[[], None]] | None = None

    def _evaluate(self, value: float, ts: float | None) -> tuple[float, Callable[[], None]]:
        raise NotImplementedError

    def score_one(self, x: Observation) -> float:
        """The anomaly score of ``x`` in [0, 1], without learning it."""
        value, ts = _value_time(x)
        score, commit = self._evaluate(value, ts)
        self._pending = (x, score, commit)
        return score

    def learn_one(self, x: Observation) -> None:
        """Fold ``x`` into the state (reusing the work of a ``score_one(x)`` just before)."""
        pending = self._pending
        self._pending = None
        if pending is not None and pending[0] is x:
            pending[2]()
            return
        value, ts = _value_time(x)
        self._evaluate(value, ts)[1]()

    def score_learn_one(self, x: Observation) -> float:
        """``score_one(x)`` then ``learn_one(x)``: the score of ``x`` before it was learnt."""
        value, ts = _value_time(x)
        score, commit = self._evaluate(value, ts)
        commit()
        self._pending = None
        return score


class ResidualDetector(_Base):
    """The residual of a level-or-seasonal forecast, as a z ranked against its own history.

    ``level_alpha`` is the weight of the newest value in the level, ``scale_alpha`` that of the
    newest squared residual in the scale, ``season_alpha`` that of the newest value in its
    phase's seasonal profile; ``season_length`` (rows per day) is taken from the first two
    timestamps when not given, and 0 turns the season off. The rank uses ``bins`` bins of
    ``bin_width`` z each (memory independent of the series' length).
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
    ) -> None:
        super().__init__()
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
        self._tree = [0] * (self.bins + 1)
        # What the last evaluation saw, for AnomalyResult: the forecast, the z, which baseline.
        self.expected = math.nan
        self.z = 0.0
        self.baseline = "level"

    @property
    def season_length(self) -> int:
        """Rows per season (0: no season), once known."""
        return self._season or 0

    def _prefix(self, b: int) -> int:
        total, tree = 0, self._tree
        while b > 0:
            total += tree[b]
            b -= b & -b
        return total

    def _evaluate(self, value: float, ts: float | None) -> tuple[float, Callable[[], None]]:
        n = self.n + 1
        if self._season is None and ts is not None:
            if self._first_ts is None:
                self._first_ts = ts
            elif ts > self._first_ts:
                rows = round(86400.0 / (ts - self._first_ts))
                self._season = rows if 1 < rows <= _MAX_SEASON else 0
        level = value if self._level is None else self._level
        r = value - level
        sd = math.sqrt(self._var)
        z = abs(r) / sd if sd > 0 else (0.0 if r == 0 else 50.0)
        expected, baseline = level, "level"
        season = self._season or 0
        phase = n % season if season else 0
        seasonal = self._profile[phase] if season and len(self._profile) == season else None
        rs = 0.0
        if seasonal is not None:
            rs = value - seasonal
            sds = math.sqrt(self._season_var)
            zs = abs(rs) / sds if sds > 0 else (0.0 if rs == 0 else 50.0)
            if n > 2 * season and self._err_season < self._err_level:
                z, expected, baseline = zs, seasonal, "seasonal"
        raw = min(z, 49.0)
        b = min(int(raw / self.bin_width), self.bins - 1)
        seen = self.n
        if seen > 0:
            below = self._prefix(b)
            at = self._prefix(b + 1) - below
            rank = (below + 0.5 * at) / seen
        else:
            rank = 0.0
        if self.magnitude:
            # The rank saturates at 1 for every record; a share of the z itself keeps a far
            # larger deviation above a slightly larger one.
            rank = (1 - self.magnitude) * rank + self.magnitude * (1 - math.exp(-raw / 8.0))
        score = rank if n >= _WARMUP else 0.0
        self.expected, self.z, self.baseline = expected, raw, baseline

        def commit() -> None:
            self.n = n
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
            i, tree = b + 1, self._tree
            while i <= self.bins:
                tree[i] += 1
                i += i & -i

        return score, commit


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
        self._prev: int | None = None
        self._seen: set[int] = set()

    def _evaluate(self, value: float, ts: float | None) -> tuple[float, Callable[[], None]]:
        n = self.n + 1
        lo, hi = min(self._lo, value), max(self._hi, value)
        span = hi - lo
        band = int((value - lo) / span * self.levels) if span > 0 else 0
        width = self.levels + 1
        keys = [band] if self._prev is None else [band, width + self._prev * width + band]
        novel = sum(1 for k in keys if k not in self._seen)
        score = novel / len(keys) if n >= _WARMUP else 0.0

        def commit() -> None:
            self.n, self._lo, self._hi, self._prev = n, lo, hi, band
            self._seen.update(keys)

        return score, commit


class ResidualNoveltyDetector(_Base):
    """The default detector: residual rank and pattern novelty blended, repeats suppressed.

    ``weight`` is the residual's share of the blend; a blend passes only above the running peak
    of earlier blends, which decays by ``decay`` per row (0.9995: an incident's echo fades over
    a few thousand rows), and is 0 otherwise.
    """

    def __init__(
        self,
        *,
        season_length: int | None = None,
        weight: float = 0.93,
        decay: float = 0.9995,
        levels: int = 10,
        magnitude: float = 0.0,
    ) -> None:
        super().__init__()
        self.weight = check_real("weight", weight, 0, 1)
        self.decay = check_real("decay", decay, 0, 1)
        self.residual = ResidualDetector(season_length=season_length, magnitude=magnitude)
        self.novelty = PatternNoveltyDetector(levels=levels)
        self._peak = 0.0
        self.blend = 0.0

    def _evaluate(self, value: float, ts: float | None) -> tuple[float, Callable[[], None]]:
        s1, c1 = self.residual._evaluate(value, ts)
        s2, c2 = self.novelty._evaluate(value, ts)
        blend = self.weight * s1 + (1 - self.weight) * s2
        score = blend if blend > self._peak else 0.0
        self.blend = blend

        def commit() -> None:
            c1()
            c2()
            self._peak = max(blend, self._peak * self.decay)

        return score, commit

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
