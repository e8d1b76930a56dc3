"""The spool: what a stop could not write, kept on disk (no pickle) for the next start."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from allele.observability.store.spool import Spool, spool_dir_for
from allele.observability.types import MetricType, SeriesBatch, SeriesKey

KEY = SeriesKey("latency_s", (("op", 'a "b"'),), MetricType.TIMER)


def test_saved_batches_come_back_exactly_once(tmp_path):
    spool = Spool(tmp_path / "spool")
    batch = SeriesBatch(KEY, np.array([1.0, 2.0]), np.array([0.5, 0.25]))
    assert spool.save([batch, SeriesBatch(KEY, np.empty(0), np.empty(0))]) == 2
    (taken,) = spool.take()
    path, (back,) = taken
    assert back.key == KEY
    np.testing.assert_array_equal(back.values, [0.5, 0.25])
    assert spool.take() == []  # claimed: a second reader does not get it too
    Spool.done(path)
    assert list((tmp_path / "spool").iterdir()) == []


def test_a_file_claimed_by_a_dead_process_is_taken_again(tmp_path):
    spool = Spool(tmp_path)
    spool.save([SeriesBatch(KEY, np.array([1.0]), np.array([3.0]))])
    (name,) = [p for p in tmp_path.iterdir()]
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    name.rename(tmp_path / f"{name.name}.taken-{int(dead.stdout)}")
    (taken,) = spool.take()
    assert taken[0].name.endswith(f".taken-{os.getpid()}")


def test_a_damaged_file_is_left_and_the_others_are_taken(tmp_path, caplog):
    spool = Spool(tmp_path)
    (tmp_path / "pending-1-1.npz").write_bytes(b"not a zip")
    spool.save([SeriesBatch(KEY, np.array([1.0]), np.array([3.0]))])
    taken = spool.take()
    assert len(taken) == 1 and "cannot read the spooled points" in caplog.text


def test_where_each_store_spools(tmp_path):
    assert spool_dir_for(f"sqlite:///{tmp_path / 'a.db'}") == tmp_path / "a.db.spool"
    assert spool_dir_for("sqlite://") is None
    pg = spool_dir_for("postgresql+psycopg://u:secret@h/db")
    assert pg is not None and "secret" not in str(pg)
