"""NLPAgent behaviour independent of the wire: lifecycle, listeners, cancellation, limits."""

from __future__ import annotations

from functools import partial

import pytest

from allele.agent import AgentConfig, AgentStateError, NLPAgent, RequestRecord
from allele.agent import agent as agent_module
from allele.agent.history import message_tokens
from allele.agent.ratelimit import RateLimiter
from allele.errors import ValidationError
from allele.genome import ConversationalGenome

INSTANT = {"ttft_s": 0.0, "per_token_s": 0.0, "reply_tokens_min": 8, "reply_tokens_max": 8}


def config(**overrides) -> AgentConfig:
    return AgentConfig(provider="synthetic", synthetic=INSTANT, **overrides)


async def test_use_before_initialize_is_a_clear_error():
    agent = NLPAgent(ConversationalGenome(), config())
    with pytest.raises(AgentStateError, match="initialize"):
        await agent.complete("hi")
    assert agent.get_metrics()["requests"] == 0


@pytest.mark.parametrize("message", ["", "   ", None, 5])
async def test_empty_or_non_text_message_is_rejected(message):
    async with NLPAgent(ConversationalGenome(), config()) as agent:
        with pytest.raises(ValidationError, match="non-empty string"):
            await agent.complete(message)


def test_wrong_argument_types_are_rejected():
    with pytest.raises(ValidationError, match="ConversationalGenome"):
        NLPAgent({"empathy": 1.0}, config())  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="AgentConfig"):
        NLPAgent(ConversationalGenome(), {"provider": "synthetic"})  # type: ignore[arg-type]


async def test_history_grows_with_completed_exchanges():
    async with NLPAgent(ConversationalGenome(), config()) as agent:
        first = await agent.complete("one")
        await agent.complete("two")
    assert [m.content for m in agent.history.messages][:2] == ["one", first]
    assert len(agent.history) == 4


def test_setting_a_genome_rewrites_prompt_and_sampling():
    agent = NLPAgent(ConversationalGenome(), config(temperature=1.0))
    before = agent.system_prompt
    agent.genome = ConversationalGenome(traits={"creativity": 1.0, "empathy": 0.0})
    assert agent.system_prompt != before and "empathy 0.00" in agent.system_prompt
    assert agent.sampling.temperature == pytest.approx(1.3)


async def test_listener_gets_a_record_and_a_raising_listener_is_contained():
    records: list[RequestRecord] = []

    def broken(record: RequestRecord) -> None:
        raise RuntimeError("listener bug")

    async with NLPAgent(ConversationalGenome(), config()) as agent:
        agent.add_listener(broken)
        agent.add_listener(records.append)
        text = await agent.complete("hi")
        agent.remove_listener(broken)
        await agent.complete("again")
    assert text and len(records) == 2
    record = records[0]
    assert record.ok and record.error_kind is None and record.attempts == 1
    assert record.tokens_out == 8 and record.usage_source == "provider"
    assert record.started_at.tzinfo is not None and record.latency_s >= (record.ttft_s or 0)
    assert record.to_dict()["provider"] == "synthetic"
    assert agent.get_metrics()["listener_errors"] == 1


async def test_abandoned_stream_is_recorded_as_cancelled():
    records: list[RequestRecord] = []
    async with NLPAgent(ConversationalGenome(), config()) as agent:
        agent.add_listener(records.append)
        stream = agent.chat("hi")
        async for _chunk in stream:
            break
        await stream.aclose()  # type: ignore[attr-defined]
    assert [r.error_kind for r in records] == ["cancelled"]
    assert len(agent.history) == 0
    assert agent.get_metrics()["errors_by_kind"] == {"cancelled": 1}


async def test_rate_limiter_makes_requests_wait(sleeps):
    cfg = config(requests_per_minute=60)
    async with NLPAgent(ConversationalGenome(), cfg, sleep=sleeps) as agent:
        for _ in range(61):
            await agent.complete("hi")
    # The 61st request exceeds the one-minute burst and waits about a second.
    assert len(sleeps.delays) == 1 and 0.9 < sleeps.delays[0] <= 1.0
    assert agent.get_metrics()["rate_limit_wait_s"] == pytest.approx(sleeps.delays[0])


async def test_metrics_summaries():
    async with NLPAgent(ConversationalGenome(), config()) as agent:
        for i in range(3):
            await agent.complete(f"q{i}")
    metrics = agent.get_metrics()
    assert metrics["requests"] == 3 and metrics["successes"] == 3 and metrics["errors"] == 0
    assert metrics["tokens_out"] == 24
    latency = metrics["latency_s"]
    assert latency["p50"] <= latency["p95"] <= latency["max"]
    assert set(metrics["tokens_per_second"]) == {"mean", "p50", "p95", "max"}


async def test_tokens_per_minute_limit_counts_prompt_and_budget_then_settles(sleeps, monkeypatch):
    # The buckets' clock stands still: the bucket refills only as the test says, not by however
    # long a loaded machine takes between requests.
    monkeypatch.setattr(agent_module, "RateLimiter", partial(RateLimiter, clock=lambda: 0.0))
    async with NLPAgent(ConversationalGenome(), config(history_length=0)) as probe:
        prompt = message_tokens(probe.system_prompt) + message_tokens("hi")
        budget = probe.sampling.max_tokens
    used = prompt + 8  # the synthetic provider reports the prompt estimate and 8 reply tokens
    reserved = prompt + budget
    capacity = 2 * used + reserved + 30  # three requests fit, the fourth is 30 tokens short of U
    cfg = config(history_length=0, tokens_per_minute=capacity)
    async with NLPAgent(ConversationalGenome(), cfg, sleep=sleeps) as agent:
        for _ in range(3):
            await agent.complete("hi")
        assert sleeps.delays == []  # unused budget was refunded after each reply
        await agent.complete("hi")
    # The fourth reservation leaves the bucket used - 30 tokens in debt, refilled at capacity/60 /s.
    (wait,) = sleeps.delays
    assert wait == pytest.approx((used - 30) * 60 / capacity, rel=1e-3)
    assert agent.get_metrics()["rate_limit_wait_s"] == pytest.approx(wait)
