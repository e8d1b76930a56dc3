"""FullCMRModel: capture counts, reweaving where configured and only there, gradients,
causality, stream isolation and measured statistics."""

from __future__ import annotations

import pytest
import torch

from allele.cmr import CMRConfig, FullCMRModel
from allele.cmr.relevance import relevance_scores
from allele.errors import ValidationError

from .conftest import TINY, tiny_model


def _block_outputs(model: FullCMRModel, ids: torch.Tensor) -> list[torch.Tensor]:
    """Every block's output as the next block sees it (after the model's own hooks)."""
    seen: list[torch.Tensor] = []
    handles = [
        block.register_forward_hook(lambda _m, _i, out: seen.append(out.detach().clone()))
        for block in model.backbone.blocks
    ]
    try:
        model(ids)
    finally:
        for h in handles:
            h.remove()
    return seen


def test_capture_counts_every_position_but_the_last(ids: torch.Tensor) -> None:
    model = tiny_model(target_layers=[0, 2], intervention_layers=[1])
    out = model(ids, return_memory_info=True)
    b, t = ids.shape
    stats = out["performance_stats"]
    # The last position's successor is not known yet: it is not stored.
    assert stats["states_captured_per_layer"] == {0: b * (t - 1), 2: b * (t - 1)}
    assert stats["total_captures"] == 2 * b * (t - 1)
    assert stats["total_reconstructions"] == 0  # nothing was stored before this pass
    assert out["buffer_stats"]["entries_per_layer"] == {0: b * (t - 1), 2: b * (t - 1)}
    assert model.hook_calls == {0: 1, 1: 1, 2: 1}


def test_relevance_threshold_and_entry_limit_select_positions(ids: torch.Tensor) -> None:
    model = tiny_model(relevance_threshold=0.6, max_entries_per_capture=5)
    model(ids)
    assert int(model.buffer.valid.sum(dim=1).max()) <= 5
    assert model.buffer.relevance[model.buffer.valid].min().item() >= 0.6


def test_reweaving_changes_exactly_the_intervention_layer(ids: torch.Tensor) -> None:
    on = tiny_model(intervention_layers=[1])
    off = FullCMRModel(TINY, {**on.config.to_dict(), "reweaving": False}).eval()
    off.load_state_dict(on.state_dict())
    with torch.no_grad():
        on(ids)
        off(ids)
        with_memory = _block_outputs(on, ids.flip(1))
        plain = _block_outputs(off, ids.flip(1))
    assert torch.equal(with_memory[0], plain[0])  # before the intervention: untouched
    assert not torch.allclose(with_memory[1], plain[1])  # the intervention layer: reweaved
    stats = on.performance_stats
    assert stats["reconstructions_per_layer"] == {1: ids.numel()}
    assert off.performance_stats["total_reconstructions"] == 0


def test_layers_other_than_the_interventions_are_not_modified(ids: torch.Tensor) -> None:
    model = tiny_model(intervention_layers=[2])
    with torch.no_grad():
        model(ids)
        hooked = _block_outputs(model, ids)
        # The same blocks run by hand, without hooks: layers 0 and 1 must agree exactly.
        x = model.backbone.wte(ids) + model.backbone.wpe(torch.arange(ids.shape[1]))
        manual = []
        for block in model.backbone.blocks:
            x = block.forward(x)  # forward() itself runs no hooks
            manual.append(x)
    assert torch.equal(hooked[0], manual[0]) and torch.equal(hooked[1], manual[1])
    assert not torch.allclose(hooked[2], manual[2])


def test_gradients_reach_the_gate_and_the_earlier_segment(ids: torch.Tensor) -> None:
    model = tiny_model().train()
    model(ids)
    logits = model(ids.flip(1))["logits"]
    logits.pow(2).mean().backward()
    gate = model.reweavers["1"].gate
    assert gate.weight.grad is not None and gate.weight.grad.abs().sum() > 0
    assert gate.bias.grad is not None and gate.bias.grad.abs().sum() > 0
    for module, name in (("reweavers", "query"), ("reweavers", "out")):
        grad = getattr(getattr(model, module)["1"], name).weight.grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    # The loss of the second segment reaches what the first one wrote into memory.
    for name in ("key", "value"):
        grad = getattr(model.writers["0"], name).weight.grad
        assert grad is not None and grad.abs().sum() > 0


def test_memory_gradients_off_stores_detached_states(ids: torch.Tensor) -> None:
    model = tiny_model(memory_gradients=False).train()
    model(ids)
    assert model.buffer.entries is not None and not model.buffer.entries.requires_grad
    model = tiny_model().train()
    model(ids)
    assert model.buffer.entries is not None and model.buffer.entries.requires_grad
    model.detach_memory()
    assert not model.buffer.entries.requires_grad


