"""Store speed: batched SQLite ingestion and reading an hour of a 1 s series with percentiles.

Ours is ``Store.write_batches`` / ``Store.aggregate``; the anchor is raw ``sqlite3`` on the same
schema and the same file settings (WAL, synchronous=NORMAL): ``executemany`` of the same rows,
and a plain SELECT plus ``numpy.percentile``. Each repeat ingests into a fresh database.

    python benchmarks/bench_store.py            # 1M points, 5 repeats
    python benchmarks/bench_store.py --quick    # 200k points, 3 repeats
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from allele.observability.store import open_store
from allele.observability.store.repository.store import labels_to_text
from allele.observability.types import MetricType, SeriesBatch, SeriesKey

N_SERIES = 100
BATCH_POINTS = 10_000
T0 = 1_700_000_000.0
ROW = np.dtype([("s", "i8"), ("t", "f8"), ("v", "f8")])


def make_batches(total_points: int) -> list[list[SeriesBatch]]:
    """Write calls of BATCH_POINTS points each, spread over N_SERIES series."""
    rng = np.random.default_rng(0)
    keys = [
        SeriesKey("latency_s", (("series", f"s{i:03d}"),), MetricType.TIMER)
        for i in range(N_SERIES)
    ]
    per_series = BATCH_POINTS // N_SERIES
    calls = []
    for call in range(total_points // BATCH_POINTS):
        base = T0 + call * per_series
        calls.append(
            [
                SeriesBatch(key, base + np.arange(per_series, dtype=float), rng.random(per_series))
                for key in keys
            ]
        )
    return calls


def ingest_ours(path: Path, calls: list[list[SeriesBatch]]) -> float:
    store = open_store(f"sqlite:///{path}")
    start = time.perf_counter()
    for batches in calls:
        store.write_batches(batches)
    elapsed = time.perf_counter() - start
    store.close()
    return elapsed


def ingest_raw(path: Path, calls: list[list[SeriesBatch]]) -> float:
    open_store(f"sqlite:///{path}").close()  # same schema, made by the migrations
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    ids: dict[SeriesKey, int] = {}
    for key in (b.key for b in calls[0]):
        cursor = conn.execute(
            "INSERT INTO obs_series (name, labels, kind) VALUES (?, ?, ?)",
            (key.name, labels_to_text(key.labels), str(key.kind)),
        )
        ids[key] = int(cursor.lastrowid or 0)
    start = time.perf_counter()
    for batches in calls:
        # The fastest row building we know (the same one the store uses), so that the ratio
        # measures the store's own overhead rather than tuple construction.
        rows_array = np.empty(sum(b.values.size for b in batches), dtype=ROW)
        rows_array["s"] = np.repeat([ids[b.key] for b in batches], [b.values.size for b in batches])
        rows_array["t"] = np.concatenate([b.timestamps for b in batches])
        rows_array["v"] = np.concatenate([b.values for b in batches])
        rows = rows_array.tolist()
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO obs_points (series_id, ts, value) VALUES (?, ?, ?)", rows)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def read_hour(path: Path, repeats: int) -> tuple[list[float], list[float], int]:
    """Times (ms) of ours and of raw sqlite3 reading one hour of a 1 s series + percentiles."""
    store = open_store(f"sqlite:///{path}")
    key = SeriesKey("cpu_percent", (("host", "bench"),), MetricType.GAUGE)
    hour = T0 + np.arange(3600, dtype=float)
    store.write_batches([SeriesBatch(key, hour, np.random.default_rng(1).random(3600))])
    conn = sqlite3.connect(path)
    (series_id,) = conn.execute(
        "SELECT series_id FROM obs_series WHERE name = 'cpu_percent'"
    ).fetchone()
    ours, raw, count = [], [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        agg = store.aggregate("cpu_percent", T0, T0 + 3600, labels={"host": "bench"})
        ours.append((time.perf_counter() - start) * 1e3)
        count = agg.count
        start = time.perf_counter()
        rows = conn.execute(
            "SELECT ts, value FROM obs_points WHERE series_id = ? AND ts >= ? AND ts < ? "
            "ORDER BY ts",
            (series_id, T0, T0 + 3600),
        ).fetchall()
        values = np.array([v for _, v in rows])
        np.percentile(values, [50, 95, 99])
        raw.append((time.perf_counter() - start) * 1e3)
    conn.close()
    store.close()
    return ours, raw, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200k points, 3 repeats")
    args = parser.parse_args()
    total = 200_000 if args.quick else 1_000_000
    repeats = 3 if args.quick else 5
    threadpool_limits(1)  # numpy's percentiles and copies: one thread, honest timings
    calls = make_batches(total)
    ours_rates, raw_rates = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(repeats):
            ours_rates.append(total / ingest_ours(Path(tmp) / f"ours{repeat}.db", calls))
            raw_rates.append(total / ingest_raw(Path(tmp) / f"raw{repeat}.db", calls))
        ours_ms, raw_ms, count = read_hour(Path(tmp) / "ours0.db", repeats=30)
    ours_rate, raw_rate = statistics.median(ours_rates), statistics.median(raw_rates)
    print(
        f"RATIO sqlite ingestion: ours={ours_rate:,.0f} pts/s raw_sqlite3={raw_rate:,.0f} pts/s "
        f"ratio={ours_rate / raw_rate:.2f} (target >= 200000 pts/s; {total:,} points in "
        f"batches of {BATCH_POINTS:,} across {N_SERIES} series, median of {repeats})"
    )
    ours_read, raw_read = statistics.median(ours_ms), statistics.median(raw_ms)
    print(
        f"RATIO read 1h of 1s series + percentiles: ours={ours_read:.2f}ms "
        f"raw_sqlite3={raw_read:.2f}ms ratio={ours_read / raw_read:.2f} "
        f"(target <= 50 ms; {count} points among {total:,}, median of {len(ours_ms)})"
    )


if __name__ == "__main__":
    main()
