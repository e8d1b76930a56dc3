"""Benchmark storage against its targets: persist a 1000-cell suite (20 samples per cell) in
under 0.2 s, load any suite in under 0.1 s, list 100 suites in under 50 ms.

Measured on SQLite (a file, WAL) and, when it answers on 127.0.0.1:5432, PostgreSQL. Medians
over repeats; each line prints ours, the target and their ratio.

Usage: python benchmarks/bench_bench_storage.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import sqlalchemy
from threadpoolctl import threadpool_limits

from allele.observability.benchmarking import storage
from allele.observability.benchmarking.model import CellResult, SuiteRun
from allele.observability.store import open_store

POSTGRES_URL = os.environ.get(
    "ALLELE_TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test"
)


def make_run(cells: int, samples: int, created: datetime, rng: np.random.Generator) -> SuiteRun:
    started = datetime.now(UTC)
    return SuiteRun(
        name="storage-bench",
        component="evolution",
        created_at=created,
        config={"runs": 4, "samples": 5},
        machine={"node": "bench"},
        commit={"id": "0" * 40},
        cells=[
            CellResult(
                params={"population_size": i, "mutation_rate": 0.1},
                samples={"time_s": rng.lognormal(-4, 0.1, samples).tolist()},
                metrics={"latency_p50_s": 0.02, "best_fitness": 0.9},
                inner_loops=10,
                processes=4,
                node="bench",
                started_at=started,
                finished_at=started,
                run_indices=[0, 1, 2, 3],
            )
            for i in range(cells)
        ],
    )


def measure(uri: str, repeats: int) -> dict[str, float]:
    store = open_store(uri)
    rng = np.random.default_rng(0)
    base = datetime(2025, 1, 1, tzinfo=UTC)
    persist, load, listing = [], [], []
    runs = [make_run(1000, 20, base + timedelta(seconds=i), rng) for i in range(repeats)]
    for run in runs:
        t0 = time.perf_counter()
        storage.save_run(store, run)
        persist.append(time.perf_counter() - t0)
    for _ in range(100 - repeats):  # fill to 100 stored suites for the listing
        storage.save_run(store, make_run(5, 20, base - timedelta(days=1), rng))
    for run in runs:
        t0 = time.perf_counter()
        loaded = storage.load_run(store, run.suite_id)
        load.append(time.perf_counter() - t0)
        assert len(loaded.cells) == 1000
    for _ in range(repeats * 3):
        t0 = time.perf_counter()
        summaries = storage.list_runs(store, limit=100)
        listing.append(time.perf_counter() - t0)
        assert len(summaries) == 100
    store.engine.dispose()
    return {
        "persist": statistics.median(persist),
        "load": statistics.median(load),
        "list": statistics.median(listing),
    }


def _postgres_schema() -> str | None:
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError:
        return None
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = sqlalchemy.create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return schema


def _drop_schema(schema: str) -> None:
    engine = sqlalchemy.create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def report(backend: str, figures: dict[str, float]) -> None:
    targets = {
        "persist": ("persist a 1000-cell suite (20 samples/cell)", 0.2),
        "load": ("load a 1000-cell suite", 0.1),
        "list": ("list 100 suites", 0.05),
    }
    for key, (what, target) in targets.items():
        ours = figures[key]
        print(
            f"RATIO {backend} {what}: ours={ours * 1000:.1f}ms target={target * 1000:.0f}ms "
            f"ratio={ours / target:.2f} (target <= 1.0)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    repeats = 3 if args.quick else 9
    with threadpool_limits(limits=1), tempfile.TemporaryDirectory() as tmp:
        report("sqlite", measure(f"sqlite:///{Path(tmp) / 'bench.db'}", repeats))
        schema = _postgres_schema()
        if schema is None:
            print("postgresql: not reachable on 127.0.0.1:5432, skipped")
            return
        try:
            uri = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
            report("postgresql", measure(uri, repeats))
        finally:
            _drop_schema(schema)


if __name__ == "__main__":
    main()
