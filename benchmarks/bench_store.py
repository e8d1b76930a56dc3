"""Store speed: batched SQLite ingestion and reading an hour of a 1 s series with percentiles.

Ours is ``Store.write_batches`` / ``Store.aggregate`` (points stored as chunks: one row per
series per write holding float64 blobs). The anchor is the classic one-row-per-point layout in
raw ``sqlite3`` with the same file settings (WAL, synchronous=NORMAL): a ``points(series_id,
ts, value)`` table indexed on ``(series_id, ts)``, ``executemany`` of the same points, and a
plain SELECT plus ``numpy.percentile``. Each repeat ingests into a fresh database.

The read is measured on two layouts of the same hour: written in one call (one chunk), and
written the way the flusher writes a 1 s series with a 1 s flush interval (3600 one-point
chunks, the worst case for chunking).

Compaction: a day of a 1 s series stored as 86,400 one-point chunks (the layout a day of 1 s
flushes leaves), read -- the last hour and the whole day, with percentiles -- before and after
``Store.compact`` merges them, against the same day in the raw one-row-per-point table.

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
from allele.observability.store.repository.chunks import pack
from allele.observability.store.schema import chunks
from allele.observability.types import MetricType, SeriesBatch, SeriesKey

N_SERIES = 100
BATCH_POINTS = 10_000
T0 = 1_700_000_000.0
ROW = np.dtype([("s", "i8"), ("t", "f8"), ("v", "f8")])
RAW_SCHEMA = (
    "CREATE TABLE points (series_id INTEGER NOT NULL, ts REAL NOT NULL, value REAL NOT NULL)",
    "CREATE INDEX ix_points_series_ts ON points (series_id, ts)",
)


def raw_connection(path: Path) -> sqlite3.Connection:
    """A raw sqlite3 connection on a one-row-per-point table, same pragmas as the store."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    for statement in RAW_SCHEMA:
        conn.execute(statement)
    return conn


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
    conn = raw_connection(path)
    ids = {b.key: i + 1 for i, b in enumerate(calls[0])}
    start = time.perf_counter()
    for batches in calls:
        # The fastest row building we know, so that the ratio measures the storage layout
        # rather than tuple construction.
        rows_array = np.empty(sum(b.values.size for b in batches), dtype=ROW)
        rows_array["s"] = np.repeat([ids[b.key] for b in batches], [b.values.size for b in batches])
        rows_array["t"] = np.concatenate([b.timestamps for b in batches])
        rows_array["v"] = np.concatenate([b.values for b in batches])
        rows = rows_array.tolist()
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO points (series_id, ts, value) VALUES (?, ?, ?)", rows)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def read_hour(directory: Path, repeats: int, per_flush: bool) -> tuple[list[float], list[float]]:
    """Times (ms) of ours and of raw sqlite3 reading one hour of a 1 s series + percentiles,
    among 100 other series; ``per_flush`` writes ours one point per call (3600 chunks)."""
    tag = "flushed" if per_flush else "bulk"
    store = open_store(f"sqlite:///{directory / f'read_{tag}.db'}")
    conn = raw_connection(directory / f"read_raw_{tag}.db")
    rng = np.random.default_rng(1)
    hour = T0 + np.arange(3600, dtype=float)
    values = rng.random(3600)
    key = SeriesKey("cpu_percent", (("host", "bench"),), MetricType.GAUGE)
    noise = [
        SeriesKey("cpu_percent", (("host", f"other{i}"),), MetricType.GAUGE) for i in range(100)
    ]
    for i in range(0, 3600, 1 if per_flush else 3600):
        stop = i + (1 if per_flush else 3600)
        store.write_batches(
            [SeriesBatch(key, hour[i:stop], values[i:stop])]
            + [
                SeriesBatch(k, hour[i:stop], values[i:stop])
                for k in noise[:: 10 if per_flush else 1]
            ]
        )
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO points VALUES (?, ?, ?)",
        [
            (sid, t, v)
            for sid in range(101)
            for t, v in zip(hour.tolist(), values.tolist(), strict=True)
        ],
    )
    conn.execute("COMMIT")
    ours, raw = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        agg = store.aggregate("cpu_percent", T0, T0 + 3600, labels={"host": "bench"})
        ours.append((time.perf_counter() - start) * 1e3)
        assert agg.count == 3600
        start = time.perf_counter()
        rows = conn.execute(
            "SELECT ts, value FROM points WHERE series_id = ? AND ts >= ? AND ts < ? ORDER BY ts",
            (0, T0, T0 + 3600),
        ).fetchall()
        raw_values = np.array([v for _, v in rows])
        np.percentile(raw_values, [50, 95, 99])
        raw.append((time.perf_counter() - start) * 1e3)
        assert raw_values.size == 3600
    conn.close()
    store.close()
    return ours, raw


