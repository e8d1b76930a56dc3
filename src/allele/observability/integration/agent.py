"""The agent monitor: each request of an ``NLPAgent``, from the ``RequestRecord`` its
listeners get (recorded at once: a request is slow enough that no raw records are kept)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from allele.agent import AgentConfig, NLPAgent, RequestRecord
from allele.errors import ValidationError
from allele.genome import ConversationalGenome
from allele.observability.engine import ObservabilityEngine
from allele.observability.integration.base import ComponentMonitor
from allele.observability.metric_names import AGENT_TOKENS, AGENT_TOKENS_PER_SECOND, AGENT_TTFT
from allele.observability.types import ComponentType


class AgentMonitor(ComponentMonitor):
    """Records each request of an ``NLPAgent`` from the ``RequestRecord`` its listeners get."""

    component_type = ComponentType.NLP_AGENT

    def __init__(
        self,
        *,
        component_id: str | None = None,
        engine: ObservabilityEngine | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(component_id=component_id, engine=engine, metadata=metadata)
        self._request_latency = self._latency("request")
        self._request_ok = self._success("request")
        self._tokens_in = self._counter(AGENT_TOKENS, direction="in")
        self._tokens_out = self._counter(AGENT_TOKENS, direction="out")
        self._ttft = self._timer(AGENT_TTFT)
        self._rate = self.recorder.collector.distribution(AGENT_TOKENS_PER_SECOND, self._labels)

    def attach(self, target: NLPAgent) -> AgentMonitor:
        """Record every request ``target`` makes from now on; returns self."""
        if not isinstance(target, NLPAgent):
            raise ValidationError(f"target must be an NLPAgent, got {type(target).__name__}")
        target.add_listener(self.on_request)
        self._target = target
        self.attached = True
        return self

    def detach(self) -> None:
        """Stop recording requests of the attached agent."""
        if self._target is not None and self.attached:
            self._target.remove_listener(self.on_request)
        super().detach()

    def on_request(self, record: RequestRecord) -> None:
        """Record one finished request (the agent's listener)."""
        try:
            self._request_latency(record.latency_s)
            if record.ok:
                self._request_ok(1)
            else:
                self.recorder.record_error("request", record.error_kind or "unknown")
            self._tokens_in(record.tokens_in)
            self._tokens_out(record.tokens_out)
            if record.ttft_s is not None:
                self._ttft(record.ttft_s)
            rate = record.tokens_per_second
            if rate is not None:
                self._rate.observe(rate)
            self.recorder.heartbeat()
        except Exception:
            self._failed("a request")


class ObservableNLPAgent(NLPAgent):
    """An ``NLPAgent`` that records every request: latency, tokens, errors by kind.

    Same constructor as ``NLPAgent`` plus ``component_id`` and ``engine``. ``monitor`` is its
    ``AgentMonitor``.
    """

    def __init__(
        self,
        genome: ConversationalGenome,
        config: AgentConfig,
        *,
        component_id: str | None = None,
        engine: ObservabilityEngine | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(genome, config, **kwargs)
        self.monitor = AgentMonitor(
            component_id=component_id,
            engine=engine,
            metadata=agent_metadata(self),
        ).attach(self)


def agent_metadata(agent: NLPAgent) -> dict[str, Any]:
    return {
        "provider": agent.provider_name,
        "model": agent.config.model,
        "synthetic": agent.synthetic,
    }