def test_a_position_never_sees_later_positions(ids: torch.Tensor) -> None:
    model = tiny_model()
    with torch.no_grad():
        model(ids)
        first = model(ids)["logits"]
        model.reset_memory()
        model(ids)
        changed = ids.clone()
        changed[:, -1] = (changed[:, -1] + 1) % TINY.vocab_size
        second = model(changed)["logits"]
    assert torch.allclose(first[:, :-1], second[:, :-1], atol=1e-6)


def test_each_stream_reads_only_its_own_memory(ids: torch.Tensor) -> None:
    model = tiny_model()
    with torch.no_grad():
        model(ids)
        both = model(ids.flip(1))["logits"]
        model.reset_memory()
        model(ids[:1])
        alone = model(ids[:1].flip(1))["logits"]
    assert torch.allclose(both[:1], alone, atol=1e-5)


def test_performance_stats_are_measured(ids: torch.Tensor) -> None:
    model = tiny_model(buffer_size=8, eviction_strategy="relevance", similarity_threshold=-1.0)
    with torch.no_grad():
        for _ in range(3):
            out = model(ids, return_memory_info=True)
    s = out["performance_stats"]
    assert s["forward_passes"] == 3 and len(s["capture_times"]) == 3
    assert len(s["reconstruction_times"]) == 2
    assert all(t > 0 for t in s["capture_times"] + s["reconstruction_times"])
    assert s["total_forward_time"] >= sum(s["capture_times"])
    captured = s["total_captures"]
    stored = sum(s["states_stored_per_layer"].values())
    assert captured == 3 * ids.shape[0] * (ids.shape[1] - 1)
    assert s["storage_efficiency"] == pytest.approx(stored / captured)
    assert s["storage_efficiency"] < 1.0  # 8 slots per stream for 11 states per pass
    assert s["memory_utilization"] == 1.0
    assert s["cache_hit_rate"] == 1.0  # every score >= -1
    assert 0.0 < s["reconstruction_quality"] <= 1.0
    b = out["buffer_stats"]
    assert b["total_entries"] == 16 and b["eviction_count"] > 0
    assert b["memory_size_mb"] > 0
    r = out["retrieval_stats"]
    assert r["total_retrievals"] == 2 * ids.numel() and r["cache_hits"] == r["total_retrievals"]


def test_relevance_scorers_are_in_unit_range() -> None:
    hidden = torch.randn(2, 7, 16)
    for method in ("attention", "variance", "hybrid"):
        scores = relevance_scores(hidden, method)
        assert scores.shape == (2, 7)
        assert scores.min() >= 0 and scores.max() <= 1.0
        if method != "hybrid":  # each is scaled so that its most relevant position scores 1
            assert torch.allclose(scores.amax(dim=1), torch.ones(2))
    variance = relevance_scores(hidden, "variance")
    assert torch.equal(variance.argmax(dim=1), hidden.var(dim=-1).argmax(dim=1))


def test_bad_input_and_config_get_clear_errors(ids: torch.Tensor) -> None:
    model = tiny_model()
    with pytest.raises(ValidationError, match="integer token ids"):
        model(ids.float())
    model(ids)
    with pytest.raises(ValidationError, match="reset_memory"):
        model(ids[:1])
    with pytest.raises(ValidationError, match="target_layers"):
        FullCMRModel(TINY, {"target_layers": [5]})
    with pytest.raises(ValidationError, match="allowed"):
        CMRConfig.from_mapping({"buffer": 3})
    with pytest.raises(ValidationError, match="similarity, contextual"):
        CMRConfig(retrieval_strategy="knn")


def test_listeners_get_failed_passes_and_cannot_break_the_model(ids: torch.Tensor) -> None:
    model = tiny_model()
    seen = []

    def broken(record: object) -> None:
        seen.append(record)
        raise RuntimeError("listener bug")

    model.add_forward_listener(broken)
    model(ids)
    assert model.listener_errors == 1
    with pytest.raises(ValidationError):
        model(torch.zeros(2, TINY.n_positions + 1, dtype=torch.long))
    assert seen[-1].error == "ValidationError" and model.stats.errors == 1


def test_non_finite_states_are_not_stored_and_lower_capture_efficiency(ids: torch.Tensor) -> None:
    model = tiny_model(intervention_layers=[2])

    def poison(_module: object, _inputs: object, output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        output[0, 3] = float("nan")  # row 0, position 3: its state and position 2's successor
        return output

    model.backbone.blocks[0].register_forward_hook(poison, prepend=True)
    with torch.no_grad():
        stats = model(ids, return_memory_info=True)["performance_stats"]
    selected = ids.shape[0] * (ids.shape[1] - 1)
    assert stats["total_captures"] == selected - 2
    assert stats["capture_efficiency"] == pytest.approx((selected - 2) / selected)
    assert torch.isfinite(model.buffer.entries[model.buffer.valid]).all()
