"""The genome's system prompt and its bounded sampling mapping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allele.agent import build_system_prompt, sampling_for
from allele.genome import TRAIT_NAMES, ConversationalGenome


def test_prompt_states_every_trait_in_order_with_its_value():
    genome = ConversationalGenome(traits={"empathy": 0.9, "conciseness": 0.1})
    prompt = build_system_prompt(genome)
    positions = [prompt.index(name.replace("_", " ")) for name in TRAIT_NAMES]
    assert positions == sorted(positions)
    assert "empathy 0.90: notice and acknowledge the user's feelings" in prompt
    assert "conciseness 0.10: explain thoroughly" in prompt
    assert "creativity 0.50: offer an original angle" in prompt


def test_prompt_differs_between_genomes_and_is_deterministic():
    a = ConversationalGenome(traits={"technical_knowledge": 0.1})
    b = ConversationalGenome(traits={"technical_knowledge": 0.95})
    assert build_system_prompt(a) == build_system_prompt(a.copy())
    assert "plain language" in build_system_prompt(a)
    assert "technically precise" in build_system_prompt(b)


@pytest.mark.parametrize(
    ("creativity", "base", "expected"),
    [(0.5, 0.7, 0.7), (1.0, 0.7, 1.0), (0.0, 0.7, 0.4), (0.0, 0.1, 0.0), (1.0, 1.9, 2.0)],
)
def test_creativity_nudges_temperature_by_at_most_0_3_and_clips(creativity, base, expected):
    genome = ConversationalGenome(traits={"creativity": creativity})
    assert sampling_for(genome, base, 100).temperature == pytest.approx(expected)


@pytest.mark.parametrize(("conciseness", "expected"), [(0.0, 400), (0.5, 300), (1.0, 200)])
def test_conciseness_scales_the_reply_budget(conciseness, expected):
    genome = ConversationalGenome(traits={"conciseness": conciseness})
    assert sampling_for(genome, 0.7, 400).max_tokens == expected


def test_budget_never_drops_below_one():
    assert sampling_for(ConversationalGenome(traits={"conciseness": 1.0}), 0.7, 1).max_tokens == 1


@given(
    creativity=st.floats(0, 1),
    conciseness=st.floats(0, 1),
    base=st.floats(0, 2),
    budget=st.integers(1, 100_000),
)
def test_sampling_stays_within_documented_bounds(creativity, conciseness, base, budget):
    genome = ConversationalGenome(traits={"creativity": creativity, "conciseness": conciseness})
    sampling = sampling_for(genome, base, budget)
    assert 0.0 <= sampling.temperature <= 2.0
    assert abs(sampling.temperature - base) <= 0.3 + 5e-7  # result rounded to 6 decimals
    assert max(1, round(budget * 0.5)) <= sampling.max_tokens <= budget
