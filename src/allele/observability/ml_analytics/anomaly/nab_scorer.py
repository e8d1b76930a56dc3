"""NAB's scoring rules, reproduced exactly (Lavin & Ahmad 2015; NAB's ``sweeper.py``).

How a series is scored, given anomaly windows ``[start, end]`` (timestamps that occur in the
series) and a detector's per-row score in [0, 1]:

- the first ``min(floor(0.15 n), 750)`` rows are probationary and never scored;
- every row gets a *sweep score*: inside a window of width ``w`` whose right edge is row ``r``,
  row ``i`` earns ``A_TP * σ(-(r - i + 1) / w) / σ(-1)`` where ``σ(x) = 2 / (1 + e^(5x)) - 1``
  (so the earliest row of a window earns exactly ``A_TP``); outside windows a row costs
  ``A_FP * σ(|i - r_prev| / (w_prev - 1))`` relative to the preceding window (``σ = -1`` beyond
  three widths, and before any window);
- at a threshold ``θ`` the rows with score ``>= θ`` are detections; a window contributes the
  sweep score of its earliest detection (the largest) or ``-A_FN`` without one, and every
  detection outside a window adds its (negative) sweep score;
- NAB picks, per profile, the threshold that maximises the total over the corpus (ties go to
  the higher threshold), and normalises ``100 (S - S_null) / (S_perfect - S_null)`` where the
  null detector never fires (``-A_FN`` per window) and the perfect one earns ``A_TP`` per window.

The sweep over thresholds is vectorised: rows sorted by score once, false-positive costs summed
cumulatively, and each window's best detection tracked as a running maximum within the window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from allele.errors import ValidationError

FloatArray = npt.NDArray[np.float64]

PROBATION_PERCENT = 0.15


@dataclass(frozen=True)
class Profile:
    """One of NAB's application profiles: the weights of a true positive, FP and FN."""

    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float


PROFILES: dict[str, Profile] = {
    "standard": Profile("standard", 1.0, 0.11, 1.0),
    "reward_low_FP_rate": Profile("reward_low_FP_rate", 1.0, 0.22, 1.0),
    "reward_low_FN_rate": Profile("reward_low_FN_rate", 1.0, 0.11, 2.0),
}


def probationary_length(n: int) -> int:
    """NAB's unscored prefix: 15% of the rows, at most 750 (``0.15 * 5000``)."""
    return int(min(math.floor(PROBATION_PERCENT * n), PROBATION_PERCENT * 5000))


def _scaled_sigmoid(position: FloatArray) -> FloatArray:
    # 2 * sigmoid(-5 x) - 1, written through tanh (the same function, no overflow), and -1
    # beyond three widths past a window (strictly beyond: NAB's own results have the sigmoid's
    # value at exactly 3.0).
    out = -np.tanh(2.5 * position)
    out[position > 3.0] = -1.0
    return out


@dataclass(frozen=True)
class ScoredSeries:
    """One series prepared for scoring: each row's sweep score and window (-1 outside)."""

    name: str
    sweep: FloatArray  # per-row weighted score, probationary rows included
    window_of: npt.NDArray[np.int64]  # window index per row, -1 outside every window
    scorable: npt.NDArray[np.bool_]  # False for the probationary rows
    n_windows: int


def window_indices(
    timestamps: Sequence[str], windows: Sequence[tuple[str, str]], name: str = ""
) -> list[tuple[int, int]]:
    """Each window's ``(first_row, last_row)``; both timestamps must occur in the series.

    Timestamps compare as instants, so ``2014-04-10 07:15:00`` matches
    ``2014-04-10 07:15:00.000000`` (the labels' spelling).
    """
    from datetime import datetime

    position = {datetime.fromisoformat(t): i for i, t in enumerate(timestamps)}
    out = []
    for start, end in windows:
        try:
            lo = position[datetime.fromisoformat(start)]
            hi = position[datetime.fromisoformat(end)]
        except KeyError as exc:
            raise ValidationError(
                f"window [{start}, {end}] of {name or 'the series'} names a timestamp that is "
                f"not in the series: {exc.args[0]}"
            ) from None
        if hi < lo:
            raise ValidationError(f"window [{start}, {end}] of {name} ends before it starts")
        out.append((lo, hi))
    return sorted(out)


def sweep_scores(
    n: int, windows: Sequence[tuple[int, int]], profile: Profile, name: str = ""
) -> ScoredSeries:
    """The sweep score of every row of an ``n``-row series with these (row-index) windows."""
    idx = np.arange(n, dtype=np.float64)
    sweep = np.empty(n)
    window_of = np.full(n, -1, dtype=np.int64)
    max_tp = float(-np.tanh(2.5 * -1.0))
    # Rows before the first window are "far past" any window: the full FP cost.
    prev_right: int | None = None
    prev_width = 0.0
    cursor = 0
    for w, (lo, hi) in enumerate(windows):
        _fill_fp(sweep, idx, cursor, lo, prev_right, prev_width, profile)
        width = float(hi - lo + 1)
        position = -(hi - idx[lo : hi + 1] + 1) / width
        sweep[lo : hi + 1] = _scaled_sigmoid(position) * profile.tp_weight / max_tp
        window_of[lo : hi + 1] = w
        prev_right, prev_width, cursor = hi, width, hi + 1
    _fill_fp(sweep, idx, cursor, n, prev_right, prev_width, profile)
    scorable = np.arange(n) >= probationary_length(n)
    return ScoredSeries(name, sweep, window_of, scorable, len(windows))


