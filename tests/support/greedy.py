"""Greedy decoding with ONNX Runtime over the documented file layout, as an ONNX Runtime user writes it.

Decoder-only models run ``model.onnx`` from an empty past (length 0) and feed each ``present.*``
back as ``past_key_values.*``; seq2seq models run ``encoder_model.onnx`` once, then
``decoder_model_merged.onnx`` with ``use_cache_branch`` false and an empty past for the first token
and true after it (the graph hands back the cross-attention cache it was fed). ``suffix`` picks a
dtype variant's files (``"_quantized"`` for q8).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _session(path: Path) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _run(session: Any, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = [output.name for output in session.get_outputs()]
    results = session.run(names, {inp.name: feeds[inp.name] for inp in session.get_inputs()})
    return dict(zip(names, results, strict=True))


def _as_past(outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        name.replace("present.", "past_key_values.", 1): v for name, v in outputs.items() if name.startswith("present.")
    }


def _empty_past(session: Any) -> dict[str, np.ndarray]:
    """Past tensors of length 0: batch 1, the graph's fixed head count and size."""
    past = {}
    for inp in session.get_inputs():
        if inp.name.startswith("past_key_values."):
            _, heads, _, size = inp.shape
            past[inp.name] = np.zeros((1, heads, 0, size), dtype=np.float32)
    return past


def greedy_decoder_only(
    output_dir: Path, prompt: np.ndarray, new_tokens: int, eos: int | None, suffix: str = ""
) -> list[int]:
    """The ``new_tokens`` greedy tokens after ``prompt`` (shape ``[1, n]``), stopping at ``eos``."""
    session = _session(output_dir / f"model{suffix}.onnx")
    past, ids, tokens, seen = _empty_past(session), prompt, [], 0
    for _ in range(new_tokens):
        length = ids.shape[1]
        feeds = {
            "input_ids": ids,
            "attention_mask": np.ones((1, seen + length), dtype=np.int64),
            "position_ids": np.arange(seen, seen + length, dtype=np.int64)[None],
            **past,
        }
        outputs = _run(session, feeds)
        token = int(outputs["logits"][0, -1].argmax())
        tokens.append(token)
        if token == eos:
            break
        past, ids, seen = _as_past(outputs), np.array([[token]], dtype=np.int64), seen + length
    return tokens


def greedy_seq2seq(
    output_dir: Path,
    prompt: np.ndarray | dict[str, np.ndarray],
    new_tokens: int,
    start: int,
    eos: int | None,
    suffix: str = "",
) -> list[int]:
    """The ``new_tokens`` greedy decoder tokens after ``start`` for the source ``prompt``, stopping at ``eos``.

    ``prompt``: source token ids (``[1, n]``), or the encoder's own inputs (Whisper's
    ``input_features``, an image's ``pixel_values``), whose decoder takes no encoder mask.
    """
    encoder = _session(output_dir / f"encoder_model{suffix}.onnx")
    decoder = _session(output_dir / f"decoder_model_merged{suffix}.onnx")
    if isinstance(prompt, dict):
        source, mask = prompt, None
    else:
        mask = np.ones_like(prompt)
        source = {"input_ids": prompt, "attention_mask": mask}
    hidden = _run(encoder, source)["last_hidden_state"]
    context = {"encoder_hidden_states": hidden}
    if mask is not None and "encoder_attention_mask" in {inp.name for inp in decoder.get_inputs()}:
        context["encoder_attention_mask"] = mask
    past, ids, use_cache, tokens = _empty_past(decoder), np.array([[start]], dtype=np.int64), False, []
    for _ in range(new_tokens):
        feeds = {"input_ids": ids, **context, **past, "use_cache_branch": np.array([use_cache])}
        outputs = _run(decoder, feeds)
        token = int(outputs["logits"][0, -1].argmax())
        tokens.append(token)
        if token == eos:
            break
        past, ids, use_cache = _as_past(outputs), np.array([[token]], dtype=np.int64), True
    return tokens


def forward_decoder_only(output_dir: Path, ids: np.ndarray, suffix: str = "") -> np.ndarray:
    """The logits at every position of ``ids`` (shape ``[1, n]``), one pass from an empty past."""
    session = _session(output_dir / f"model{suffix}.onnx")
    length = ids.shape[1]
    feeds = {
        "input_ids": ids,
        "attention_mask": np.ones((1, length), dtype=np.int64),
        "position_ids": np.arange(length, dtype=np.int64)[None],
        **_empty_past(session),
    }
    return _run(session, feeds)["logits"]


def forward_seq2seq(output_dir: Path, prompt: np.ndarray, decoder_ids: np.ndarray, suffix: str = "") -> np.ndarray:
    """The decoder's logits at every position of ``decoder_ids`` for the source ``prompt``, from an empty past."""
    encoder = _session(output_dir / f"encoder_model{suffix}.onnx")
    decoder = _session(output_dir / f"decoder_model_merged{suffix}.onnx")
    mask = np.ones_like(prompt)
    hidden = _run(encoder, {"input_ids": prompt, "attention_mask": mask})["last_hidden_state"]
    feeds = {
        "input_ids": decoder_ids,
        "encoder_hidden_states": hidden,
        "encoder_attention_mask": mask,
        **_empty_past(decoder),
        "use_cache_branch": np.array([False]),
    }
    return _run(decoder, feeds)["logits"]
