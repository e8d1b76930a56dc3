"""Opening a store: URIs, SQLite pragmas, Alembic migrations, and clear errors."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

import allele
from allele.errors import StoreError
from allele.observability.store import open_store
from allele.observability.store.database import MIGRATIONS_DIR, SQLITE_PAGE_SIZE
from allele.observability.types import MetricType, SeriesBatch, SeriesKey

TABLES = {"obs_series", "obs_chunks", "obs_alerts", "obs_components", "alembic_version"}


def _script() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    return ScriptDirectory.from_config(config)


def test_migrations_live_inside_the_installed_package():
    package_dir = Path(allele.__file__).resolve().parent
    assert MIGRATIONS_DIR.is_relative_to(package_dir)
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "versions" / "0001_observability.py").is_file()


def test_every_file_in_versions_is_a_revision_in_one_chain():
    script = _script()
    files = {p.stem for p in (MIGRATIONS_DIR / "versions").glob("*.py")}
    revisions = list(script.walk_revisions())
    assert len(revisions) == len(files)
    assert len(script.get_heads()) == 1
    assert script.get_revision("0001").down_revision is None


def test_open_creates_the_tables_and_stamps_the_head_revision(sqlite_uri):
    store = open_store(sqlite_uri)
    inspector = sa.inspect(store.engine)
    assert set(inspector.get_table_names()) >= TABLES
    with store.engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    assert version == _script().get_current_head()
    store.close()


def test_reopening_keeps_data_and_does_not_migrate_twice(sqlite_uri):
    first = open_store(sqlite_uri)
    first.save_alerts([{"alert_id": "a1", "state": "active"}])
    first.close()
    second = open_store(sqlite_uri)
    assert [a.alert_id for a in second.load_alerts()] == ["a1"]
    with second.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    second.close()


def test_sqlite_connections_use_wal_normal_sync_and_busy_timeout(sqlite_uri):
    store = open_store(sqlite_uri, busy_timeout_ms=1234)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 1234
        assert conn.exec_driver_sql("PRAGMA page_size").scalar_one() == SQLITE_PAGE_SIZE
    store.close()


def test_an_existing_sqlite_database_keeps_its_page_size(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA page_size=4096")
        raw.execute("CREATE TABLE unrelated (x INTEGER)")
    store = open_store(f"sqlite:///{path}")
    store.write_batches([SeriesBatch(SeriesKey("m", (), MetricType.GAUGE), [1.0], [2.0])])
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar_one() == 4096
    assert store.query_series("m").values.tolist() == [2.0]
    store.close()


def test_uri_defaults_to_the_environment_then_allele_db(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ALLELE_STORE_URI", raising=False)
    open_store().close()
    assert (tmp_path / "allele.db").is_file()
    monkeypatch.setenv("ALLELE_STORE_URI", f"sqlite:///{tmp_path / 'from_env.db'}")
    store = open_store()
    assert store.uri.endswith("from_env.db")
    assert (tmp_path / "from_env.db").is_file()
    store.close()


def test_in_memory_sqlite_keeps_its_tables_across_connections():
    store = open_store("sqlite://")
    store.save_alerts([{"alert_id": "m", "state": "active"}])
    assert store.get_alert("m").state == "active"
    store.close()


def test_concurrent_opens_of_a_fresh_file_all_succeed(sqlite_uri):
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            open_store(sqlite_uri).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("not a uri", "invalid store URI 'not a uri'"),
        ("", "is empty"),
        ("mysql://root@127.0.0.1/x", "backend 'mysql'"),
        ("sqlite:////no/such/directory/x.db", "/no/such/directory/x.db"),
    ],
)
def test_bad_uris_raise_store_errors_naming_them(uri, fragment):
    with pytest.raises(StoreError, match=fragment.replace("(", r"\(")):
        open_store(uri)


@pytest.mark.postgres
def test_unreachable_postgres_raises_store_error():
    uri = "postgresql+psycopg://root@127.0.0.1:1/test"
    with pytest.raises(StoreError, match=r"127\.0\.0\.1:1"):
        open_store(uri)


def test_password_is_hidden_in_errors():
    with pytest.raises(StoreError) as info:
        open_store("postgresql+psycopg://root:s3cret@127.0.0.1:1/test")
    assert "s3cret" not in str(info.value)


@pytest.mark.postgres
def test_postgres_tables_and_version_table_land_in_the_fixture_schema(postgres_url):
    store = open_store(postgres_url)
    schema = postgres_url.rsplit("%3D", 1)[1]
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
            {"s": schema},
        ).scalars()
        assert set(rows) >= TABLES
        current = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
    assert current == schema
    store.close()
