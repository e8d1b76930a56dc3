"""The Prometheus text exposition format (version 0.0.4) and an ASGI ``/metrics`` endpoint.

Mapping (chosen once, here):

* counters: ``# TYPE <name>_total counter`` with the running total (``_total`` is appended
  unless the name already ends with it);
* gauges: ``# TYPE <name> gauge`` with the latest value;
* histograms, timers and distributions: **summaries** -- ``<name>{quantile="0.5|0.95|0.99"}``
  over the last ``window_s`` seconds, plus ``<name>_sum`` and ``<name>_count`` of everything
  recorded (a live collector's totals since it started: they never go down). Summaries, not
  ``_bucket`` histograms, because the collector keeps raw points and computes exact quantiles
  on read; buckets would need bucket bounds chosen per metric in advance.

Label values are escaped (``\\``, ``"`` and newlines), HELP text too (``\\`` and newlines).
``metrics_asgi_app`` is a plain ASGI callable: mount it in any ASGI framework or run it with
``allele.observability.export.server``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from allele.observability.export.samples import DISTRIBUTIONS, Sample, by_name, sample_source
from allele.observability.types import MetricType

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


def _help(name: str, kind: MetricType, window_s: float | None) -> str:
    if kind in DISTRIBUTIONS:
        span = f"last {window_s:g} s" if window_s is not None else "recent window"
        return f"Allele {kind.value} {name} (quantiles over the {span})"
    return f"Allele {kind.value} {name}"


def render(samples: list[Sample], window_s: float | None = None) -> str:
    """The exposition text of ``samples`` (one HELP/TYPE block per metric name)."""
    lines: list[str] = []
    for name, group in by_name(samples).items():
        kind = group[0].key.kind
        exposed = family_name(name, kind)
        prom_type = (
            "summary"
            if kind in DISTRIBUTIONS
            else "counter"
            if kind is MetricType.COUNTER
            else "gauge"
        )
        lines.append(f"# HELP {exposed} {_escape_help(_help(name, kind, window_s))}")
        lines.append(f"# TYPE {exposed} {prom_type}")
        for sample in group:
            if sample.key.kind is not kind:
                continue  # one name, one type: a store may hold both from different runs
            labels = sample.key.labels
            if kind in DISTRIBUTIONS:
                for q, v in sample.quantiles:
                    quantile = (("quantile", format_value(q)),)
                    lines.append(f"{exposed}{_labels(labels, quantile)} {format_value(v)}")
                lines.append(f"{exposed}_sum{_labels(labels)} {format_value(sample.sum)}")
                lines.append(f"{exposed}_count{_labels(labels)} {sample.count}")
            elif sample.value is not None:
                lines.append(f"{exposed}{_labels(labels)} {format_value(sample.value)}")
    return "\n".join(lines) + "\n" if lines else ""


def exposition(source: Any, window_s: float = 600.0) -> str:
    """The exposition text of a collector, a store or a sample function."""
    return render(sample_source(source, window_s)(None), window_s)


def metrics_asgi_app(source: Any, window_s: float = 600.0, path: str = "/metrics") -> ASGIApp:
    """An ASGI app answering ``GET path`` with the exposition of ``source``.

    ``source`` is a ``MetricsCollector`` (live values), a ``Store`` (latest stored values) or a
    function ``name -> list[Sample]``. Other paths get 404, other methods 405; lifespan events
    are acknowledged. The text is built in a worker thread so the event loop stays free.

    Mounted inside another ASGI app, it answers at ``<mount>/metrics``, or at the mount point
    itself when that is ``path`` (``app.mount("/metrics", metrics_asgi_app(c))``); frameworks
    that strip the mount prefix from ``scope["path"]`` and those that keep it both work.
    """
    read = sample_source(source, window_s)

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
        body = (await asyncio.to_thread(lambda: render(read(None), window_s))).encode("utf-8")
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
