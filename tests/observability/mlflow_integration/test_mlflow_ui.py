"""The MLflow UI shows Allele's runs: the experiment page in headless Chromium (Playwright)."""

from __future__ import annotations

from typing import Any

import pytest

from allele.observability.benchmarking.experiment_logger import ExperimentLogger
from allele.observability.benchmarking.experiment_tracking import log_suite_run
from allele.observability.mlflow_integration.client import open_client


def test_the_experiment_page_lists_the_suite_run(
    config: Any, suite_run: Any, chromium_path: str, chromium_args: list[str]
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    run = suite_run(name="ui", cells=3)
    log_suite_run(run, experiment_logger=ExperimentLogger(config))
    experiment = open_client(config).get_experiment_by_name(config.experiment_prefix + "ui")
    parent_name = f"ui-{run.suite_id[:8]}"

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=chromium_args)
        try:
            page = browser.new_page()
            page.goto(f"{config.tracking_uri}/#/experiments/{experiment.experiment_id}/runs")
            # The runs table is rendered by the UI's JavaScript from the REST API.
            page.get_by_text(parent_name).first.wait_for(timeout=90_000)
            assert config.experiment_prefix + "ui" in page.content()
        finally:
            browser.close()
