"""What an agent measured: one RequestRecord per request, and running totals over all of them.

Definitions
    latency_s       from the call to ``chat``/``complete`` to the end of the reply, including
                    rate-limit waits and retries.
    ttft_s          from the call to the first reply chunk reaching the caller.
    tokens_in/out   the provider's reported usage when it sent one (``usage_source="provider"``),
                    otherwise the ``ceil(chars / 4)`` estimate of :mod:`allele.agent.history`
                    (``usage_source="estimate"``).
    tokens_per_s    ``tokens_out / (latency_s - ttft_s)`` -- the generation rate after the first
                    chunk -- or ``tokens_out / latency_s`` when the reply arrived in one piece.
Totals keep the last ``SAMPLE_WINDOW`` per-request values for their percentiles, which are
computed when read, not on the request path.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

SAMPLE_WINDOW = 2048


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One finished request (successful or not) as the agent's listeners receive it."""

    provider: str
    model: str
    latency_s: float
    ttft_s: float | None
    tokens_in: int
    tokens_out: int
    ok: bool
    error_kind: str | None
    usage_source: str
    synthetic: bool
    attempts: int
    started_at: datetime
    streamed: bool = True

    @property
    def tokens_per_second(self) -> float | None:
        """Output tokens per second of generation (see module docstring), or None."""
        if not self.ok or self.tokens_out == 0:
            return None
        span = self.latency_s
        if self.streamed and self.ttft_s is not None and self.latency_s - self.ttft_s > 0:
            span = self.latency_s - self.ttft_s
        return self.tokens_out / span if span > 0 else None

    def to_dict(self) -> dict[str, Any]:
        """Return the record as plain JSON-ready values (timestamp in ISO 8601 UTC)."""
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["tokens_per_second"] = self.tokens_per_second
        return data


def _summary(samples: deque[float]) -> dict[str, float | None]:
    if not samples:
        return {"mean": None, "p50": None, "p95": None, "max": None}
    ordered = sorted(samples)
    n = len(ordered)

    def pct(q: float) -> float:
        # Linear interpolation between closest ranks (numpy's default), without numpy.
        pos = q * (n - 1)
        lo = int(pos)
        hi = min(lo + 1, n - 1)
        return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)

    return {"mean": sum(ordered) / n, "p50": pct(0.5), "p95": pct(0.95), "max": ordered[-1]}


@dataclass
class AgentMetrics:
    """Running totals of an agent's requests; :meth:`snapshot` gives them as a plain dict."""

    provider: str
    model: str
    synthetic: bool
    requests: int = 0
    successes: int = 0
    retries: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    listener_errors: int = 0
    rate_limit_wait_s: float = 0.0
    errors_by_kind: Counter[str] = field(default_factory=Counter)
    usage_sources: Counter[str] = field(default_factory=Counter)
    latency_s: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLE_WINDOW))
    ttft_s: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLE_WINDOW))
    tokens_per_s: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLE_WINDOW))

    def add(self, record: RequestRecord) -> None:
        """Count one finished request."""
        self.requests += 1
        self.retries += record.attempts - 1
        self.tokens_in += record.tokens_in
        self.tokens_out += record.tokens_out
        self.usage_sources[record.usage_source] += 1
        if record.ok:
            self.successes += 1
            self.latency_s.append(record.latency_s)
            rate = record.tokens_per_second
            if rate is not None:
                self.tokens_per_s.append(rate)
        else:
            self.errors_by_kind[record.error_kind or "unknown"] += 1
        if record.ttft_s is not None:
            self.ttft_s.append(record.ttft_s)

    def snapshot(self) -> dict[str, Any]:
        """Return totals and latency / TTFT / tokens-per-second summaries as plain values."""
        return {
            "provider": self.provider,
            "model": self.model,
            "synthetic": self.synthetic,
            "requests": self.requests,
            "successes": self.successes,
            "errors": sum(self.errors_by_kind.values()),
            "errors_by_kind": dict(self.errors_by_kind),
            "retries": self.retries,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "usage_sources": dict(self.usage_sources),
            "latency_s": _summary(self.latency_s),
            "ttft_s": _summary(self.ttft_s),
            "tokens_per_second": _summary(self.tokens_per_s),
            "rate_limit_wait_s": self.rate_limit_wait_s,
            "listener_errors": self.listener_errors,
        }
