"""The Prometheus text exposition format (version 0.0.4) and an ASGI ``/metrics`` endpoint.

Mapping (chosen once, here):

* counters: ``# TYPE <name>_total counter`` with the running total (``_total`` is appended
  unless the name already ends with it);
* gauges: ``# TYPE <name> gauge`` with the latest value;
* histograms, timers and distributions: **histograms** by default -- ``<name>_bucket{le=...}``
  with the cumulative count per bucket of the fixed ``buckets.BOUNDS`` (the same in every
  process, so ``sum by (le)`` across instances and ``histogram_quantile`` work), plus
  ``<name>_sum`` and ``<name>_count`` of everything recorded (totals that never go down).
  ``distributions="summary"`` exposes them as **summaries** instead: exact
  ``quantile="0.5|0.95|0.99"`` over the last ``window_s`` seconds (not aggregatable across
  instances). A family whose buckets are unknown (points stored before the store counted
  buckets) is exposed as a summary.

HELP texts say what each metric is (``descriptions``). Series from a store whose writer has
stopped (stale, see ``staleness``) are left out; ``include_stale=True`` exposes them with the
timestamp of their last point instead, so Prometheus knows how old they are. Label values are
escaped (``\\``, ``"`` and newlines), HELP text too (``\\`` and newlines).
``metrics_asgi_app`` is a plain ASGI callable: mount it in any ASGI framework or run it with
``allele.observability.export.server``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from allele.errors import ValidationError
from allele.observability import buckets
from allele.observability.export.descriptions import describe
from allele.observability.export.samples import DISTRIBUTIONS, Sample, by_name, sample_source
from allele.observability.types import MetricType

DISTRIBUTION_FORMATS = ("histogram", "summary")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def escape_label_value(value: str) -> str:
    """``value`` escaped for a label: backslash, double quote and newline."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample value as the format writes it (``NaN``, ``+Inf``, ``-Inf`` or a float)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _labels(pairs: tuple[tuple[str, str], ...], extra: tuple[tuple[str, str], ...] = ()) -> str:
    every = pairs + extra
    if not every:
        return ""
    return "{" + ",".join(f'{k}="{escape_label_value(v)}"' for k, v in every) + "}"


def family_name(name: str, kind: MetricType) -> str:
    """The exposed name of metric ``name``: counters end in ``_total``."""
    if kind is MetricType.COUNTER and not name.endswith("_total"):
        return f"{name}_total"
    return name


def _help(name: str, kind: MetricType, as_summary: bool, window_s: float | None) -> str:
    text = describe(name, kind)
    if kind in DISTRIBUTIONS and as_summary:
        span = f"last {window_s:g} s" if window_s is not None else "recent window"
        text += f"; quantiles over the {span}"
    return text


def _check_format(distributions: str) -> str:
    if distributions not in DISTRIBUTION_FORMATS:
        raise ValidationError(
            f"distributions={distributions!r} must be one of {', '.join(DISTRIBUTION_FORMATS)}"
        )
    return distributions


def _has_buckets(sample: Sample) -> bool:
    counts = sample.buckets
    return counts is not None and len(counts) == buckets.SIZE and sum(counts) == sample.count


