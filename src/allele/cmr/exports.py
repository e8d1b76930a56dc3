"""The CMR monitor's CSV exports, in the design documents' format: one file per history."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from allele.cmr.health import HealthReport
from allele.cmr.stats import ForwardRecord


def export_csv(
    directory: str | Path,
    history: Iterable[tuple[float, ForwardRecord]],
    health_history: Iterable[HealthReport],
    error_log: Iterable[tuple[float, str]],
    resource_history: Iterable[Mapping[str, Any]],
) -> dict[str, Path]:
    """Write the CSV exports into ``directory``: ``performance.csv`` (one row per forward
    pass), ``health.csv`` (one per health check), ``errors.csv``, ``resources.csv``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / f"{name}.csv" for name in ("performance", "health", "errors", "resources")}
    _write_csv(
        paths["performance"],
        [
            "timestamp",
            "duration_s",
            "batch",
            "positions",
            "captured",
            "stored",
            "reconstructions",
            "retrieval_hits",
            "retrieval_queries",
            "memory_entries",
            "error",
        ],
        (
            [
                _iso(t),
                r.duration_s,
                r.batch,
                r.positions,
                r.total_captured,
                r.total_stored,
                r.total_reconstructions,
                r.retrieval_hits,
                r.retrieval_queries,
                r.memory_entries,
                r.error or "",
            ]
            for t, r in history
        ),
    )
    _write_csv(
        paths["health"],
        [
            "timestamp",
            "status",
            "system_health",
            "score",
            "memory_buffer",
            "retrieval_system",
            "reconstruction",
            "hooks",
        ],
        (
            [
                h.timestamp.isoformat(),
                h.status,
                h.system_health,
                h.score,
                h.components["memory_buffer"],
                h.components["retrieval_system"],
                h.components["reconstruction"],
                h.components["hooks"],
            ]
            for h in health_history
        ),
    )
    _write_csv(paths["errors"], ["timestamp", "error"], ([_iso(t), e] for t, e in error_log))
    _write_csv(
        paths["resources"],
        [
            "timestamp",
            "process_rss_bytes",
            "process_cpu_seconds",
            "memory_buffer_mb",
            "memory_entries",
        ],
        (
            [
                _iso(r["timestamp"]),
                r["process_rss_bytes"],
                r["process_cpu_seconds"],
                r["memory_buffer_mb"],
                r["memory_entries"],
            ]
            for r in resource_history
        ),
    )
    return paths


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _write_csv(path: Path, header: Sequence[str], rows: Any) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
