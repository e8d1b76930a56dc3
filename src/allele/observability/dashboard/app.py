"""The dashboard's web application: the REST API under ``/api/v1``, the event stream, the page.

>>> from allele.observability.dashboard.app import create_app
>>> from allele.observability.dashboard.source import StoreSource
>>> from allele.observability.store import open_store
>>> app = create_app(StoreSource(open_store("sqlite://")))   # doctest: +SKIP

Reads are open; changes (acknowledge, resolve) need ``Authorization: Bearer <token>`` when a
token is set. Without a token, changes are allowed only when the server listens on loopback
alone (``allow_unauthenticated_changes``), which ``serve`` decides and says at start. Errors are
JSON ``{"error": message}`` naming the bad value. CORS is off unless origins are given.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from allele.errors import AlleleError, DependencyError, ValidationError

try:  # FastAPI resolves the endpoints' annotations by name: its types live at module level.
    from fastapi import Body, FastAPI, Header, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise DependencyError(
        "the dashboard needs FastAPI and uvicorn; install them with: "
        "pip install 'allele[dashboard]'"
    ) from exc

from allele.observability.dashboard.analytics import AnalyticsUnavailable
from allele.observability.dashboard.events import EventHub
from allele.observability.dashboard.source import (
    StoreSource,
    downsample,
    encode,
    parse_series_id,
)

API = "/api/v1"
_RANGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_range(text: str) -> float:
    """``15m``, ``1h``, ``7d`` -> seconds (a bad value names what is allowed)."""
    unit = text[-1:] if text else ""
    try:
        number = float(text[:-1]) if unit in _RANGE_UNITS else math.nan
    except ValueError:
        number = math.nan
    if (
        not (number > 0 and math.isfinite(number))
        or number * _RANGE_UNITS.get(unit, 1) > 366 * 86400
    ):
        raise ValidationError(
            f"range={text!r} is not a duration such as 30s, 15m, 1h or 7d (at most 366d)"
        )
    return number * _RANGE_UNITS[unit]


def create_app(
    source: StoreSource,
    *,
    token: str | None = None,
    allow_unauthenticated_changes: bool = False,
    cors_origins: Sequence[str] = (),
    event_interval: float = 1.0,
    mlflow_uri: str | None = None,
) -> Any:
    """The FastAPI application serving ``source`` (needs the ``dashboard`` extra)."""
    hub = EventHub(source, interval=event_interval)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        yield
        await hub.stop()

    app = FastAPI(
        title="Allele dashboard",
        version="1",
        docs_url=f"{API}/docs",
        openapi_url=f"{API}/openapi.json",
        lifespan=lifespan,
    )
    app.state.hub = hub
    app.state.source = source
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["*"])

    @app.exception_handler(AlleleError)
    async def _allele_error(_: Request, exc: AlleleError) -> JSONResponse:
        # The store's and the benchmark storage's not-found errors read "no stored ...".
        status = 404 if str(exc).startswith("no stored") else 400
        return JSONResponse({"error": str(exc)}, status_code=status)

    @app.exception_handler(AnalyticsUnavailable)
    async def _unavailable(_: Request, exc: AnalyticsUnavailable) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=501)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        places = ("query", "body", "path", "header")
        problems = [
            f"{'.'.join(str(p) for p in e['loc'] if p not in places)}: {e['msg']}"
            for e in exc.errors()
        ]
        return JSONResponse({"error": "; ".join(problems)}, status_code=422)

    def _authorize(authorization: str | None) -> None:
        if token is None:
            if allow_unauthenticated_changes:
                return
            raise _Forbidden(
                "changes need a token: start the dashboard with ALLELE_DASHBOARD_TOKEN set "
                "(or bind it to 127.0.0.1 only)"
            )
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise _Forbidden("a valid 'Authorization: Bearer <token>' header is required")

    class _Forbidden(Exception):
        pass

    @app.exception_handler(_Forbidden)
    async def _forbidden(_: Request, exc: _Forbidden) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=403)

    async def off_loop(fn: Any, *args: Any) -> Any:
        # Store reads go to a worker thread: the event loop keeps serving the streams.
        return await asyncio.to_thread(fn, *args)

    # --- overview -------------------------------------------------------------------------

    @app.get(f"{API}/status", tags=["overview"])
    async def status() -> dict[str, Any]:
        """What this server reads, and whether changes need a token."""
        return {
            "live": source.live,
            "changes": "token" if token else "open" if allow_unauthenticated_changes else "off",
            "mlflow": mlflow_uri,
            "clients": len(hub.clients),
        }

    @app.get(f"{API}/components", tags=["overview"])
    async def components() -> list[dict[str, Any]]:
        """Every component with its health, heartbeat and performance."""
        return await off_loop(source.components)

    @app.get(f"{API}/system", tags=["overview"])
    async def system() -> dict[str, Any]:
        """The newest system and process sample."""
        return await off_loop(source.system)

    # --- series ---------------------------------------------------------------------------

    @app.get(f"{API}/series", tags=["series"])
    async def series_list() -> list[dict[str, Any]]:
        """Every series: id, name, labels and kind."""
        return [s.to_dict() for s in await off_loop(source.series)]

    @app.get(f"{API}/series/query", tags=["series"])
    async def series_query(
        id: str = Query(..., description='A series id: name or name{label="value"}.'),
        range: str | None = Query(None, description="A relative range ending now: 15m, 1h..."),
        start: float | None = Query(None, description="Epoch seconds (with end)."),
        end: float | None = Query(None, description="Epoch seconds."),
        step: float | None = Query(None, gt=0, description="Seconds per bucket (mean)."),
    ) -> Response:
        """Points of one series in a range, averaged into buckets of ``step`` seconds."""
        name, labels = parse_series_id(id)
        if range is not None:
            if start is not None:
                raise ValidationError("give either range or start/end, not both")
            end = time.time() if end is None else end
            start = end - parse_range(range)
        if start is not None and end is not None and end < start:
            raise ValidationError(f"end={end} is before start={start}")
        ts, values = await off_loop(source.points, name, labels, start, end)
        body = {"id": id, "start": start, "end": end, **downsample(ts, values, step)}
        # Encoded here in one call: FastAPI's generic encoder walks thousands of floats one by one.
        return Response(encode(body), media_type="application/json")

    # --- alerts ---------------------------------------------------------------------------

    @app.get(f"{API}/alerts", tags=["alerts"])
    async def alerts(
        state: str | None = Query(None, description="pending, firing or resolved; all if unset."),
    ) -> list[dict[str, Any]]:
        """Alerts, newest first."""
        if state not in (None, "pending", "firing", "resolved", "active"):
            raise ValidationError(
                f"state={state!r} is unknown; allowed: pending, firing, resolved, active"
            )
        items = await off_loop(source.alerts, state)
        return sorted(items, key=lambda a: str(a.get("started_at")), reverse=True)

    @app.post(f"{API}/alerts/{{alert_id}}/acknowledge", tags=["alerts"])
    async def acknowledge(
        alert_id: str,
        by: str = Body(..., embed=True, min_length=1, max_length=200),
        comment: str | None = Body(None, embed=True, max_length=2000),
        authorization: str | None = Header(None),
    ) -> dict[str, Any]:
        """Acknowledge an active alert (needs the token)."""
        _authorize(authorization)
        return await off_loop(source.acknowledge, alert_id, by, comment)

    @app.post(f"{API}/alerts/{{alert_id}}/resolve", tags=["alerts"])
    async def resolve(
        alert_id: str,
        by: str = Body(..., embed=True, min_length=1, max_length=200),
        comment: str | None = Body(None, embed=True, max_length=2000),
        authorization: str | None = Header(None),
    ) -> dict[str, Any]:
        """Resolve an active alert by hand (needs the token)."""
        _authorize(authorization)
        return await off_loop(source.resolve, alert_id, by, comment)

    # --- benchmarks -------------------------------------------------------------------------

    @app.get(f"{API}/suites", tags=["benchmarks"])
    async def suites(limit: int = Query(100, ge=1, le=1000)) -> list[dict[str, Any]]:
        """Stored suite runs, newest first."""
        from allele.observability.benchmarking.storage import list_runs

        store = _store(source)
        return [s.to_dict() for s in await off_loop(list_runs, store, None, limit)]

    @app.get(f"{API}/suites/compare", tags=["benchmarks"])
    async def compare(
        baseline: str = Query(..., description="A suite id or name (its latest run)."),
        current: str = Query(..., description="A suite id or name (its latest run)."),
    ) -> dict[str, Any]:
        """The verdict of every cell of ``current`` against ``baseline``."""
        from allele.observability.benchmarking.compare import compare_runs
        from allele.observability.benchmarking.storage import load_run

        store = _store(source)
        base = await off_loop(load_run, store, baseline)
        cur = await off_loop(load_run, store, current)
        return compare_runs(base, cur).to_dict()

    @app.get(f"{API}/suites/{{suite_id}}", tags=["benchmarks"])
    async def suite(suite_id: str) -> dict[str, Any]:
        """One run: its cells with statistics and samples (for heatmaps and box plots)."""
        from allele.observability.benchmarking.storage import load_run

        run = await off_loop(load_run, _store(source), suite_id)
        return _suite_detail(run)

    @app.get(f"{API}/suites/{{suite_id}}/report", tags=["benchmarks"])
    async def report(
        suite_id: str, format: str = Query("md", description="md, json or html.")
    ) -> Response:
        """The run's report as Markdown, JSON or self-contained HTML."""
        from allele.observability.benchmarking.report.html import html_report
        from allele.observability.benchmarking.report.jsonreport import json_report
        from allele.observability.benchmarking.report.markdown import markdown_report
        from allele.observability.benchmarking.storage import load_run

        run = await off_loop(load_run, _store(source), suite_id)
        if format == "md":
            return Response(markdown_report(run), media_type="text/markdown")
        if format == "json":
            return JSONResponse(json_report(run))
        if format == "html":
            return HTMLResponse(await off_loop(html_report, run))
        raise ValidationError(f"format={format!r} is unknown; allowed: md, json, html")

    # --- analytics --------------------------------------------------------------------------

    @app.get(f"{API}/analytics/forecast", tags=["analytics"])
    async def forecast(
        id: str = Query(..., description="A series id."),
        horizon: int = Query(24, ge=1, le=2000, description="Points to forecast."),
        level: float = Query(0.95, gt=0.5, lt=1.0, description="Interval level."),
        range: str = Query("24h", description="History to forecast from."),
    ) -> dict[str, Any]:
        """The series' forecast with its interval (needs the analytics modules)."""
        from allele.observability.dashboard.analytics import forecast_series

        name, labels = parse_series_id(id)
        end = time.time()
        ts, values = await off_loop(source.points, name, labels, end - parse_range(range), None)
        return await off_loop(forecast_series, ts, values, horizon, level)

    # --- live -----------------------------------------------------------------------------

    @app.get(f"{API}/events", tags=["live"])
    async def events(
        request: Request,
        series: list[str] = Query([], description="Series ids whose new points to send."),
    ) -> StreamingResponse:
        """Server-sent events, one message a second: new points, health and alert changes."""
        client = hub.subscribe(frozenset(series))

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield b"retry: 2000\n\n"
                while True:
                    data = await client.queue.get()
                    if data is None or await request.is_disconnected():
                        return
                    yield data
            finally:
                hub.unsubscribe(client)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    # --- the page -------------------------------------------------------------------------

    static = resources.files("allele.observability.dashboard").joinpath("static")
    page = static.joinpath("index.html").read_text(encoding="utf-8")
    assets = {
        name: (static.joinpath(name).read_bytes(), media)
        for name, media in (("app.js", "text/javascript"), ("app.css", "text/css"))
    }

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    @app.get("/static/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name not in assets:
            return JSONResponse({"error": f"no static file {name!r}"}, status_code=404)
        body, media = assets[name]
        return Response(body, media_type=media, headers={"Cache-Control": "no-cache"})

    return app


def _store(source: StoreSource) -> Any:
    if source.store is None:
        raise ValidationError(
            "this dashboard has no store: benchmark suites are read from the store "
            "(set ALLELE_STORE_URI, or run `allele dashboard --store URI`)"
        )
    return source.store


def _suite_detail(run: Any) -> dict[str, Any]:
    from allele.observability.benchmarking.report.summary import summarize_run

    summary = summarize_run(run)
    cells = []
    for row, cell in zip(summary.rows, run.cells, strict=True):
        stats = row.stats.to_dict() if row.stats is not None else None
        cells.append(
            {
                "key": row.key,
                "params": row.params,
                "status": row.status,
                "error": row.error,
                "stats": stats,
                "samples": [float(s) for s in cell.samples.get(summary.metric, [])],
                "metrics": {
                    k: (v if isinstance(v, float) and math.isfinite(v) else None)
                    for k, v in cell.metrics.items()
                },
            }
        )
    return {
        "suite_id": run.suite_id,
        "name": run.name,
        "component": run.component,
        "created_at": run.created_at.isoformat(),
        "status": run.status,
        "metric": summary.metric,
        "params": summary.param_values,
        "varying": summary.varying_params,
        "cells": cells,
    }
