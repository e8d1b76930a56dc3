"""Store passwords never reach logs, errors or the status, whatever the URI looks like."""

from __future__ import annotations

import logging

import pytest

from allele.errors import StoreError
from allele.observability.config import ObservabilitySettings
from allele.observability.engine import ObservabilityEngine
from allele.observability.redact import mask_secrets, mask_webhook_url
from allele.observability.store import open_store
from allele.observability.store.faults import safe_url


@pytest.mark.parametrize(
    "uri",
    [
        "postgresql+psycopg://ana:hunter2@db:5432/x",
        "postgresql://ana:hunter2@db:notaport/x",  # SQLAlchemy cannot parse the port
        "::://ana:hunter2@db/x",  # nor the scheme
    ],
)
def test_the_masker_hides_the_password_even_when_the_uri_does_not_parse(uri):
    shown = safe_url(uri)
    assert "hunter2" not in shown and "ana:***@db" in shown


def test_a_bad_port_is_a_store_error_naming_the_masked_uri():
    with pytest.raises(StoreError) as refused:
        open_store("postgresql+psycopg://ana:hunter2@db:notaport/x")
    text = str(refused.value)
    assert "hunter2" not in text and "ana:***@db:notaport" in text and "port" in text
    with pytest.raises(StoreError, match=r"not in 1\.\.65535"):
        open_store("postgresql+psycopg://ana:hunter2@db:99999/x")


def test_the_engine_logs_and_reports_the_store_without_its_password(caplog):
    # Nothing listens on port 1: the store is unreachable, so the engine logs and retries.
    uri = "postgresql+psycopg://ana:hunter2@127.0.0.1:1/x"
    engine = ObservabilityEngine(
        ObservabilitySettings(store_uri=uri, collection_interval=3600.0), notifiers=[]
    )
    with caplog.at_level(logging.DEBUG):
        engine.start()
        status = engine.get_status()
        engine.flush()
        engine.stop()
    assert "hunter2" not in caplog.text and "hunter2" not in repr(status)
    assert "ana:***@127.0.0.1:1" in status["persistence"]
    assert "hunter2" not in repr(engine.get_status())


def test_settings_errors_mask_secrets():
    with pytest.raises(Exception) as refused:
        ObservabilitySettings(webhook_url="ftp://hooks.example.com/T0/s3cr3t")
    assert "s3cr3t" not in str(refused.value)


def test_maskers():
    assert mask_secrets("failed: postgresql://u:p4ss@h/db and more") == (
        "failed: postgresql://u:***@h/db and more"
    )
    assert mask_webhook_url("https://hooks.slack.com/services/T0/B0/XYZ?x=1") == (
        "https://hooks.slack.com/***"
    )
    assert mask_webhook_url("https://example.com") == "https://example.com"
