"""Benchmark storage: exact round trips on SQLite and PostgreSQL, listing, history, baselines."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from allele.errors import BenchmarkError
from allele.observability.benchmarking import storage
from allele.observability.benchmarking.model import CellResult, SuiteRun
from allele.observability.store import open_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'bench.db'}"
    else:
        uri = request.getfixturevalue("postgres_url")
    opened = open_store(uri)
    try:
        yield opened
    finally:
        opened.engine.dispose()


def _run(name: str = "suite", created: datetime | None = None, cells: int = 3) -> SuiteRun:
    t0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    return SuiteRun(
        name=name,
        component="python",
        created_at=created or t0,
        config={"runs": 2, "matrix": {"n": list(range(cells))}, "fingerprint": "abc"},
        machine={"node": "box", "cpu": {"count": 2}},
        commit={"id": "deadbeef", "dirty": False},
        cells=[
            CellResult(
                params={"n": i, "kind": "sort"},
                samples={
                    "time_s": [0.1 + 0.2, 1e-9 * (i + 1), 1 / 3, 5e-324],
                    "items_per_s": [math.inf, 7.0],
                    "best_fitness": [0.25, math.nan],
                },
                metrics={"latency_p50_s": 0.1 * (i + 1), "peak_rss_bytes": 12345678.0},
                inner_loops=1000 + i,
                processes=2,
                node="box",
                started_at=t0 + timedelta(seconds=i),
                finished_at=t0 + timedelta(seconds=i, microseconds=1),
                run_indices=[0, 1],
            )
            for i in range(cells)
        ]
        + [CellResult(params={"n": 99, "kind": "x"}, status="error", error="Traceback ...")],
    )


def _same(a: SuiteRun, b: SuiteRun) -> bool:
    # NaN != NaN, so compare the reprs of the JSON-ready dicts.
    return repr(a.to_dict()) == repr(b.to_dict())


def test_round_trip_is_exact(store: object) -> None:
    run = _run()
    suite_id = storage.save_run(store, run)
    loaded = storage.load_run(store, suite_id)
    assert loaded.suite_id == suite_id
    assert _same(loaded, run)
    assert loaded.cells[0].samples["time_s"][0] == 0.1 + 0.2
    assert loaded.cells[0].samples["time_s"][3] == 5e-324
    assert math.isnan(loaded.cells[0].samples["best_fitness"][1])
    assert loaded.created_at == run.created_at and loaded.created_at.tzinfo is not None


def test_load_by_name_gives_the_latest_run(store: object) -> None:
    t = datetime(2025, 1, 1, tzinfo=UTC)
    old = storage.save_run(store, _run(created=t))
    new = storage.save_run(store, _run(created=t + timedelta(hours=1)))
    assert storage.load_run(store, "suite").suite_id == new != old
    with pytest.raises(BenchmarkError, match="'nothing'"):
        storage.load_run(store, "nothing")


def test_list_runs_newest_first_with_cell_counts(store: object) -> None:
    t = datetime(2025, 1, 1, tzinfo=UTC)
    ids = [
        storage.save_run(store, _run(f"s{i % 2}", t + timedelta(minutes=i), cells=i))
        for i in range(4)
    ]
    summaries = storage.list_runs(store)
    assert [s.suite_id for s in summaries] == list(reversed(ids))
    assert [s.n_cells for s in summaries] == [4, 3, 2, 1]  # i cells + the error cell
    assert [s.name for s in storage.list_runs(store, name="s0")] == ["s0", "s0"]
    assert len(storage.list_runs(store, limit=1)) == 1
    assert summaries[0].status == "complete" and summaries[0].component == "python"


def test_runs_history_oldest_first(store: object) -> None:
    t = datetime(2025, 1, 1, tzinfo=UTC)
    ids = [storage.save_run(store, _run(created=t + timedelta(days=i))) for i in range(5)]
    history = storage.runs_history(store, "suite", limit=3)
    assert [r.suite_id for r in history] == ids[2:]
    assert all(len(r.cells) == 4 for r in history)


def test_incremental_cells_and_status(store: object) -> None:
    run = _run(cells=0)
    run.cells = []
    run.status = "running"
    suite_id = storage.create_run(store, run, "fp")
    cell = CellResult(params={"n": 1}, status="partial", samples={"time_s": [1.0]}, run_indices=[0])
    storage.save_cell(store, suite_id, cell, position=0)
    assert storage.latest_unfinished(store, "suite").cells[0].samples == {"time_s": [1.0]}
    cell.samples["time_s"].append(2.0)
    cell.run_indices.append(1)
    cell.status = "ok"
    storage.save_cell(store, suite_id, cell, position=0)
    storage.save_cell(store, suite_id, CellResult(params={"n": 2}))  # position appended
    storage.set_run_status(store, suite_id, "complete")
    loaded = storage.load_run(store, suite_id)
    assert [c.params for c in loaded.cells] == [{"n": 1}, {"n": 2}]
    assert loaded.cells[0].samples == {"time_s": [1.0, 2.0]} and loaded.cells[0].run_indices == [
        0,
        1,
    ]
    assert loaded.status == "complete"
    assert storage.latest_unfinished(store, "suite") is None


def test_baselines(store: object) -> None:
    a = storage.save_run(store, _run())
    b = storage.save_run(store, _run(created=datetime(2026, 1, 1, tzinfo=UTC)))
    storage.set_baseline(store, "main", a)
    assert storage.get_baseline(store, "main").suite_id == a
    storage.set_baseline(store, "main", b)
    assert storage.get_baseline(store, "main").suite_id == b
    assert storage.list_baselines(store) == {"main": b}
    with pytest.raises(BenchmarkError, match="no baseline named 'v2'"):
        storage.get_baseline(store, "v2")
    with pytest.raises(BenchmarkError, match="no stored run with suite id 'zzz'"):
        storage.set_baseline(store, "main", "zzz")


def test_calibration_round_trip(store: object) -> None:
    assert storage.load_calibration(store, "suite") == {}
    noise = {"n=1": 0.031, "n=2": 1 / 3}
    storage.save_calibration(store, "suite", noise)
    assert storage.load_calibration(store, "suite") == noise
    storage.save_calibration(store, "suite", {"n=1": 0.5})
    assert storage.load_calibration(store, "suite") == {"n=1": 0.5}


def test_a_uri_string_is_accepted(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'u.db'}"
    suite_id = storage.save_run(uri, _run())
    assert storage.load_run(uri, suite_id).suite_id == suite_id
    with pytest.raises(BenchmarkError, match="expected a Store"):
        storage.load_run(object(), "x")