def render(
    samples: list[Sample], window_s: float | None = None, distributions: str = "histogram"
) -> str:
    """The exposition text of ``samples`` (one HELP/TYPE block per metric name).

    ``distributions`` is "histogram" (buckets, the default) or "summary" (quantiles). A
    sample marked ``stale`` carries the timestamp of its last point."""
    _check_format(distributions)
    lines: list[str] = []
    for name, group in by_name(samples).items():
        kind = group[0].key.kind
        group = [sample for sample in group if sample.key.kind is kind]  # one name, one type
        exposed = family_name(name, kind)
        as_summary = kind in DISTRIBUTIONS and (
            distributions == "summary" or not all(_has_buckets(s) for s in group)
        )
        if kind in DISTRIBUTIONS:
            prom_type = "summary" if as_summary else "histogram"
        else:
            prom_type = "counter" if kind is MetricType.COUNTER else "gauge"
        lines.append(f"# HELP {exposed} {_escape_help(_help(name, kind, as_summary, window_s))}")
        lines.append(f"# TYPE {exposed} {prom_type}")
        for sample in group:
            labels = sample.key.labels
            at = _timestamp(sample)
            if kind in DISTRIBUTIONS:
                if as_summary:
                    for q, v in sample.quantiles:
                        quantile = (("quantile", format_value(q)),)
                        lines.append(f"{exposed}{_labels(labels, quantile)} {format_value(v)}{at}")
                else:
                    assert sample.buckets is not None
                    for le, n in buckets.cumulative(sample.buckets):
                        bound = (("le", format_value(le)),)
                        lines.append(f"{exposed}_bucket{_labels(labels, bound)} {n}{at}")
                lines.append(f"{exposed}_sum{_labels(labels)} {format_value(sample.sum)}{at}")
                lines.append(f"{exposed}_count{_labels(labels)} {sample.count}{at}")
            elif sample.value is not None:
                lines.append(f"{exposed}{_labels(labels)} {format_value(sample.value)}{at}")
    return "\n".join(lines) + "\n" if lines else ""


def _timestamp(sample: Sample) -> str:
    """`` <ms>`` for a stale sample (its last point's time), else nothing: a live value is
    stamped by the scrape."""
    if not sample.stale or sample.timestamp is None:
        return ""
    return f" {round(sample.timestamp * 1000)}"


def exposition(
    source: Any,
    window_s: float = 600.0,
    distributions: str = "histogram",
    *,
    include_stale: bool = False,
) -> str:
    """The exposition text of a collector, a store or a sample function."""
    read = sample_source(source, window_s, include_stale=include_stale)
    return render(read(None), window_s, distributions)


def metrics_asgi_app(
    source: Any,
    window_s: float = 600.0,
    path: str = "/metrics",
    *,
    distributions: str = "histogram",
    include_stale: bool = False,
) -> ASGIApp:
    """An ASGI app answering ``GET path`` with the exposition of ``source``.

    ``source`` is a ``MetricsCollector`` (live values), a ``Store`` (latest stored values) or a
    function ``name -> list[Sample]``. Other paths get 404, other methods 405; lifespan events
    are acknowledged. The text is built in a worker thread so the event loop stays free.

    Mounted inside another ASGI app, it answers at ``<mount>/metrics``, or at the mount point
    itself when that is ``path`` (``app.mount("/metrics", metrics_asgi_app(c))``); frameworks
    that strip the mount prefix from ``scope["path"]`` and those that keep it both work.
    """
    _check_format(distributions)
    read = sample_source(source, window_s, include_stale=include_stale)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if not _is_metrics_path(scope, path):
            await _respond(send, 404, b"not found; metrics are at " + path.encode() + b"\n")
            return
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, b"method not allowed\n", [(b"allow", b"GET, HEAD")])
            return
        text = await asyncio.to_thread(lambda: render(read(None), window_s, distributions))
        body = text.encode("utf-8")
        await _respond(
            send,
            200,
            b"" if method == "HEAD" else body,
            [(b"content-type", CONTENT_TYPE.encode())],
            length=len(body),
        )

    return app


def _is_metrics_path(scope: Scope, path: str) -> bool:
    full = str(scope.get("path", ""))
    if full == path:
        return True
    root = str(scope.get("root_path", "") or "").rstrip("/")
    if not root:
        return False
    inner = full[len(root) :] if full.startswith(root) else full
    return inner == path or (inner in ("", "/") and root.endswith(path))


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
    length: int | None = None,
) -> None:
    all_headers = [
        (b"content-length", str(len(body) if length is None else length).encode()),
        *(headers or [(b"content-type", b"text/plain; charset=utf-8")]),
    ]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})
