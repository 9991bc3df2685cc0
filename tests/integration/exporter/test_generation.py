"""A greedy generation loop driven by ONNX Runtime gives the tokens ``model.generate`` gives.

The loop (``tests/support/greedy.py``) is what an ONNX Runtime user writes against the documented
file layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from exporter.run import ExportRequest, run_export
from exporter.sample import TINY_CONFIGS, build_sample_checkpoint
from tests.support.greedy import greedy_decoder_only, greedy_seq2seq

NEW_TOKENS = 8
PROMPT = np.array([[5, 17, 33, 60, 7, 12, 90]], dtype=np.int64)
#: Weights larger than the usual 0.02 init, so a random model does not repeat one token forever.
WIDE_INIT: dict[str, dict[str, Any]] = {
    "gpt2": {"initializer_range": 0.3},
    "t5": {"initializer_factor": 3.0},
    "bart": {"init_std": 0.3},
    "whisper": {"init_std": 0.3},
}
_VED_DECODER = TINY_CONFIGS["vision-encoder-decoder"]["decoder"]
_WIDE_GPT2 = WIDE_INIT["gpt2"]


def _export(model_type: str, task: str, tmp_path: Path) -> tuple[Any, Path]:
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    base = task.removesuffix("-with-past")
    checkpoint = build_sample_checkpoint(tmp_path / "checkpoint", model_type, base, **WIDE_INIT[model_type])
    output = tmp_path / "out"
    # Wide weights give larger activations: an absolute tolerance scaled to them (the tokens are the test).
    request = ExportRequest(model=str(checkpoint), task=task, output_dir=output, formats=("onnx",), atol=1e-3)
    report = run_export(request)
    assert report.status == "passed", report.failures()
    auto = AutoModelForCausalLM if base == "causal-lm" else AutoModelForSeq2SeqLM
    return auto.from_pretrained(checkpoint).eval(), output


def _generate(model: Any, **extra: Any) -> list[int]:
    with torch.no_grad():
        result = model.generate(
            torch.from_numpy(PROMPT),
            attention_mask=torch.ones(PROMPT.shape, dtype=torch.long),
            do_sample=False,
            num_beams=1,
            max_new_tokens=NEW_TOKENS,
            **extra,
        )
    return result[0].tolist()


@pytest.mark.slow
def test_gpt2_greedy_loop_matches_generate(tmp_path: Path) -> None:
    model, output = _export("gpt2", "causal-lm-with-past", tmp_path)
    expected = _generate(model)[PROMPT.shape[1] :]
    assert len(set(expected)) > 1, "degenerate sample: the comparison would prove little"
    assert greedy_decoder_only(output, PROMPT, NEW_TOKENS, model.config.eos_token_id) == expected


@pytest.mark.slow
@pytest.mark.parametrize("model_type", ["t5", "bart"])
def test_seq2seq_greedy_loop_matches_generate(model_type: str, tmp_path: Path) -> None:
    model, output = _export(model_type, "seq2seq-lm-with-past", tmp_path)
    # no forced BOS/EOS: the loop below is plain greedy decoding
    generated = _generate(model, forced_bos_token_id=None, forced_eos_token_id=None)
    start, expected = generated[0], generated[1:]
    assert start == model.config.decoder_start_token_id
    assert len(set(expected)) > 1, "degenerate sample: the comparison would prove little"
    assert greedy_seq2seq(output, PROMPT, NEW_TOKENS, start, model.config.eos_token_id) == expected


@pytest.mark.slow
def test_whisper_greedy_loop_from_input_features_matches_generate(tmp_path: Path) -> None:
    """Whisper with past: ``encoder_model.onnx`` on log-mel frames, then the merged decoder without an encoder mask."""
    from transformers import AutoModelForSpeechSeq2Seq

    checkpoint = build_sample_checkpoint(tmp_path / "checkpoint", "whisper", "speech2seq-lm", **WIDE_INIT["whisper"])
    output = tmp_path / "out"
    request = ExportRequest(
        model=str(checkpoint), task="speech2seq-lm-with-past", output_dir=output, formats=("onnx",), atol=1e-3
    )
    assert run_export(request).status == "passed"
    model = AutoModelForSpeechSeq2Seq.from_pretrained(checkpoint).eval()
    config = model.config
    features = torch.randn(
        1, config.num_mel_bins, 2 * config.max_source_positions, generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        generated = model.generate(input_features=features, do_sample=False, num_beams=1, max_new_tokens=NEW_TOKENS)
    expected = generated[0].tolist()
    if expected[0] == config.decoder_start_token_id:  # Whisper's generate may leave the start token out
        expected = expected[1:]
    assert len(set(expected)) > 1, "degenerate sample: the comparison would prove little"
    source = {"input_features": features.numpy()}
    assert greedy_seq2seq(output, source, NEW_TOKENS, config.decoder_start_token_id, config.eos_token_id) == expected


@pytest.mark.slow
def test_vision_encoder_decoder_greedy_loop_from_pixels_matches_generate(tmp_path: Path) -> None:
    """ViT-GPT2-style captioning with past: ``encoder_model.onnx`` on pixels, then the merged decoder."""
    from transformers import VisionEncoderDecoderModel

    checkpoint = build_sample_checkpoint(
        tmp_path / "checkpoint", "vision-encoder-decoder", "vision2seq-lm", decoder={**_VED_DECODER, **_WIDE_GPT2}
    )
    output = tmp_path / "out"
    request = ExportRequest(
        model=str(checkpoint), task="vision2seq-lm-with-past", output_dir=output, formats=("onnx",), atol=1e-3
    )
    assert run_export(request).status == "passed"
    model = VisionEncoderDecoderModel.from_pretrained(checkpoint).eval()
    pixels = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        generated = model.generate(pixel_values=pixels, do_sample=False, num_beams=1, max_new_tokens=NEW_TOKENS)
    start, expected = generated[0, 0].item(), generated[0, 1:].tolist()
    assert start == model.config.decoder_start_token_id
    assert len(set(expected)) > 1, "degenerate sample: the comparison would prove little"
    source = {"pixel_values": pixels.numpy()}
    assert greedy_seq2seq(output, source, NEW_TOKENS, start, model.config.eos_token_id) == expected
