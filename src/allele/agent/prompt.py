"""The genome's voice: a system prompt written from its traits, and its bounded sampling nudges.

System prompt
    One line per trait in ``TRAIT_NAMES`` order, giving the value and an instruction chosen by
    level: low (< 0.35), moderate, or high (> 0.65). The same genome always gives the same text.

Sampling mapping (documented bounds, see :func:`sampling_for`)
    ``temperature = clip(config.temperature + 0.6 * (creativity - 0.5), 0, 2)``
        creativity moves the configured temperature by at most +/-0.3; 0.5 leaves it unchanged.
        The result is rounded to 6 decimals so the value on the wire is stable.
    ``max_tokens = max(1, round(config.max_tokens * (1 - 0.5 * conciseness)))``
        conciseness scales the reply budget between 100 % (conciseness 0) and 50 % (conciseness 1)
        of the configured ``max_tokens``, which therefore stays a ceiling.
    Anthropic accepts temperatures in [0, 1] only; its provider clips the value again there.
"""

from __future__ import annotations

from dataclasses import dataclass

from allele.genome import TRAIT_NAMES, ConversationalGenome

LOW, HIGH = 0.35, 0.65
CREATIVITY_TEMPERATURE_SPAN = 0.6  # creativity 0..1 maps to -0.3..+0.3
TEMPERATURE_RANGE = (0.0, 2.0)
CONCISENESS_BUDGET_CUT = 0.5  # conciseness 1 halves the reply budget

# (low, moderate, high) instruction for each trait.
_GUIDANCE: dict[str, tuple[str, str, str]] = {
    "empathy": (
        "stay matter-of-fact; do not dwell on feelings",
        "acknowledge the user's feelings when they matter",
        "notice and acknowledge the user's feelings and respond with warmth",
    ),
    "engagement": (
        "answer what was asked and stop",
        "show interest and occasionally invite follow-up",
        "be actively engaged: ask follow-up questions and build on the user's ideas",
    ),
    "technical_knowledge": (
        "use plain language and avoid jargon",
        "give technical detail where it helps",
        "be technically precise and go into depth, using correct terminology",
    ),
    "creativity": (
        "prefer conventional, well-established answers",
        "offer an original angle when it helps",
        "be inventive: offer original ideas, analogies and alternatives",
    ),
    "conciseness": (
        "explain thoroughly, with examples",
        "keep answers reasonably brief",
        "be brief: short sentences, no filler",
    ),
    "context_awareness": (
        "treat each message mostly on its own",
        "take the conversation so far into account",
        "track the whole conversation closely and refer back to earlier points",
    ),
    "adaptability": (
        "keep a consistent style whatever the user's tone",
        "adjust your style to the user when needed",
        "adapt tone, depth and format to each user and message",
    ),
    "personability": (
        "keep a neutral, professional tone",
        "be friendly",
        "be warm, personable and conversational",
    ),
}


def _level(value: float) -> int:
    return 0 if value < LOW else (2 if value > HIGH else 1)


def build_system_prompt(genome: ConversationalGenome) -> str:
    """Return the system prompt that states each of the genome's eight traits and what it asks."""
    lines = [
        "You are a conversational assistant. Your personality is set by eight traits, "
        "each from 0 (low) to 1 (high):"
    ]
    for name, value in zip(TRAIT_NAMES, genome.values.tolist(), strict=True):
        label = name.replace("_", " ")
        lines.append(f"- {label} {value:.2f}: {_GUIDANCE[name][_level(value)]}.")
    lines.append("Follow these traits in every reply.")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Sampling:
    """The sampling values sent to the provider for one genome and configuration."""

    temperature: float
    max_tokens: int


def sampling_for(genome: ConversationalGenome, temperature: float, max_tokens: int) -> Sampling:
    """Return the configured sampling nudged by creativity and conciseness (bounds above)."""
    traits = genome.traits
    nudged = temperature + CREATIVITY_TEMPERATURE_SPAN * (traits["creativity"] - 0.5)
    low, high = TEMPERATURE_RANGE
    # Rounded so the wire value is stable (0.7 + 0.24 must not become 0.9399999999999999).
    clipped = round(min(high, max(low, nudged)), 6)
    budget = max(1, round(max_tokens * (1.0 - CONCISENESS_BUDGET_CUT * traits["conciseness"])))
    return Sampling(temperature=clipped, max_tokens=budget)
