"""Specs of the decoder (causal LM) and encoder-decoder (seq2seq) architectures.

They differ from encoders in two ways the generic code handles: a ``family`` that adds the
``-with-past`` tasks (graphs that take and return the key/value cache), and the inputs of the
single-graph seq2seq tasks (``decoder_input_ids`` next to the encoder's). Tasks still come from
transformers' auto mappings; the exceptions say why.
"""

from __future__ import annotations

from typing import Any

import torch

from exporter.specs.base import DECODER_INPUTS, SEQ2SEQ_INPUTS, ModelSpec

#: The seed list's causal LMs.
SEED_DECODERS = ("gpt2", "gpt_neo", "gptj")
#: Causal LMs of the old ``transformers.onnx`` list beyond the seed's: every head transformers has.
OLD_DECODERS = ("bloom", "codegen")
#: The seed list's seq2seq models.
SEED_SEQ2SEQ = (
    "bart",
    "bigbird_pegasus",
    "blenderbot",
    "blenderbot-small",
    "m2m_100",
    "longt5",
    "marian",
    "mbart",
    "mt5",
    "plbart",
    "t5",
)
#: Decoder LMs users ask for today: the language-model tasks (their classification heads are rarely exported).
MODERN_DECODERS = (
    "falcon",
    "gemma",
    "gemma2",
    "gemma3_text",
    "gpt_neox",
    "granite",
    "llama",
    "mistral",
    "mixtral",
    "olmo2",
    "phi",
    "phi3",
    "qwen2",
    "qwen2_moe",
    "qwen3",
    "qwen3_moe",
    "smollm3",
    "starcoder2",
)
_LM_TASKS = ("default", "causal-lm", "default-with-past", "causal-lm-with-past")


def _bloom_gelu_as_function(model: torch.nn.Module) -> None:
    """Bloom's GeLU calls an ``autograd.Function`` (for its hand-written backward), which TorchScript
    cannot trace; its forward is the plain function ``bloom_gelu_forward``: the same math, traceable."""
    from transformers.models.bloom import modeling_bloom

    for module in model.modules():
        if isinstance(module, modeling_bloom.BloomGelu):
            module.forward = modeling_bloom.bloom_gelu_forward  # type: ignore[method-assign]


def _seq2seq(model_type: str, **fields: Any) -> ModelSpec:
    # The bare model and the LM head take decoder inputs; the other heads derive them from input_ids by
    # shifting them right, which takes a different path for sequences shorter than 3.
    return ModelSpec(
        model_type=model_type,
        family="encoder-decoder",
        inputs=DECODER_INPUTS,
        task_inputs={"default": SEQ2SEQ_INPUTS, "seq2seq-lm": SEQ2SEQ_INPUTS},
        ids_end_with_eos=True,
        axis_min={"sequence_length": 3},
        **fields,
    )


SPECS: list[ModelSpec] = [
    *(
        ModelSpec(model_type=name, family="decoder", inputs=DECODER_INPUTS)
        for name in (*SEED_DECODERS, *OLD_DECODERS)
        if name not in ("gpt_neo", "bloom")
    ),
    ModelSpec(model_type="bloom", family="decoder", inputs=DECODER_INPUTS, prepare_model=_bloom_gelu_as_function),
    # GPT-Neo slices its causal-mask buffer up to the key length (past + new tokens, at least 2 + 2):
    # its full length is another path.
    ModelSpec(model_type="gpt_neo", family="decoder", inputs=DECODER_INPUTS, sequence_headroom=2),
    *(_seq2seq(name) for name in SEED_SEQ2SEQ if name not in ("m2m_100", "t5", "longt5")),
    # T5 scales neither its attention scores nor its residual stream: activations before the final
    # RMS norm grow large, and the norm turns their float32 rounding into up to 1.2e-3 of an output
    # (initializer_factor=3); a wrong mask or cache moves outputs by far more (tests/…/test_tolerance.py).
    _seq2seq("t5", rtol=3e-3),
    # LongT5's local and transient-global attention pad the sequence to a multiple of their block and
    # slice it back; the TorchScript-based exporter keeps that arithmetic on the traced shapes, so one
    # graph serves every length (validated at lengths that differ in block count). Its numerics are T5's.
    _seq2seq("longt5", rtol=3e-3),
    # M2M100's sinusoidal positions start after the padding index: two positions of the table are never used.
    _seq2seq("m2m_100", sequence_headroom=2),
    *(ModelSpec(model_type=name, family="decoder", inputs=DECODER_INPUTS, tasks=_LM_TASKS) for name in MODERN_DECODERS),
]
