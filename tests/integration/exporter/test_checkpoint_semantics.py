"""What is exported is the checkpoint the user has: no silent config change, its own errors, typed refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exporter.errors import ForwardFailedError, NotExportableError
from exporter.run import ExportRequest, load, run_export
from exporter.sample import build_sample_checkpoint, tiny_config
from exporter.specs import SPECS
from exporter.support import not_exportable


@pytest.mark.parametrize("is_decoder", [False, True])
def test_causal_head_of_an_encoder_is_the_checkpoint_as_it_is(tmp_path: Path, is_decoder: bool) -> None:
    """BERT's causal-lm head runs with the checkpoint's ``is_decoder``, as ``from_pretrained`` does."""
    import torch
    from transformers import AutoModelForCausalLM

    checkpoint = build_sample_checkpoint(tmp_path / "ck", "bert", "causal-lm", is_decoder=is_decoder)
    assert json.loads((checkpoint / "config.json").read_text()).get("is_decoder", False) is is_decoder
    loaded = load(ExportRequest(model=str(checkpoint), task="causal-lm", output_dir=tmp_path / "out"))
    reference = AutoModelForCausalLM.from_pretrained(checkpoint, attn_implementation="eager").eval()
    assert loaded.model.config.is_decoder is is_decoder
    ids = torch.randint(5, 128, (2, 9), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, -3:] = 0
    with torch.no_grad():
        ours = loaded.model(input_ids=ids, attention_mask=mask, use_cache=False).logits
        theirs = reference(input_ids=ids, attention_mask=mask, use_cache=False).logits
    assert torch.equal(ours, theirs)


def test_a_checkpoint_whose_own_forward_fails_is_a_checkpoint_error(tmp_path: Path) -> None:
    """GPT-J with ``rotary_dim`` larger than the head size: exit 3 quoting the model's error, not a bug."""
    checkpoint = build_sample_checkpoint(tmp_path / "ck", "gptj", "causal-lm")
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["n_embd"] // config["n_head"] < 16
    (checkpoint / "config.json").write_text(json.dumps({**config, "rotary_dim": 16}))
    with pytest.raises(ForwardFailedError, match="the model's own forward fails") as caught:
        run_export(ExportRequest(model=str(checkpoint), task="causal-lm", output_dir=tmp_path / "out"))
    assert caught.value.exit_code == 3
    assert "\n" not in str(caught.value)


def test_a_type_that_cannot_be_exported_is_refused_with_its_reason(tmp_path: Path) -> None:
    """The refusal comes before any weights are read: a config alone is enough (exit 4)."""
    refused = sorted(name for name, spec in SPECS.items() if "*" in not_exportable(spec))
    assert refused, "no type is marked not exportable"
    model_type = refused[0]
    tiny_config(model_type).save_pretrained(tmp_path / "ck")
    with pytest.raises(NotExportableError, match=f"{model_type} cannot be exported: ") as caught:
        run_export(ExportRequest(model=str(tmp_path / "ck"), output_dir=tmp_path / "out"))
    assert caught.value.exit_code == 4
    assert str(caught.value).endswith(not_exportable(SPECS[model_type])["*"])
