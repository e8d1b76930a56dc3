"""``allele analytics forecast NAME --horizon 1h``: forecast a stored series.

Reads the series from the observability store (``--store`` or ``$ALLELE_STORE_URI``), takes its
latest ``--history`` points, forecasts ``--horizon`` ahead at the series' median spacing with
``forecast()`` and prints a sparkline of the history and of the forecast with a few checkpoints
of the interval. ``--html FILE`` writes a chart: history, forecast, interval band and the level
shifts the analyzer finds in the history, marked. Exit codes: 0 forecast, 2 bad input, a store
that cannot be read, no such series, or an output file that cannot be written.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import typer

from allele.cli import analytics_app

_SPAN = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_CHECKPOINTS = 5


def parse_span(text: str, what: str = "horizon") -> float:
    """Seconds in a span like ``90s``, ``15m``, ``1h`` or ``2d``, or a ValidationError."""
    from allele.errors import ValidationError

    match = _SPAN.match(text.strip())
    if not match or float(match.group(1)) <= 0:
        raise ValidationError(f"{what}={text!r} must be a positive span like 90s, 15m, 1h or 2d")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _labels(pairs: list[str]) -> dict[str, str] | None:
    from allele.errors import ValidationError

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValidationError(f"--label {pair!r} must look like key=value")
        out[key] = value
    return out or None


@analytics_app.command("forecast")
def forecast_command(
    name: str = typer.Argument(..., help="Metric name of the stored series."),
    horizon: str = typer.Option("1h", "--horizon", help="How far ahead: 90s, 15m, 1h, 2d."),
    store_uri: str | None = typer.Option(
        None, "--store", help="Store URI (default: $ALLELE_STORE_URI or sqlite:///allele.db)."
    ),
    label: list[str] = typer.Option([], "--label", help="Select series by key=value."),
    history: int = typer.Option(1000, "--history", help="Latest points to fit on."),
    level: float = typer.Option(0.95, "--level", help="Interval level in (0, 1)."),
    season: int | None = typer.Option(
        None, "--season", help="Season in samples (default: detect)."
    ),
    html: Path | None = typer.Option(None, "--html", help="Write an HTML chart to this file."),
    width: int = typer.Option(60, "--width", help="Sparkline width in characters."),
) -> None:
    """Forecast a stored series, with its interval, as a sparkline (and an HTML chart)."""
    from rich.console import Console
    from rich.markup import escape

    from allele.errors import AlleleError

    out, err = Console(soft_wrap=True), Console(stderr=True, soft_wrap=True)
    try:
        report = _forecast(name, horizon, store_uri, label, history, level, season, width)
        if html is not None:
            html.write_text(report.pop("html_page")(), encoding="utf-8")
    except AlleleError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(code=2) from exc
    except OSError as exc:
        err.print(f"[red]error:[/red] cannot write {escape(f'{html}: {exc}')}")
        raise typer.Exit(code=2) from exc
    for line in report["lines"]:
        out.print(line, markup=False, highlight=False)
    if html is not None:
        err.print(f"wrote the chart to {html}")


def _forecast(
    name: str,
    horizon: str,
    store_uri: str | None,
    label: list[str],
    history: int,
    level: float,
    season: int | None,
    width: int,
) -> dict[str, Any]:
    import numpy as np

    from allele.errors import ValidationError, check_int
    from allele.observability.ml_analytics import PredictiveAnalyzer, forecast
    from allele.observability.ml_analytics.charts import series_chart_html, sparkline
    from allele.observability.ml_analytics.prediction.forecast import MAX_HORIZON
    from allele.observability.store import open_store

    span = parse_span(horizon)
    history = check_int("history", history, 3, 10_000_000)
    labels = _labels(label)
    with open_store(store_uri) as store:
        keys = [
            k
            for k in store.list_series(name)
            if labels is None or labels.items() <= dict(k.labels).items()
        ]
        if not keys:
            raise ValidationError(
                f"no stored series named {name!r}" + (f" with labels {labels}" if labels else "")
            )
        if len(keys) > 1:
            choices = ", ".join(
                ",".join(f"{k}={v}" for k, v in key.labels) or "(none)" for key in keys
            )
            raise ValidationError(
                f"{name!r} has {len(keys)} series; pick one with --label (labels: {choices})"
            )
        points = store.query_series(name, dict(keys[0].labels))
    times, values = points.timestamps[-history:], points.values[-history:]
    if len(values) < 3:
        raise ValidationError(f"{name!r} has {len(values)} stored points; forecasting needs 3")
    gaps = np.diff(times)
    spacing = float(np.median(gaps[gaps > 0])) if (gaps > 0).any() else 1.0
    steps = check_int("horizon in samples", math.ceil(span / spacing), 1, MAX_HORIZON)
    result = forecast(values, steps, level=level, season_length=season)
    ahead = times[-1] + spacing * np.arange(1, steps + 1)
    shifts = PredictiveAnalyzer().analyze(values).change_points if len(values) >= 10 else []

    lines = [
        f"{name}: {len(values)} points every {spacing:g} s; forecast {steps} steps ({horizon}) "
        f"with model {result.model}, season {result.season_length}, {level:.0%} interval",
        f"history  {sparkline(values.tolist(), width)}",
        f"forecast {sparkline(result.mean.tolist(), width)}",
    ]
    from datetime import UTC, datetime

    for j in sorted(
        {round(k * (steps - 1) / max(_CHECKPOINTS - 1, 1)) for k in range(_CHECKPOINTS)}
    ):
        when = datetime.fromtimestamp(float(ahead[j]), tz=UTC).isoformat(timespec="seconds")
        lines.append(
            f"  {when}  {result.mean[j]:.6g}  [{result.lower[j]:.6g}, {result.upper[j]:.6g}]"
        )
    if shifts:
        lines.append(f"level shifts in the history at {len(shifts)} point(s)")

    def page() -> str:
        return series_chart_html(
            times.tolist(),
            values.tolist(),
            title=f"{name}: forecast {horizon}",
            forecast_timestamps=ahead.tolist(),
            forecast_mean=result.mean.tolist(),
            forecast_lower=result.lower.tolist(),
            forecast_upper=result.upper.tolist(),
            detections=[(float(times[i]), float(values[i])) for i in shifts],
            detection_labels=["level shift"] * len(shifts),
        )

    return {"lines": lines, "html_page": page, "forecast": result}
