"""The page in headless Chromium against a live monitored workload: every view works.

Screenshots of each view go to ``.artifacts/dashboard/`` (or ``$ALLELE_TEST_ARTIFACTS``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import TOKEN, LiveDashboard


@pytest.fixture(scope="module")
def browser(chromium_path: str, chromium_args: list[str]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium_path, args=chromium_args)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert errors == [], errors


def test_overview_shows_the_live_component_and_system(
    page: Any, live_dashboard: LiveDashboard, artifacts: Path
) -> None:
    page.goto(live_dashboard.url + "#overview")
    card = page.locator(".card[data-component^='kraken_lnn']")
    card.wait_for(timeout=20_000)
    assert card.locator("[data-health]").inner_text().split()[0] in (
        "healthy",
        "degraded",
        "unhealthy",
        "unknown",
    )
    assert "%" in page.locator("#system").inner_text()
    page.locator("#live.on").wait_for(timeout=10_000)
    page.screenshot(path=str(artifacts / "overview.png"), full_page=True)


def test_metrics_explorer_receives_live_points(
    page: Any, live_dashboard: LiveDashboard, artifacts: Path
) -> None:
    page.goto(live_dashboard.url + "#metrics")
    page.locator("#series-pick option").first.wait_for(state="attached", timeout=20_000)
    option = page.locator("#series-pick option[value^='allele_kraken_sequences_total']")
    page.select_option("#series-pick", value=option.get_attribute("value"))
    chart = page.locator(".chart[data-series^='allele_kraken_sequences_total'] svg")
    chart.wait_for(timeout=10_000)
    first = int(chart.get_attribute("data-points"))
    # Live: the event stream adds points without a reload.
    selector = ".chart[data-series^='allele_kraken_sequences_total'] svg"
    page.wait_for_function(
        f"n => Number(document.querySelector(\"{selector}\").getAttribute('data-points')) > n",
        arg=first,
        timeout=20_000,
    )
    box = chart.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] / 2)
    assert page.locator(".chart .readout").first.inner_text() != ""
    page.screenshot(path=str(artifacts / "metrics.png"), full_page=True)
    # Drag to zoom: the range becomes absolute and a reset appears.
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + 40)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.95, box["y"] + 40, steps=5)
    page.mouse.up()
    page.locator("#reset-zoom").wait_for(state="visible", timeout=5_000)


def test_acknowledge_an_alert_with_the_token(
    page: Any, live_dashboard: LiveDashboard, artifacts: Path
) -> None:
    page.goto(live_dashboard.url + "#alerts")
    page.select_option("#alert-state", "firing")
    row = page.locator("tr[data-alert]").filter(has_text="kraken_busy").first
    row.wait_for(timeout=30_000)
    button = row.locator("button[data-action=acknowledge]")
    if button.count() == 0:
        pytest.skip("the alert was acknowledged by the API test in this module")
    page.fill("#who", "browser")
    button.click()  # no token yet: refused
    page.wait_for_function("document.querySelector('#alert-message').textContent.includes('token')")
    page.fill("#token", TOKEN)
    row.locator("button[data-action=acknowledge]").click()
    page.locator("tr[data-alert]").filter(has_text="acknowledged by browser").first.wait_for(
        timeout=10_000
    )
    page.screenshot(path=str(artifacts / "alerts.png"), full_page=True)


def test_benchmarks_heatmap_boxplots_and_comparison(
    page: Any, live_dashboard: LiveDashboard, artifacts: Path
) -> None:
    fast, slow = live_dashboard.suite_ids
    page.goto(live_dashboard.url + "#benchmarks")
    page.locator("#suite-pick option").first.wait_for(state="attached", timeout=20_000)
    page.select_option("#suite-pick", slow)
    page.locator("#heatmap").wait_for(timeout=10_000)
    assert page.locator("#boxplots line.line").count() == 2
    page.select_option("#suite-base", fast)
    verdicts = page.locator("#verdicts tbody tr")
    verdicts.first.wait_for(timeout=10_000)
    assert verdicts.count() == 2
    assert page.locator("#verdicts td.regression").count() == 2
    page.screenshot(path=str(artifacts / "benchmarks.png"), full_page=True)


def test_analytics_draws_the_forecast_band_of_a_live_series(
    page: Any, live_dashboard: LiveDashboard, artifacts: Path
) -> None:
    import time

    import httpx

    api = live_dashboard.url.rstrip("/") + "/api/v1"
    ids = [s["id"] for s in httpx.get(api + "/series", timeout=30).json()]
    target = next(i for i in ids if i.startswith("allele_system_cpu_percent"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # a forecast needs ten points of history
        points = httpx.get(api + "/series/query", params={"id": target, "range": "1h"}, timeout=30)
        if len(points.json()["t"]) >= 12:
            break
        time.sleep(0.5)
    page.goto(live_dashboard.url + "#analytics")
    page.locator(f"#analytics-series option[value='{target}']").wait_for(
        state="attached", timeout=20_000
    )
    page.select_option("#analytics-series", target)
    chart = page.locator(f"#analytics-chart .chart[data-series='{target}']")
    chart.locator("polygon.band").wait_for(timeout=20_000)
    assert chart.locator("polyline.forecast").count() == 1
    assert page.locator("#analytics-chart .chart").count() == 1
    assert page.locator("#analytics-message").inner_text() == ""
    page.screenshot(path=str(artifacts / "analytics.png"), full_page=True)


def test_readable_on_a_phone_and_in_dark_mode(
    browser: Any, live_dashboard: LiveDashboard, artifacts: Path
) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, color_scheme="dark", device_scale_factor=2
    )
    page = context.new_page()
    page.goto(live_dashboard.url + "#overview")
    page.locator(".card").first.wait_for(timeout=20_000)
    # Nothing wider than the screen: no horizontal scrolling on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 20, 25)"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.tagName") == "A"
    page.screenshot(path=str(artifacts / "overview-phone-dark.png"), full_page=True)
    context.close()
