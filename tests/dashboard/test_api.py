"""The REST API against a real live engine and its store: values, errors, the token."""

from __future__ import annotations

import time

import httpx
import pytest

from .conftest import TOKEN, LiveDashboard


def _get(live: LiveDashboard, path: str, **params: object) -> httpx.Response:
    return httpx.get(live.url.rstrip("/") + "/api/v1" + path, params=params, timeout=60)


def _wait_for(predicate, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_components_and_system_are_the_engines(live_dashboard: LiveDashboard) -> None:
    def busy() -> list:  # type: ignore[type-arg]
        # Reads show the state of the engine's last fold: wait for one that saw operations.
        found = _get(live_dashboard, "/components").json()
        return [c for c in found if c["performance"]["operation_count"] > 0]

    components = _wait_for(busy)
    (kraken,) = [c for c in components if c["component_type"] == "kraken_lnn"]
    assert kraken["health"] in ("healthy", "degraded", "unhealthy", "unknown")
    system = _get(live_dashboard, "/system").json()
    overview = _get(live_dashboard, "/overview").json()
    assert {c["component_id"] for c in overview["components"]} == {
        c["component_id"] for c in components
    }
    assert set(overview["system"]) == set(system)
    assert 0 <= system["cpu_percent"]["value"] <= 100
    assert system["process_rss_bytes"]["value"] > 1e6


def test_series_query_matches_the_collector(live_dashboard: LiveDashboard) -> None:
    series = {s["id"]: s for s in _get(live_dashboard, "/series").json()}
    (sid,) = [i for i in series if i.startswith("allele_kraken_sequences_total")]
    data = _get(live_dashboard, "/series/query", id=sid, range="15m").json()
    assert data["t"] == sorted(data["t"]) and len(data["t"]) == len(data["v"]) > 0
    name = series[sid]["name"]
    _, values = live_dashboard.engine.collector.points(name, series[sid]["labels"])
    # The API's newest value is one the collector holds (counters only grow).
    assert data["v"][-1] in set(values.tolist())
    bucketed = _get(live_dashboard, "/series/query", id=sid, range="15m", step=60).json()
    assert len(bucketed["t"]) <= 16 and bucketed["step"] == 60


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"id": "x", "range": "1y"}, "range='1y' is not a duration"),
        ({"id": "x{a=1}", "range": "1h"}, 'is not of the form key="value"'),
        ({"id": "x", "range": "1h", "start": 5}, "either range or start/end"),
        ({"id": "x", "start": 10, "end": 5}, "end=5.0 is before start=10.0"),
        ({"id": "x", "step": -1}, "step"),
    ],
)
def test_bad_queries_get_json_errors_naming_the_value(
    live_dashboard: LiveDashboard, params: dict, fragment: str
) -> None:
    response = _get(live_dashboard, "/series/query", **params)
    assert response.status_code in (400, 422)
    assert fragment in response.json()["error"]


def test_changes_need_the_token(live_dashboard: LiveDashboard) -> None:
    alert = _wait_for(
        lambda: next(
            (
                a
                for a in _get(live_dashboard, "/alerts", state="firing").json()
                if a["rule_name"] == "kraken_busy"
            ),
            None,
        )
    )
    url = f"{live_dashboard.url}api/v1/alerts/{alert['alert_id']}/acknowledge"
    refused = httpx.post(url, json={"by": "tester"}, timeout=60)
    assert refused.status_code == 403 and "Bearer" in refused.json()["error"]
    wrong = httpx.post(
        url, json={"by": "tester"}, headers={"Authorization": "Bearer nope"}, timeout=60
    )
    assert wrong.status_code == 403
    done = httpx.post(
        url, json={"by": "tester"}, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
    )
    assert done.status_code == 200, done.text
    assert done.json()["acknowledged_by"] == "tester"
    missing = httpx.post(
        f"{live_dashboard.url}api/v1/alerts/no-such-alert/resolve",
        json={"by": "tester"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=60,
    )
    assert missing.status_code in (400, 404) and "no-such-alert" in missing.json()["error"]


def test_suites_detail_compare_and_report(live_dashboard: LiveDashboard) -> None:
    fast, slow = live_dashboard.suite_ids
    listed = [s["suite_id"] for s in _get(live_dashboard, "/suites").json()]
    assert fast in listed and slow in listed
    detail = _get(live_dashboard, f"/suites/{slow}").json()
    assert {c["params"]["kernel"] for c in detail["cells"]} == {"sum", "sort"}
    assert all(len(c["samples"]) == 5 and c["stats"]["median"] > 0 for c in detail["cells"])
    verdicts = _get(live_dashboard, "/suites/compare", baseline=fast, current=slow).json()
    # Ten times the input: both cells are slower, and significantly so.
    assert {c["verdict"] for c in verdicts["cells"]} == {"regression"}
    report = _get(live_dashboard, f"/suites/{slow}/report", format="md")
    assert report.status_code == 200 and "dash" in report.text
    assert _get(live_dashboard, "/suites/nope").status_code == 404
    bad = _get(live_dashboard, f"/suites/{slow}/report", format="pdf")
    assert bad.status_code == 400 and "allowed: md, json, html" in bad.json()["error"]


def test_openapi_documents_every_route(live_dashboard: LiveDashboard) -> None:
    paths = _get(live_dashboard, "/openapi.json").json()["paths"]
    for route in (
        "/api/v1/components",
        "/api/v1/series/query",
        "/api/v1/alerts",
        "/api/v1/alerts/{alert_id}/acknowledge",
        "/api/v1/suites/compare",
        "/api/v1/events",
        "/api/v1/analytics/forecast",
    ):
        assert route in paths, route


def test_loopback_only_servers_allow_changes_without_a_token() -> None:
    from allele.observability.dashboard.server import is_loopback, startup_notice

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0")
    assert "changes are allowed without a token" in startup_notice("127.0.0.1", 1, None)
    assert "read-only" in startup_notice("0.0.0.0", 1, None)
