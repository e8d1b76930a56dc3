"""The NAB harness: run a detector over a NAB-layout corpus, write NAB's result files, score.

``run_nab(data_dir, labels_path, output_dir, detector)`` reads every ``<category>/<name>.csv``
(columns ``timestamp,value``) under ``data_dir``, scores it causally with a fresh detector,
writes ``<output>/<detector>/<category>/<detector>_<name>.csv`` with columns
``timestamp,value,anomaly_score,label`` (as NAB's own results), picks each profile's threshold
over the whole corpus as NAB does, and returns the normalised scores, per category and in total
(``nab_scorer`` holds the rules).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from allele.errors import ValidationError
from allele.observability.ml_analytics.anomaly.nab_scorer import (
    PROFILES,
    FloatArray,
    ScoredSeries,
    best_threshold,
    normalised,
    score_at,
    sweep_scores,
    window_indices,
    window_map,
)
from allele.observability.ml_analytics.anomaly.streaming import (
    PatternNoveltyDetector,
    ResidualDetector,
    ResidualNoveltyDetector,
    StreamingDetector,
    score_series,
)

DEFAULT_DETECTOR = "residual_novelty"

# Each streaming detector the harness can run, by name; a fresh one per series.
DETECTORS: dict[str, Callable[[], StreamingDetector]] = {
    "residual_novelty": ResidualNoveltyDetector,
    "residual": ResidualDetector,
    "novelty": PatternNoveltyDetector,
}


@dataclass
class NabSeries:
    """One series of the corpus: its rows, its windows (row indices) and its scores."""

    relative: str  # "<category>/<name>.csv", the key of the labels file
    timestamps: list[str]
    values: FloatArray
    windows: list[tuple[int, int]]
    scores: FloatArray = field(default_factory=lambda: np.empty(0))

    @property
    def category(self) -> str:
        return self.relative.split("/", 1)[0]


@dataclass
class ProfileResult:
    """One profile's threshold, its normalised total and per-category and per-series scores."""

    profile: str
    threshold: float
    raw_total: float
    normalised: float
    categories: dict[str, float | None]  # normalised; None for a category without windows
    category_raw: dict[str, float]
    series: dict[str, float]


@dataclass
class NabReport:
    detector: str
    profiles: dict[str, ProfileResult]
    n_series: int
    n_rows: int
    n_windows: int
    detect_seconds: float


def load_corpus(data_dir: str | Path, labels_path: str | Path) -> list[NabSeries]:
    """Every ``<category>/<name>.csv`` under ``data_dir`` with its windows from the labels."""
    root = Path(data_dir)
    if not root.is_dir():
        raise ValidationError(f"--data must be a directory of NAB series, got {str(root)!r}")
    try:
        labels = window_map(json.loads(Path(labels_path).read_text()))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValidationError(
            f"--labels must be NAB's combined_windows.json, could not read {labels_path}: {exc}"
        ) from None
    paths = sorted(root.glob("*/*.csv"))
    if not paths:
        raise ValidationError(f"no <category>/<name>.csv under {root}")
    corpus = []
    for path in paths:
        relative = f"{path.parent.name}/{path.name}"
        if relative not in labels:
            raise ValidationError(f"{relative} has no entry in the labels file {labels_path}")
        timestamps, values = [], []
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or not {"timestamp", "value"} <= set(reader.fieldnames):
                raise ValidationError(
                    f"{relative} must have columns timestamp,value, got {reader.fieldnames}"
                )
            for row in reader:
                timestamps.append(row["timestamp"])
                values.append(float(row["value"]))
        corpus.append(
            NabSeries(
                relative,
                timestamps,
                np.asarray(values, dtype=np.float64),
                window_indices(timestamps, labels[relative], relative),
            )
        )
    return corpus


def detect(corpus: list[NabSeries], detector: str = DEFAULT_DETECTOR) -> float:
    """Score every series with a fresh ``detector``; returns the seconds it took."""
    factory = DETECTORS.get(detector)
    if factory is None:
        raise ValidationError(f"unknown detector {detector!r}; choose one of {sorted(DETECTORS)}")
    start = time.perf_counter()
    for series in corpus:
        epoch = [datetime.fromisoformat(t).timestamp() for t in series.timestamps]
        scores = score_series(factory(), series.values.tolist(), epoch)
        series.scores = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    return time.perf_counter() - start


