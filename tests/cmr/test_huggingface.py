"""The Hugging Face adapter: a tiny randomly initialised GPT-2 saved to disk and loaded back
(locally only) as the backbone of a CMR model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from allele.cmr import FullCMRModel, HuggingFaceBackbone
from allele.errors import ValidationError

transformers = pytest.importorskip(
    "transformers",
    reason="the adapter test needs transformers (pip install 'allele[transformers]')",
)


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=50, n_positions=32, n_embd=32, n_layer=3, n_head=2)
    directory = tmp_path_factory.mktemp("tiny-gpt2")
    transformers.GPT2LMHeadModel(config).save_pretrained(directory)
    return directory


def test_a_local_gpt2_captures_and_reweaves(gpt2_dir: Path) -> None:
    model = FullCMRModel.from_pretrained(
        gpt2_dir, {"target_layers": [0], "intervention_layers": [1], "buffer_size": 32}
    ).eval()
    assert isinstance(model.backbone, HuggingFaceBackbone)
    assert model.backbone.n_layers == 3 and model.backbone.d_model == 32
    ids = torch.randint(0, 50, (2, 10), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        first = model(ids)
        plain = model.backbone(ids.flip(1))
        second = model(ids.flip(1), return_memory_info=True)
    assert first["logits"].shape == (2, 10, 50)
    stats = second["performance_stats"]
    assert stats["states_captured_per_layer"] == {0: 2 * 9 * 2}
    assert stats["reconstructions_per_layer"] == {1: 20}
    assert not torch.allclose(plain, second["logits"])  # the reweaved states changed the output


def test_a_loaded_transformers_model_is_wrapped(gpt2_dir: Path) -> None:
    hf = transformers.GPT2LMHeadModel.from_pretrained(gpt2_dir, local_files_only=True)
    model = FullCMRModel(cmr_config={"target_layers": [2], "intervention_layers": [2]}, backbone=hf)
    with torch.no_grad():
        model(torch.zeros(1, 5, dtype=torch.long))
        out = model(torch.ones(1, 5, dtype=torch.long), return_memory_info=True)
    assert out["performance_stats"]["total_reconstructions"] == 5


def test_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not a directory"):
        HuggingFaceBackbone.from_pretrained(tmp_path / "absent")
