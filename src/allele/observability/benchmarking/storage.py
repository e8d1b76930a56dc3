"""Benchmark results in the observability store: suite runs, cells, baselines, noise calibration.

>>> from allele.observability.store import open_store
>>> store = open_store("sqlite://")
>>> suite_id = save_run(store, run)           # doctest: +SKIP
>>> latest = load_run(store, "evolution")    # the latest run of that suite  # doctest: +SKIP

Tables (migrations ``0002``, ``0005_bench``): ``bench_suites`` (one row per run), ``bench_cells``
(one row per cell, with the signal that killed its worker if one did; every raw sample packed
into one ``samples`` blob of little-endian float64, metric after metric, described by the
``sample_index`` JSON ``[[name, count], ...]``), ``bench_baselines`` and ``bench_calibrations``.
JSON columns are text written with ``json.dumps`` (NaN allowed), so values round-trip exactly on
SQLite and PostgreSQL. Every function takes the ``Store`` returned by ``open_store`` or a store
URI.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import (
    Column,
    Double,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine, Row

from allele.errors import BenchmarkError
from allele.observability.benchmarking.model import CellResult, SuiteRun

metadata = MetaData()

suites_table = Table(
    "bench_suites",
    metadata,
    Column("suite_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("component", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("finished_at", Double, nullable=True),
    Column("config", Text, nullable=False),
    Column("machine", Text, nullable=False),
    Column("commit_info", Text, nullable=False),
)

cells_table = Table(
    "bench_cells",
    metadata,
    Column(
        "suite_id",
        String(64),
        ForeignKey("bench_suites.suite_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("cell_key", String(1000), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("params", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("sample_index", Text, nullable=False),
    Column("samples", LargeBinary, nullable=False),
    Column("metrics", Text, nullable=False),
    Column("inner_loops", Integer, nullable=False),
    Column("processes", Integer, nullable=False),
    Column("run_indices", Text, nullable=False),
    Column("error", Text, nullable=True),
    Column("node", String(255), nullable=True),
    Column("started_at", Double, nullable=True),
    Column("finished_at", Double, nullable=True),
    Column("signal", Integer, nullable=True),  # migration 0005_bench
)

baselines_table = Table(
    "bench_baselines",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("suite_id", String(64), nullable=False),
    Column("set_at", Double, nullable=False),
)

calibrations_table = Table(
    "bench_calibrations",
    metadata,
    Column("suite_name", String(200), primary_key=True),
    Column("noise", Text, nullable=False),
    Column("updated_at", Double, nullable=False),
)


@dataclass(frozen=True)
class RunSummary:
    """One line of ``list_runs``: a stored suite run without its cells."""

    suite_id: str
    name: str
    component: str
    created_at: datetime
    n_cells: int
    status: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite_id": self.suite_id,
            "name": self.name,
            "component": self.component,
            "created_at": self.created_at.isoformat(),
            "n_cells": self.n_cells,
            "status": self.status,
        }


_open_stores: dict[str, Any] = {}


def engine_of(store: Any) -> Engine:
    """The SQLAlchemy engine of a ``Store`` or of a store URI (opened once per process)."""
    if isinstance(store, str):
        if store not in _open_stores:
            from allele.observability.store import open_store

            _open_stores[store] = open_store(store)
        store = _open_stores[store]
    engine = getattr(store, "engine", None)
    if not isinstance(engine, Engine):
        raise BenchmarkError(
            f"expected a Store from open_store() or a store URI, got {type(store).__name__}"
        )
    return engine


# --- writing ------------------------------------------------------------------------------


def new_suite_id() -> str:
    """A fresh, unique suite run id."""
    return uuid.uuid4().hex


def create_run(store: Any, run: SuiteRun, fingerprint: str = "") -> str:
    """Insert the suite row of ``run`` (no cells yet); give it an id if it has none."""
    if not run.suite_id:
        run.suite_id = new_suite_id()
    with engine_of(store).begin() as conn:
        conn.execute(insert(suites_table), [_suite_row(run, fingerprint)])
    return run.suite_id


def save_cell(store: Any, suite_id: str, cell: CellResult, position: int | None = None) -> None:
    """Insert or replace one cell of a stored run (the runner calls it as each cell finishes)."""
    row = _cell_row(suite_id, cell, position if position is not None else 0)
    with engine_of(store).begin() as conn:
        if position is None:
            found = conn.execute(
                select(cells_table.c.position).where(
                    cells_table.c.suite_id == suite_id, cells_table.c.cell_key == cell.key
                )
            ).scalar()
            if found is None:
                found = conn.execute(
                    select(func.coalesce(func.max(cells_table.c.position) + 1, 0)).where(
                        cells_table.c.suite_id == suite_id
                    )
                ).scalar_one()
            row["position"] = int(found)
        _upsert_cells(conn, [row])


def set_run_status(
    store: Any, suite_id: str, status: str, machine: dict[str, Any] | None = None
) -> None:
    """Mark a stored run ``running``, ``interrupted``, ``failed`` or ``complete`` (and replace
    its machine description, which gains the load at the end of the run)."""
    values: dict[str, Any] = {"status": status}
    if machine is not None:
        values["machine"] = json.dumps(machine)
    if status == "complete":
        values["finished_at"] = datetime.now(UTC).timestamp()
    with engine_of(store).begin() as conn:
        conn.execute(
            update(suites_table).where(suites_table.c.suite_id == suite_id).values(**values)
        )


def save_run(store: Any, run: SuiteRun, fingerprint: str = "") -> str:
    """Store ``run`` and all its cells in one transaction; return its suite id.

    A run whose id is already stored is replaced.
    """
    if not run.suite_id:
        run.suite_id = new_suite_id()
    rows = [_cell_row(run.suite_id, cell, i) for i, cell in enumerate(run.cells)]
    with engine_of(store).begin() as conn:
        conn.execute(delete(cells_table).where(cells_table.c.suite_id == run.suite_id))
        conn.execute(delete(suites_table).where(suites_table.c.suite_id == run.suite_id))
        conn.execute(insert(suites_table), [_suite_row(run, fingerprint)])
        if rows:
            conn.execute(insert(cells_table), rows)
    return run.suite_id


def _upsert_cells(conn: Connection, rows: list[dict[str, Any]]) -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    dialect_insert: Any = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = dialect_insert(cells_table)
    keep = {"suite_id", "cell_key", "position"}
    stmt = stmt.on_conflict_do_update(
        index_elements=["suite_id", "cell_key"],
        set_={c.name: stmt.excluded[c.name] for c in cells_table.c if c.name not in keep},
    )
    conn.execute(stmt, rows)


def _suite_row(run: SuiteRun, fingerprint: str) -> dict[str, Any]:
    return {
        "suite_id": run.suite_id,
        "name": run.name,
        "component": run.component,
        "status": run.status,
        "fingerprint": fingerprint or str(run.config.get("fingerprint", "")),
        "created_at": _epoch(run.created_at),
        "finished_at": _epoch(datetime.now(UTC)) if run.status == "complete" else None,
        "config": json.dumps(run.config),
        "machine": json.dumps(run.machine),
        "commit_info": json.dumps(run.commit),
    }


def _cell_row(suite_id: str, cell: CellResult, position: int) -> dict[str, Any]:
    index = [[name, len(values)] for name, values in cell.samples.items()]
    if cell.samples:
        packed = np.concatenate(
            [np.asarray(v, dtype="<f8") for v in cell.samples.values()]
        ).tobytes()
    else:
        packed = b""
    return {
        "suite_id": suite_id,
        "cell_key": cell.key,
        "position": position,
        "params": json.dumps(cell.params),
        "status": cell.status,
        "sample_index": json.dumps(index),
        "samples": packed,
        "metrics": json.dumps(cell.metrics),
        "inner_loops": cell.inner_loops,
        "processes": cell.processes,
        "run_indices": json.dumps(cell.run_indices),
        "error": cell.error,
        "node": cell.node,
        "started_at": _epoch(cell.started_at),
        "finished_at": _epoch(cell.finished_at),
        "signal": cell.signal,
    }


# --- reading ------------------------------------------------------------------------------


def load_run(store: Any, id_or_name: str) -> SuiteRun:
    """The run with suite id ``id_or_name``, else the latest run of the suite of that name."""
    engine = engine_of(store)
    with engine.connect() as conn:
        suite_id = _full_suite_id(conn, id_or_name)
        row = conn.execute(select(suites_table).where(suites_table.c.suite_id == suite_id)).first()
        if row is None:
            row = conn.execute(
                select(suites_table)
                .where(suites_table.c.name == id_or_name)
                .order_by(suites_table.c.created_at.desc())
                .limit(1)
            ).first()
        if row is None:
            names = conn.execute(select(suites_table.c.name).distinct()).scalars().all()
            raise BenchmarkError(
                f"no stored benchmark run with suite id or suite name {id_or_name!r}"
                f"{_name_hint(id_or_name, list(names))}; see `allele bench list`"
            )
        runs = _runs_with_cells(conn, [row])
    return runs[0]


def _full_suite_id(conn: Connection, reference: str) -> str:
    """The suite id ``reference`` is, or is the unique prefix of (six characters or more, as
    tables show ids shortened); ``reference`` itself otherwise."""
    exact = conn.execute(
        select(suites_table.c.suite_id).where(suites_table.c.suite_id == reference)
    ).first()
    if (
        exact is not None
        or len(reference) < 6
        or not all(c in "0123456789abcdef" for c in reference)
    ):
        return reference
    found = (
        conn.execute(
            select(suites_table.c.suite_id)
            .where(suites_table.c.suite_id.startswith(reference, autoescape=True))
            .limit(2)
        )
        .scalars()
        .all()
    )
    if len(found) > 1:
        raise BenchmarkError(f"suite id prefix {reference!r} names several runs; give more of it")
    return found[0] if found else reference


def suite_names(store: Any) -> list[str]:
    """The names of the suites with stored runs, sorted."""
    with engine_of(store).connect() as conn:
        return sorted(conn.execute(select(suites_table.c.name).distinct()).scalars().all())


def _name_hint(name: str, names: list[str]) -> str:
    """`` (did you mean ...?)`` for a suite name, the ``--quick`` variant first."""
    import difflib

    if f"{name}-quick" in names:
        return f"; its --quick variant is stored as {name + '-quick'!r}"
    close = difflib.get_close_matches(name, names, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def latest_unfinished(store: Any, name: str) -> SuiteRun | None:
    """The latest run of suite ``name`` if it is not complete (what ``--resume`` continues)."""
    with engine_of(store).connect() as conn:
        row = conn.execute(
            select(suites_table)
            .where(suites_table.c.name == name)
            .order_by(suites_table.c.created_at.desc())
            .limit(1)
        ).first()
        if row is None or row.status == "complete":
            return None
        return _runs_with_cells(conn, [row])[0]


def list_runs(store: Any, name: str | None = None, limit: int = 100) -> list[RunSummary]:
    """Summaries of the stored runs, newest first (optionally of suite ``name`` only)."""
    counts = (
        select(cells_table.c.suite_id, func.count().label("n_cells"))
        .group_by(cells_table.c.suite_id)
        .subquery()
    )
    stmt = (
        select(
            suites_table.c.suite_id,
            suites_table.c.name,
            suites_table.c.component,
            suites_table.c.created_at,
            suites_table.c.status,
            func.coalesce(counts.c.n_cells, 0),
        )
        .select_from(suites_table.outerjoin(counts, counts.c.suite_id == suites_table.c.suite_id))
        .order_by(suites_table.c.created_at.desc())
        .limit(limit)
    )
    if name is not None:
        stmt = stmt.where(suites_table.c.name == name)
    with engine_of(store).connect() as conn:
        rows = conn.execute(stmt).all()
    return [
        RunSummary(r[0], r[1], r[2], _datetime_of(r[3]), int(r[5]), r[4])  # type: ignore[arg-type]
        for r in rows
    ]


def runs_history(store: Any, name: str, limit: int = 50) -> list[SuiteRun]:
    """The latest ``limit`` runs of suite ``name``, oldest first."""
    with engine_of(store).connect() as conn:
        rows = conn.execute(
            select(suites_table)
            .where(suites_table.c.name == name)
            .order_by(suites_table.c.created_at.desc())
            .limit(limit)
        ).all()
        runs = _runs_with_cells(conn, list(reversed(rows)))
    return runs


def _runs_with_cells(conn: Connection, rows: Sequence[Row[Any]]) -> list[SuiteRun]:
    runs = {row.suite_id: _run_of(row) for row in rows}
    if runs:
        cell_rows = conn.execute(
            select(cells_table)
            .where(cells_table.c.suite_id.in_(list(runs)))
            .order_by(cells_table.c.suite_id, cells_table.c.position)
        ).all()
        for cell_row in cell_rows:
            runs[cell_row.suite_id].cells.append(_cell_of(cell_row))
    return list(runs.values())


def _run_of(row: Row[Any]) -> SuiteRun:
    return SuiteRun(
        name=row.name,
        component=row.component,
        suite_id=row.suite_id,
        created_at=_datetime_of(row.created_at),  # type: ignore[arg-type]
        config=json.loads(row.config),
        machine=json.loads(row.machine),
        commit=json.loads(row.commit_info),
        cells=[],
        status=row.status,
    )


def _cell_of(row: Row[Any]) -> CellResult:
    values = np.frombuffer(row.samples, dtype="<f8")
    samples: dict[str, list[float]] = {}
    start = 0
    for name, count in json.loads(row.sample_index):
        samples[name] = values[start : start + count].tolist()
        start += count
    return CellResult(
        params=json.loads(row.params),
        status=row.status,
        samples=samples,
        metrics=json.loads(row.metrics),
        inner_loops=row.inner_loops,
        processes=row.processes,
        run_indices=json.loads(row.run_indices),
        error=row.error,
        node=row.node,
        started_at=_datetime_of(row.started_at),
        finished_at=_datetime_of(row.finished_at),
        signal=row.signal,
    )


# --- baselines and calibration ------------------------------------------------------------


def set_baseline(store: Any, baseline_name: str, suite_id: str) -> None:
    """Point baseline ``baseline_name`` at the stored run ``suite_id`` (replacing any previous)."""
    engine = engine_of(store)
    with engine.begin() as conn:
        suite_id = _full_suite_id(conn, suite_id)
        exists = conn.execute(
            select(suites_table.c.suite_id).where(suites_table.c.suite_id == suite_id)
        ).first()
        if exists is None:
            raise BenchmarkError(
                f"cannot set baseline {baseline_name!r}: no stored run with suite id {suite_id!r}"
            )
        conn.execute(delete(baselines_table).where(baselines_table.c.name == baseline_name))
        conn.execute(
            insert(baselines_table),
            [{"name": baseline_name, "suite_id": suite_id, "set_at": _epoch(datetime.now(UTC))}],
        )


def get_baseline(store: Any, baseline_name: str) -> SuiteRun:
    """The run that baseline ``baseline_name`` points at."""
    with engine_of(store).connect() as conn:
        suite_id = conn.execute(
            select(baselines_table.c.suite_id).where(baselines_table.c.name == baseline_name)
        ).scalar()
        names = conn.execute(select(baselines_table.c.name)).scalars().all()
    if suite_id is None:
        raise BenchmarkError(
            f"no baseline named {baseline_name!r} (stored baselines: "
            f"{', '.join(sorted(names)) or 'none'}); set it with `allele bench baseline set "
            f"{baseline_name} SUITE_ID`, a suite id from `allele bench list`"
        )
    return load_run(store, suite_id)


def list_baselines(store: Any) -> dict[str, str]:
    """Every baseline name and the suite id it points at."""
    with engine_of(store).connect() as conn:
        rows = conn.execute(select(baselines_table.c.name, baselines_table.c.suite_id)).all()
    return {name: suite_id for name, suite_id in rows}


def save_calibration(store: Any, suite_name: str, noise: dict[str, float]) -> None:
    """Store the measured noise of each cell (cell key -> relative noise) of ``suite_name``."""
    row = {
        "suite_name": suite_name,
        "noise": json.dumps({k: float(v) for k, v in noise.items()}),
        "updated_at": _epoch(datetime.now(UTC)),
    }
    with engine_of(store).begin() as conn:
        conn.execute(
            delete(calibrations_table).where(calibrations_table.c.suite_name == suite_name)
        )
        conn.execute(insert(calibrations_table), [row])


def load_calibration(store: Any, suite_name: str) -> dict[str, float]:
    """The stored noise per cell key of ``suite_name``; empty when never calibrated."""
    with engine_of(store).connect() as conn:
        text = conn.execute(
            select(calibrations_table.c.noise).where(calibrations_table.c.suite_name == suite_name)
        ).scalar()
    return {} if text is None else {k: float(v) for k, v in json.loads(text).items()}


def delete_runs(store: Any, suite_ids: Iterable[str]) -> int:
    """Delete stored runs and their cells; return how many runs were deleted."""
    ids = list(suite_ids)
    if not ids:
        return 0
    with engine_of(store).begin() as conn:
        conn.execute(delete(cells_table).where(cells_table.c.suite_id.in_(ids)))
        conn.execute(delete(baselines_table).where(baselines_table.c.suite_id.in_(ids)))
        result = conn.execute(delete(suites_table).where(suites_table.c.suite_id.in_(ids)))
    return int(result.rowcount or 0)


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise BenchmarkError(f"timestamp {value.isoformat()} is naive; expected an aware UTC one")
    return value.timestamp()


def _datetime_of(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)
