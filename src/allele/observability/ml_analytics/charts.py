"""Charts of one series: a terminal sparkline and a self-contained HTML chart.

Both the detection and the forecasting commands (``allele analytics detect`` / ``forecast``) draw
with these two functions, so a series looks the same whichever question was asked of it:

- ``sparkline(values, width=60)``: one line of unicode block characters, the series averaged
  into at most ``width`` buckets (so a long history still fits a terminal line);
- ``series_chart_html(timestamps, values, *, title, ...)``: a full HTML document with plotly.js
  inline (as the benchmark report does, so it opens offline) showing the history, optionally a
  forecast mean with its interval band, and optionally detections marked on the history.

plotly is the optional extra ``report``, imported only when a chart is drawn.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from allele.errors import ValidationError, check_int, require

_BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int = 60) -> str:
    """The series as one line of at most ``width`` block characters (low ``▁`` to high ``█``).

    With more values than ``width``, consecutive values are averaged into ``width`` buckets of
    nearly equal size. Non-finite values are drawn as a space. An empty series gives ``""``;
    a constant series a flat line of ``▄``.
    """
    width = check_int("width", width, 1, 100_000)
    data = [float(v) for v in values]
    if not data:
        return ""
    if len(data) > width:
        buckets = []
        for i in range(width):
            lo = i * len(data) // width
            hi = (i + 1) * len(data) // width
            chunk = [v for v in data[lo:hi] if math.isfinite(v)]
            buckets.append(sum(chunk) / len(chunk) if chunk else math.nan)
        data = buckets
    finite = [v for v in data if math.isfinite(v)]
    if not finite:
        return " " * len(data)
    low, high = min(finite), max(finite)
    span = high - low
    out = []
    for v in data:
        if not math.isfinite(v):
            out.append(" ")
        elif span == 0:
            out.append(_BLOCKS[len(_BLOCKS) // 2])
        else:
            out.append(_BLOCKS[min(len(_BLOCKS) - 1, int((v - low) / span * len(_BLOCKS)))])
    return "".join(out)


def series_chart_html(
    timestamps: Sequence[datetime | float],
    values: Sequence[float],
    *,
    title: str,
    forecast_timestamps: Sequence[datetime | float] | None = None,
    forecast_mean: Sequence[float] | None = None,
    forecast_lower: Sequence[float] | None = None,
    forecast_upper: Sequence[float] | None = None,
    detections: Sequence[tuple[datetime | float, float]] | None = None,
    detection_labels: Sequence[str] | None = None,
) -> str:
    """A self-contained HTML page charting a series' history (plotly.js inline, works offline).

    - ``timestamps`` / ``values``: the history, drawn as a line;
    - ``forecast_timestamps`` with ``forecast_mean`` (and optionally ``forecast_lower`` and
      ``forecast_upper``, both or neither): the forecast as a dashed line over a shaded band;
    - ``detections``: ``(timestamp, value)`` pairs marked with red crosses on the history, each
      with an optional hover label from ``detection_labels``.

    Lengths must match pairwise; a mismatch is a ValidationError naming the argument.
    """
    go: Any = require("plotly.graph_objects", "report")
    _same_length("values", values, "timestamps", timestamps)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=list(timestamps),
            y=[float(v) for v in values],
            mode="lines",
            name="history",
            line={"color": "#1f77b4"},
        )
    )
    if forecast_mean is not None:
        if forecast_timestamps is None:
            raise ValidationError("forecast_mean needs forecast_timestamps, got None")
        _same_length("forecast_mean", forecast_mean, "forecast_timestamps", forecast_timestamps)
        if (forecast_lower is None) != (forecast_upper is None):
            raise ValidationError(
                "forecast_lower and forecast_upper must be given together, got only one"
            )
        xs = list(forecast_timestamps)
        if forecast_lower is not None and forecast_upper is not None:
            _same_length("forecast_lower", forecast_lower, "forecast_timestamps", xs)
            _same_length("forecast_upper", forecast_upper, "forecast_timestamps", xs)
            # The band is one closed polygon: upper bound forwards, lower bound backwards.
            fig.add_trace(
                go.Scatter(
                    x=xs + xs[::-1],
                    y=[float(v) for v in forecast_upper] + [float(v) for v in forecast_lower][::-1],
                    fill="toself",
                    fillcolor="rgba(255,127,14,0.2)",
                    line={"width": 0},
                    hoverinfo="skip",
                    name="interval",
                )
            )
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[float(v) for v in forecast_mean],
                mode="lines",
                name="forecast",
                line={"color": "#ff7f0e", "dash": "dash"},
            )
        )
    if detections:
        if detection_labels is not None:
            _same_length("detection_labels", detection_labels, "detections", detections)
        fig.add_trace(
            go.Scatter(
                x=[t for t, _ in detections],
                y=[float(v) for _, v in detections],
                mode="markers",
                name="detections",
                marker={"color": "#d62728", "symbol": "x", "size": 10},
                text=list(detection_labels) if detection_labels is not None else None,
            )
        )
    fig.update_layout(title=title, hovermode="x unified", template="plotly_white")
    div = fig.to_html(
        full_html=False, include_plotlyjs=True, config={"displaylogo": False, "responsive": True}
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head>"
        f"<body style='font-family:system-ui,sans-serif;margin:1.5em'>{div}</body></html>"
    )


def _same_length(name: str, seq: Sequence[Any], other_name: str, other: Sequence[Any]) -> None:
    if len(seq) != len(other):
        raise ValidationError(
            f"{name} must have as many items as {other_name} ({len(other)}), got {len(seq)}"
        )
