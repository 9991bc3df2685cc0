"""Tiny repositories as a merged bot PR leaves them, and PyTorch's answers on them, for the client-parity tests.

Weights are wider than the usual init, so a random model does not repeat one token forever; the
tests refuse a degenerate sample all the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from exporter.run import ExportRequest, run_export
from exporter.sample import build_sample_checkpoint

#: The text every client tokenizes (``run.mjs`` and ``run_optimum.py`` hold the same).
PROMPT = "the model reads a tiny random text"
NEW_TOKENS = 8
#: Wider weights than the 0.02 init (see tests/integration/exporter/test_generation.py).
WIDE_INIT: dict[str, dict[str, Any]] = {
    "gpt2": {"initializer_range": 0.3},
    "llama": {"initializer_range": 0.3},
    "t5": {"initializer_factor": 3.0},
    "bart": {"init_std": 0.3},
    "bert": {},
}
#: model type → (exporter task, client task)
CASES = {
    "gpt2": ("causal-lm-with-past", "text-generation"),
    "llama": ("causal-lm-with-past", "text-generation"),
    "t5": ("seq2seq-lm-with-past", "text2text-generation"),
    "bart": ("seq2seq-lm-with-past", "text2text-generation"),
    "bert": ("sequence-classification", "text-classification"),
}


def export_repo(model_type: str, folder: Path, dtypes: tuple[str, ...] = ("fp32",), seed: int = 0, **init: Any) -> Path:
    """A repository folder as a merged bot PR leaves it: checkpoint files plus the export under ``onnx/``.

    ``init`` replaces the model type's ``WIDE_INIT`` config values.
    """
    task = CASES[model_type][0]
    base = task.removesuffix("-with-past")
    build_sample_checkpoint(folder, model_type, base, seed=seed, **(init or WIDE_INIT[model_type]))
    # Wide weights give larger activations: an absolute tolerance scaled to them (the tokens are the test).
    request = ExportRequest(
        model=str(folder), task=task, output_dir=folder / "onnx", formats=("onnx",), atol=1e-3, dtypes=dtypes
    )
    report = run_export(request)
    assert report.status == "passed", report.failures()
    return folder


def pytorch_model(model_type: str, folder: Path) -> Any:
    """The ``model_type`` checkpoint in ``folder`` as eager PyTorch, with the head its client task uses."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoModelForSequenceClassification

    autos = {
        "text-generation": AutoModelForCausalLM,
        "text2text-generation": AutoModelForSeq2SeqLM,
        "text-classification": AutoModelForSequenceClassification,
    }
    return autos[CASES[model_type][1]].from_pretrained(folder).eval()


def generate(model: Any, input_ids: list[int], new_tokens: int = NEW_TOKENS) -> list[int]:
    """``model.generate``'s greedy tokens for ``input_ids`` (decoder-only: prompt included; seq2seq: start token first)."""
    ids = torch.tensor([input_ids])
    with torch.no_grad():
        output = model.generate(
            ids, attention_mask=torch.ones_like(ids), do_sample=False, num_beams=1, max_new_tokens=new_tokens
        )
    tokens: list[int] = output[0].tolist()
    return tokens


def classifier_logits(model: Any, input_ids: list[int]) -> Any:
    """PyTorch's logits (numpy, one row) for ``input_ids``."""
    ids = torch.tensor([input_ids])
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0].numpy()


def assert_matches_pytorch(model_type: str, folder: Path, result: dict[str, Any]) -> None:
    """A client's answer for ``CASES[model_type]`` equals PyTorch's on the same input ids.

    Classification: logits within 1e-4 and the same label; generation: ``model.generate``'s tokens
    (on a sample whose new tokens are not all one, so the comparison proves something).
    """
    import numpy as np

    task = CASES[model_type][1]
    model = pytorch_model(model_type, folder)
    if task == "text-classification":
        expected = classifier_logits(model, result["input_ids"])
        np.testing.assert_allclose(np.array(result["logits"]), expected, atol=1e-4)
        assert result["label"] == model.config.id2label[int(expected.argmax())]
        return
    tokens = generate(model, result["input_ids"])
    new = tokens[len(result["input_ids"]) :] if task == "text-generation" else tokens[1:]
    assert len(set(new)) > 1, f"degenerate sample {tokens}: the comparison would prove little"
    assert result["tokens"] == tokens