def score(corpus: list[NabSeries], detector: str, detect_seconds: float = 0.0) -> NabReport:
    """NAB's threshold choice and normalised scores, per profile, category and series."""
    n_windows = sum(len(s.windows) for s in corpus)
    results = {}
    for name, profile in PROFILES.items():
        prepared: list[ScoredSeries] = [
            sweep_scores(len(s.values), s.windows, profile, s.relative) for s in corpus
        ]
        scores = [s.scores for s in corpus]
        best = best_threshold(prepared, scores, profile)
        per_series = {
            s.relative: score_at(p, s.scores, best.threshold, profile).score
            for s, p in zip(corpus, prepared, strict=True)
        }
        category_raw: dict[str, float] = {}
        category_windows: dict[str, int] = {}
        for s in corpus:
            category_raw[s.category] = category_raw.get(s.category, 0.0) + per_series[s.relative]
            category_windows[s.category] = category_windows.get(s.category, 0) + len(s.windows)
        categories = {
            c: normalised(total, category_windows[c], profile) if category_windows[c] else None
            for c, total in category_raw.items()
        }
        results[name] = ProfileResult(
            name,
            best.threshold,
            best.score,
            normalised(best.score, n_windows, profile),
            categories,
            category_raw,
            per_series,
        )
    return NabReport(
        detector,
        results,
        len(corpus),
        sum(len(s.values) for s in corpus),
        n_windows,
        detect_seconds,
    )


def write_results(corpus: list[NabSeries], output_dir: str | Path, detector: str) -> Path:
    """NAB's result files: ``<output>/<detector>/<category>/<detector>_<name>.csv``."""
    base = Path(output_dir) / detector
    for s in corpus:
        label = np.zeros(len(s.values), dtype=np.int64)
        for lo, hi in s.windows:
            label[lo : hi + 1] = 1
        category, name = s.relative.split("/", 1)
        path = base / category / f"{detector}_{name}"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["timestamp", "value", "anomaly_score", "label"])
            for t, v, a, lab in zip(s.timestamps, s.values, s.scores, label, strict=True):
                writer.writerow([t, repr(float(v)), repr(float(a)), int(lab)])
    return base


def run_nab(
    data_dir: str | Path,
    labels_path: str | Path,
    output_dir: str | Path,
    detector: str = DEFAULT_DETECTOR,
) -> NabReport:
    """Load, detect, write NAB's result files and score: the whole harness."""
    if detector not in DETECTORS:
        raise ValidationError(f"unknown detector {detector!r}; choose one of {sorted(DETECTORS)}")
    corpus = load_corpus(data_dir, labels_path)
    seconds = detect(corpus, detector)
    write_results(corpus, output_dir, detector)
    report = score(corpus, detector, seconds)
    write_scores(report, Path(output_dir) / detector)
    return report


def write_scores(report: NabReport, directory: Path) -> None:
    """``<detector>_<profile>_scores.csv``: one row per series at the chosen threshold."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, result in report.profiles.items():
        with (directory / f"{report.detector}_{name}_scores.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["Detector", "Profile", "File", "Threshold", "Score"])
            for relative, value in result.series.items():
                writer.writerow([report.detector, name, relative, result.threshold, value])
            writer.writerow([report.detector, name, "Totals", result.threshold, result.raw_total])


# NAB's published detectors on the 35 series of shared/data/nab (standard, low FP, low FN),
# from that folder's README, to print beside ours.
PUBLISHED: dict[str, tuple[float, float, float]] = {
    "ARTime": (67.54, 56.59, 73.51),
    "Numenta HTM": (66.47, 59.97, 70.98),
    "HTM Java": (61.67, 48.19, 67.17),
    "CAD OSE": (61.20, 56.94, 66.31),
    "KNN CAD": (52.97, 40.14, 59.56),
    "Relative Entropy": (50.01, 41.64, 54.55),
    "Random Cut Forest": (47.97, 31.72, 55.20),
    "earthgecko Skyline": (47.46, 37.87, 52.25),
    "Twitter ADVec": (36.18, 22.78, 42.91),
    "Etsy Skyline": (33.76, 25.39, 38.26),
    "Windowed Gaussian": (21.93, 4.87, 29.17),
    "Bayesian changepoint": (13.60, -0.42, 33.74),
    "Null": (0.0, 0.0, 0.0),
}


def format_report(report: NabReport, *, published: bool = True) -> str:
    """The scores as a markdown table: totals (beside the published detectors), categories."""
    names = list(PROFILES)
    p = report.profiles
    lines = [
        f"NAB: {report.n_series} series, {report.n_rows} rows, {report.n_windows} windows; "
        f"detection {report.detect_seconds:.2f} s",
        "",
        "| detector | standard | reward_low_FP | reward_low_FN |",
        "|---|---|---|---|",
        f"| **{report.detector}** (ours) | "
        + " | ".join(f"**{p[n].normalised:.2f}**" for n in names)
        + " |",
    ]
    if published:
        for name, values in PUBLISHED.items():
            lines.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
    lines += [
        "",
        "thresholds: " + ", ".join(f"{n} {p[n].threshold:.4f}" for n in names),
        "",
        "| category | standard | reward_low_FP | reward_low_FN |",
        "|---|---|---|---|",
    ]
    for category in p[names[0]].categories:
        cells = []
        for n in names:
            value = p[n].categories[category]
            cells.append(
                f"{value:.2f}" if value is not None else f"raw {p[n].category_raw[category]:.2f}"
            )
        lines.append(f"| {category} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