def _fill_fp(
    sweep: FloatArray,
    idx: FloatArray,
    lo: int,
    hi: int,
    prev_right: int | None,
    prev_width: float,
    profile: Profile,
) -> None:
    if hi <= lo:
        return
    if prev_right is None:
        sweep[lo:hi] = -profile.fp_weight
        return
    # A one-row window would divide by zero in NAB too; treat its FPs as far away.
    distance = (
        np.abs(prev_right - idx[lo:hi]) / (prev_width - 1)
        if prev_width > 1
        else np.full(hi - lo, 3.0)
    )
    sweep[lo:hi] = _scaled_sigmoid(distance) * profile.fp_weight


@dataclass(frozen=True)
class ThresholdScore:
    """The score of a set of series at one threshold, and its row counts."""

    threshold: float
    score: float
    tp: int
    tn: int
    fp: int
    fn: int


def scores_by_threshold(
    series: Sequence[ScoredSeries], anomaly_scores: Sequence[FloatArray], profile: Profile
) -> list[ThresholdScore]:
    """NAB's sweep: the total score at every distinct threshold, highest threshold first.

    The first entry (threshold 1.1) has no detection at all; each later one makes active every
    row whose score is at least its threshold.
    """
    sweeps, windows, scores = [], [], []
    offset = 0
    n_windows = 0
    for s, a in zip(series, anomaly_scores, strict=True):
        a = np.asarray(a, dtype=np.float64)
        if a.shape != s.sweep.shape:
            raise ValidationError(
                f"{s.name}: {a.shape[0]} anomaly scores for {s.sweep.shape[0]} rows"
            )
        keep = s.scorable
        sweeps.append(s.sweep[keep])
        w = s.window_of[keep]
        windows.append(np.where(w >= 0, w + offset, -1))
        scores.append(a[keep])
        offset += s.n_windows
        n_windows += s.n_windows
    sweep = np.concatenate(sweeps) if sweeps else np.empty(0)
    window = np.concatenate(windows) if windows else np.empty(0, dtype=np.int64)
    score = np.concatenate(scores) if scores else np.empty(0)
    # A window that lies wholly in a probationary period is not scored at all (NAB only knows
    # windows through their scorable rows).
    live_windows = np.unique(window[window >= 0])
    base = -profile.fn_weight * len(live_windows)
    order = np.argsort(-score, kind="stable")
    sweep, window, score = sweep[order], window[order], score[order]
    in_window = window >= 0
    # Per-row change of the total when the row becomes active: an FP adds its sweep score; a
    # window row raises its window's contribution from the best so far (initially -A_FN).
    delta = np.where(in_window, 0.0, sweep)
    for w in live_windows:
        rows = np.flatnonzero(window == w)
        best = np.maximum.accumulate(np.maximum(sweep[rows], -profile.fn_weight))
        delta[rows] = np.diff(best, prepend=-profile.fn_weight)
    total = base + np.cumsum(delta)
    tp = np.cumsum(in_window)
    fp = np.cumsum(~in_window)
    n_in, n_out = int(in_window.sum()), int((~in_window).sum())
    out = [ThresholdScore(1.1, base, 0, n_out, 0, n_in)]
    if score.size:
        # The state after the last row of each run of equal scores is that threshold's.
        ends = np.flatnonzero(np.append(score[1:] != score[:-1], True))
        for k in ends:
            out.append(
                ThresholdScore(
                    float(score[k]),
                    float(total[k]),
                    int(tp[k]),
                    n_out - int(fp[k]),
                    int(fp[k]),
                    n_in - int(tp[k]),
                )
            )
    return out


def score_at(
    series: ScoredSeries, anomaly_scores: FloatArray, threshold: float, profile: Profile
) -> ThresholdScore:
    """One series' score at ``threshold`` (detections are the rows scoring ``>= threshold``)."""
    table = scores_by_threshold([series], [anomaly_scores], profile)
    # NAB: the entry at exactly this threshold, else the last one above it.
    chosen = table[0]
    for row in table:
        if row.threshold < threshold:
            break
        chosen = row
    return chosen


def best_threshold(
    series: Sequence[ScoredSeries], anomaly_scores: Sequence[FloatArray], profile: Profile
) -> ThresholdScore:
    """The threshold that maximises the corpus total (the highest one among equals)."""
    table = scores_by_threshold(series, anomaly_scores, profile)
    best = table[0]
    for row in table[1:]:
        if row.score > best.score:
            best = row
    return best


def normalised(total: float, n_windows: int, profile: Profile) -> float:
    """``100 (S - S_null) / (S_perfect - S_null)`` over a corpus with ``n_windows`` windows."""
    null = -profile.fn_weight * n_windows
    perfect = profile.tp_weight * n_windows
    if perfect == null:
        raise ValidationError("a corpus without anomaly windows cannot be normalised")
    return 100.0 * (total - null) / (perfect - null)


def window_map(labels: Mapping[str, Sequence[Sequence[str]]]) -> dict[str, list[tuple[str, str]]]:
    """NAB's ``combined_windows.json`` content as ``{relative_path: [(start, end), ...]}``."""
    out: dict[str, list[tuple[str, str]]] = {}
    for path, windows in labels.items():
        pairs = []
        for w in windows:
            if len(w) != 2:
                raise ValidationError(f"window {w!r} of {path} must be [start, end]")
            pairs.append((str(w[0]), str(w[1])))
        out[path] = pairs
    return out
