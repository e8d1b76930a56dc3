"""The synthetic load provider: determinism, latency settings, injected errors, labelling."""

from __future__ import annotations

import pytest

from allele.agent import (
    AgentConfig,
    NLPAgent,
    ProtocolError,
    ProviderCallError,
    RequestRecord,
)
from allele.agent.providers import SyntheticProvider
from allele.genome import ConversationalGenome

from .conftest import ManualClock

INSTANT = {"ttft_s": 0.0, "per_token_s": 0.0}


def synthetic_agent(sleeps, genome=None, **synthetic) -> NLPAgent:
    config = AgentConfig(
        provider="synthetic", max_retries=0, synthetic={**INSTANT, **synthetic}, max_tokens=400
    )
    return NLPAgent(genome or ConversationalGenome(genome_id="g"), config, sleep=sleeps)


async def reply(agent: NLPAgent, message: str) -> list[str]:
    return [chunk async for chunk in agent.chat(message)]


async def test_same_seed_and_prompt_give_the_same_reply(sleeps):
    async with synthetic_agent(sleeps, seed=7) as a, synthetic_agent(sleeps, seed=7) as b:
        first, second = await reply(a, "hello"), await reply(b, "hello")
    assert first == second and len(first) >= 16


async def test_seed_and_prompt_change_the_reply(sleeps):
    async with synthetic_agent(sleeps, seed=1) as a, synthetic_agent(sleeps, seed=2) as b:
        assert await reply(a, "hello") != await reply(b, "hello")
        assert "".join(await reply(a, "other")) != "".join(await reply(b, "hello"))


async def test_reply_length_follows_settings_and_budget(sleeps):
    async with synthetic_agent(sleeps, reply_tokens_min=5, reply_tokens_max=5) as agent:
        chunks = await reply(agent, "hi")
    assert len(chunks) == 5 and chunks[1].startswith(" ")
    assert agent.get_metrics()["tokens_out"] == 5
    genome = ConversationalGenome(traits={"conciseness": 1.0})
    config = AgentConfig(
        provider="synthetic",
        max_tokens=6,
        synthetic={**INSTANT, "reply_tokens_min": 50, "reply_tokens_max": 50},
    )
    async with NLPAgent(genome, config) as capped:
        assert len(await reply(capped, "hi")) == 3  # conciseness 1 halves max_tokens=6


async def test_streamed_and_whole_replies_have_the_same_text(sleeps):
    async with synthetic_agent(sleeps, seed=3) as agent:
        streamed = "".join(await reply(agent, "same"))
        agent.history.clear()
        assert await agent.complete("same") == streamed


async def test_results_are_labelled_synthetic(sleeps):
    records: list[RequestRecord] = []
    async with synthetic_agent(sleeps) as agent:
        agent.add_listener(records.append)
        await reply(agent, "hi")
    assert agent.synthetic and agent.provider_name == "synthetic"
    assert records[0].synthetic and records[0].provider == "synthetic"
    metrics = agent.get_metrics()
    assert metrics["synthetic"] is True and metrics["provider"] == "synthetic"


async def test_injected_errors_are_deterministic_and_counted(sleeps):
    async def outcomes() -> tuple[list[str], dict[str, int]]:
        seen = []
        agent = synthetic_agent(
            sleeps, seed=11, error_rate=0.5, error_kinds=("server", "timeout", "rate_limit")
        )
        async with agent:
            for i in range(30):
                try:
                    await reply(agent, f"m{i}")
                    seen.append("ok")
                except ProviderCallError as exc:
                    seen.append(exc.kind)
        return seen, agent.get_metrics()["errors_by_kind"]

    first, counts = await outcomes()
    second, _ = await outcomes()
    assert first == second
    assert 5 <= first.count("ok") <= 25
    assert set(first) - {"ok"} <= {"server", "timeout", "rate_limit"}
    assert counts == {k: first.count(k) for k in set(first) - {"ok"}}


async def test_injected_protocol_error_cuts_the_stream_after_half(sleeps):
    agent = synthetic_agent(
        sleeps, error_rate=1.0, error_kinds=("protocol",), reply_tokens_min=10, reply_tokens_max=10
    )
    got: list[str] = []
    async with agent:
        with pytest.raises(ProtocolError, match="after 5 of 10"):
            async for chunk in agent.chat("hi"):
                got.append(chunk)
    assert len(got) == 5


async def test_injected_retryable_errors_are_retried(sleeps):
    config = AgentConfig(
        provider="synthetic",
        max_retries=20,
        backoff_initial=0.001,
        backoff_max=0.001,
        synthetic={**INSTANT, "error_rate": 0.5, "seed": 4},
    )
    async with NLPAgent(ConversationalGenome(), config, sleep=sleeps) as agent:
        for i in range(5):
            await reply(agent, f"m{i}")
    metrics = agent.get_metrics()
    assert metrics["successes"] == 5 and metrics["retries"] == len(sleeps.delays) > 0


async def run_latency_model(stream: bool = True, **synthetic) -> list[float]:
    """Return the sleeps the latency model asked for while streaming one 5-token reply."""
    settings = {"reply_tokens_min": 5, "reply_tokens_max": 5, **synthetic}
    config = AgentConfig(provider="synthetic", synthetic=settings, streaming=stream)
    clock = ManualClock()  # a fresh clock per run, so runs can be compared
    provider = SyntheticProvider(config, clock=clock, sleep=clock.sleep)
    async with NLPAgent(ConversationalGenome(), config, provider=provider) as agent:
        assert len([c async for c in agent.chat("hi")]) == (5 if stream else 1)
    return clock.sleeps


async def test_latency_model_is_ttft_then_per_token():
    delays = await run_latency_model(ttft_s=0.5, per_token_s=0.1, jitter=0.0)
    assert delays == pytest.approx([0.5, 0.1, 0.1, 0.1, 0.1])
    # A whole (non-streamed) reply takes the same total time, delivered at the end.
    whole = await run_latency_model(stream=False, ttft_s=0.5, per_token_s=0.1, jitter=0.0)
    assert sum(whole) == pytest.approx(0.9)


async def test_latency_jitter_is_bounded_and_deterministic_per_seed():
    settings = {"ttft_s": 0.5, "per_token_s": 0.1, "jitter": 0.2}
    first = await run_latency_model(seed=3, **settings)
    assert first == await run_latency_model(seed=3, **settings)
    assert first != await run_latency_model(seed=4, **settings)
    assert 0.4 <= first[0] <= 0.6 and all(0.08 <= d <= 0.12 for d in first[1:])
    assert len(set(first[1:])) > 1  # jitter actually varies the per-token delay
