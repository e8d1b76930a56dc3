"""Conversation history: message count, context window, and the first-message rule."""

from __future__ import annotations

import pytest

from allele.agent.history import ConversationHistory, estimate_tokens, message_tokens
from allele.errors import ValidationError


def test_token_estimate_is_chars_over_four_rounded_up():
    assert [estimate_tokens("x" * n) for n in (0, 1, 4, 5, 8)] == [0, 1, 1, 2, 2]
    assert message_tokens("abcd") == 5


def test_history_keeps_at_most_max_messages():
    history = ConversationHistory(max_messages=3, context_window=10_000)
    for i in range(3):
        history.add_turn(f"u{i}", f"a{i}")
    assert [m.content for m in history.messages] == ["a1", "u2", "a2"]
    # The window may not start with an assistant message.
    window = history.window("sys", "now", reply_budget=10)
    assert [(m.role, m.content) for m in window] == [
        ("user", "u2"),
        ("assistant", "a2"),
        ("user", "now"),
    ]


def test_window_drops_oldest_messages_beyond_the_context():
    history = ConversationHistory(max_messages=100, context_window=300)
    history.add_turn("old " * 50, "older answer " * 10)  # ~54 + ~34 tokens
    history.add_turn("recent", "recent answer")
    window = history.window("s" * 40, "new", reply_budget=200)
    # room = 300 - (10 + 4) - (1 + 4) - 200 = 81: the recent pair fits, the old one does not
    assert [m.content for m in window] == ["recent", "recent answer", "new"]


def test_zero_history_length_sends_only_the_new_message():
    history = ConversationHistory(max_messages=0, context_window=1000)
    history.add_turn("a", "b")
    assert len(history) == 0
    assert [m.content for m in history.window("s", "q", 10)] == ["q"]


def test_message_too_long_for_the_context_is_a_clear_error():
    history = ConversationHistory(max_messages=10, context_window=300)
    with pytest.raises(ValidationError, match="context_window is 300"):
        history.window("s", "x" * 2000, reply_budget=10)