def read_day(directory: Path, repeats: int) -> dict[str, dict[str, list[float]]]:
    """Times (ms) of reading the last hour and the whole day of a 1 s series + percentiles:
    ours before and after compaction, and raw sqlite3; plus the compaction's own time."""
    day = 86_400
    store = open_store(f"sqlite:///{directory / 'day.db'}")
    conn = raw_connection(directory / "day_raw.db")
    ts = T0 + np.arange(day, dtype=float)
    values = np.random.default_rng(2).random(day)
    key = SeriesKey("cpu_percent", (("host", "day"),), MetricType.GAUGE)
    store.write_batches([SeriesBatch(key, ts[:1], values[:1])])  # creates the series
    with store.engine.connect() as db:
        series_id = int(db.exec_driver_sql("SELECT series_id FROM obs_series").scalar_one())
    # The other 86,399 points as one-point chunk rows, exactly as 86,399 flushes write them
    # (inserted in one transaction: 86,399 separate writes would only slow the set-up).
    with store.engine.begin() as db:
        db.execute(
            chunks.insert(),
            [
                {
                    "series_id": sid,
                    "t_min": t0,
                    "t_max": t1,
                    "n": n,
                    "v_sum": vs,
                    "v_min": vmin,
                    "v_max": vmax,
                    "v_last": vl,
                    "ts_blob": tb,
                    "value_blob": vb,
                }
                for sid, t0, t1, n, vs, vmin, vmax, vl, tb, vb in pack(
                    series_id, ts[1:], values[1:], max_points=1
                )
            ],
        )
    assert store.chunk_count() == day
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO points VALUES (?, ?, ?)",
        [(0, t, v) for t, v in zip(ts.tolist(), values.tolist(), strict=True)],
    )
    conn.execute("COMMIT")
    spans = {"last hour": (T0 + day - 3600, T0 + day), "whole day": (T0, T0 + day)}
    times: dict[str, dict[str, list[float]]] = {
        span: {"before": [], "after": [], "raw": []} for span in spans
    }

    def ours(stage: str) -> None:
        for _ in range(repeats):
            for span, (lo, hi) in spans.items():
                start = time.perf_counter()
                agg = store.aggregate("cpu_percent", lo, hi, labels={"host": "day"})
                times[span][stage].append((time.perf_counter() - start) * 1e3)
                assert agg.count == round(hi - lo)

    ours("before")
    start = time.perf_counter()
    done = store.compact()
    times["compaction"] = {"s": [time.perf_counter() - start], "chunks": [store.chunk_count()]}
    assert done.points == day and done.complete
    ours("after")
    for _ in range(repeats):
        for span, (lo, hi) in spans.items():
            start = time.perf_counter()
            found = conn.execute(
                "SELECT ts, value FROM points WHERE series_id = ? AND ts >= ? AND ts < ? "
                "ORDER BY ts",
                (0, lo, hi),
            ).fetchall()
            raw_values = np.array([v for _, v in found])
            np.percentile(raw_values, [50, 95, 99])
            times[span]["raw"].append((time.perf_counter() - start) * 1e3)
    conn.close()
    store.close()
    return times


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
        reads = {
            layout: read_hour(Path(tmp), repeats=30, per_flush=per_flush)
            for layout, per_flush in (("one chunk", False), ("3600 one-point chunks", True))
        }
        day = read_day(Path(tmp), repeats=3 if args.quick else 7)
    ours_rate, raw_rate = statistics.median(ours_rates), statistics.median(raw_rates)
    print(
        f"RATIO sqlite ingestion: ours={ours_rate:,.0f} pts/s raw_sqlite3={raw_rate:,.0f} pts/s "
        f"ratio={ours_rate / raw_rate:.2f} (target >= 200000 pts/s; {total:,} points in "
        f"batches of {BATCH_POINTS:,} across {N_SERIES} series, median of {repeats}; anchor: "
        "one row per point)"
    )
    for layout, (ours_ms, raw_ms) in reads.items():
        ours_read, raw_read = statistics.median(ours_ms), statistics.median(raw_ms)
        print(
            f"RATIO read 1h of 1s series + percentiles ({layout}): ours={ours_read:.2f}ms "
            f"raw_sqlite3={raw_read:.2f}ms ratio={ours_read / raw_read:.2f} "
            f"(target <= 50 ms; 3600 points, median of {len(ours_ms)}; anchor: one row per point)"
        )
    compaction = day.pop("compaction")
    for span, stages in day.items():
        before, after, raw = (statistics.median(stages[k]) for k in ("before", "after", "raw"))
        print(
            f"RATIO read {span} of a day of 1s one-point chunks + percentiles: "
            f"ours compacted={after:.2f}ms raw_sqlite3={raw:.2f}ms ratio={after / raw:.2f} "
            f"(before compaction {before:.2f}ms = {before / after:.1f}x slower; "
            f"median of {len(stages['after'])}; anchor: one row per point)"
        )
    print(
        f"INFO compaction of 86,400 one-point chunks: {compaction['s'][0]:.2f}s, "
        f"{compaction['chunks'][0]} chunks after"
    )


if __name__ == "__main__":
    main()
