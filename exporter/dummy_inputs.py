"""Dummy inputs: deterministic tensors of a requested shape, made from the spec and the config.

A shape names the size of each dynamic axis, by the names the graphs' dimensions carry (those of
Optimum and transformers.js): ``batch_size`` and ``sequence_length`` for every text model, plus
``decoder_sequence_length`` (decoder tokens of a seq2seq model) and ``past_sequence_length`` (tokens
already in the key/value cache) where the graphs have them. Axes a request leaves out are derived
from ``sequence_length``. A seq2seq model's graphs call its source tokens ``encoder_sequence_length``
and its cache ``past_decoder_sequence_length``: aliases of ``sequence_length`` and
``past_sequence_length`` (:data:`ALIASES`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

import torch

from exporter.specs import InputSpec, ModelSpec

Shape = Mapping[str, int]

#: Shape the model is exported (and traced) at, then validation shapes; the second differs in every axis.
BATCH = "batch_size"
SEQUENCE = "sequence_length"
DECODER_SEQUENCE = "decoder_sequence_length"
PAST_SEQUENCE = "past_sequence_length"
ENCODER_SEQUENCE = "encoder_sequence_length"
PAST_DECODER_SEQUENCE = "past_decoder_sequence_length"
#: Choices of a multiple-choice input (``batch_size × num_choices × sequence_length``).
NUM_CHOICES = "num_choices"
#: Samples of raw audio (``input_values``).
AUDIO_SEQUENCE = "audio_sequence_length"
#: Attention mask and cache out of a decoder with past: past and new tokens.
TOTAL_SEQUENCE = f"{PAST_SEQUENCE} + {SEQUENCE}"
#: Cache out of a seq2seq decoder: past and new decoder tokens.
TOTAL_DECODER_SEQUENCE = f"{PAST_DECODER_SEQUENCE} + {DECODER_SEQUENCE}"

EXPORT_SHAPE = {BATCH: 2, SEQUENCE: 16, DECODER_SEQUENCE: 5, PAST_SEQUENCE: 7}
VALIDATION_SHAPES = (
    {BATCH: 2, SEQUENCE: 16, DECODER_SEQUENCE: 5, PAST_SEQUENCE: 7},
    {BATCH: 3, SEQUENCE: 11, DECODER_SEQUENCE: 3, PAST_SEQUENCE: 4},
)
#: Axes whose size follows from others (past + new tokens): never a key of a shape.
DERIVED_AXES = frozenset({TOTAL_SEQUENCE, TOTAL_DECODER_SEQUENCE})
#: Cache lengths: a model's code may narrow their range (past + new tokens within the position table).
PAST_AXES = frozenset({PAST_SEQUENCE, PAST_DECODER_SEQUENCE})
#: A seq2seq graph's name of an axis → the shape key whose size it has.
ALIASES = {ENCODER_SEQUENCE: SEQUENCE, PAST_DECODER_SEQUENCE: PAST_SEQUENCE}
#: Raw audio (``input_values``) gets this many samples per ``sequence_length`` step: enough for the
#: feature encoder's convolutions at every validation shape.
AUDIO_SAMPLES_PER_TOKEN = 160


def complete_shape(shape: Shape) -> dict[str, int]:
    """``shape`` with the decoder and past axes filled in from ``sequence_length`` where it lacks them."""
    full = dict(shape)
    sequence = int(full.get(SEQUENCE, 16))
    full.setdefault(DECODER_SEQUENCE, max(2, sequence // 3))
    full.setdefault(PAST_SEQUENCE, max(2, sequence // 2 - 1))
    for alias, key in ALIASES.items():
        if key in full:
            full.setdefault(alias, full[key])
    full.setdefault(NUM_CHOICES, max(2, int(full.get(BATCH, 2))))
    full.setdefault(AUDIO_SEQUENCE, AUDIO_SAMPLES_PER_TOKEN * sequence)
    return full


def with_choices(tensors: Mapping[str, torch.Tensor], num_choices: int) -> dict[str, torch.Tensor]:
    """Text tensors ``(batch × num_choices, …)`` regrouped as ``(batch, num_choices, …)`` (multiple choice)."""
    return {name: t.reshape(-1, num_choices, *t.shape[1:]) for name, t in tensors.items()}


def choices_axes(axes: Mapping[int, str]) -> dict[int, str]:
    """A text input's dynamic axes once a ``num_choices`` axis follows the batch."""
    return {0: BATCH, 1: NUM_CHOICES, **{position + 1: axis for position, axis in axes.items() if position}}


def restrict_shape(shape: Shape, axes: Iterable[str]) -> dict[str, int]:
    """The sizes of the axes in ``axes`` only (vision inputs have no sequence axis, encoders no past)."""
    wanted = set(axes)
    return {axis: size for axis, size in complete_shape(shape).items() if axis in wanted}


def select_inputs(spec: ModelSpec, task: str, forward_parameters: AbstractSet[str]) -> tuple[InputSpec, ...]:
    """The spec's candidate inputs that this model's forward actually takes."""
    return tuple(inp for inp in spec.inputs_for(task) if inp.name in forward_parameters)


def make_inputs(
    spec: ModelSpec, inputs: tuple[InputSpec, ...], config: Any, shape: Shape, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Tensors for one shape. The same seed and shape always give the same tensors."""
    generator = torch.Generator().manual_seed(seed)
    if spec.dummy_inputs is not None:
        return spec.dummy_inputs(config, shape, generator)
    shape = complete_shape(shape)
    tensors = {inp.name: _make(inp, config, shape, generator) for inp in inputs}
    eos = getattr(config, "eos_token_id", None)
    if spec.ids_end_with_eos and isinstance(eos, int) and "input_ids" in tensors:
        tensors["input_ids"][:, -1] = eos
    return tensors


def tower(config: Any, kind: str) -> Any:
    """The sub-config of one side of a composite model, else ``config`` itself.

    ``kind`` ``text``: CLIP-style ``text_config``, or a vision encoder-decoder's ``decoder``;
    ``vision``: ``vision_config``, or a vision encoder-decoder's ``encoder``.
    """
    names = ("text_config", "decoder") if kind == "text" else ("vision_config", "encoder")
    for name in names:
        sub = getattr(config, name, None)
        if sub is not None and hasattr(sub, "to_dict"):  # a config, not a flag or a module
            return sub
    return config


def token_ids(config: Any, batch: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """Random ids, skipping the low ones, which are special tokens in most vocabularies."""
    text = tower(config, "text")  # CLIP-style: the text tower's vocabulary
    vocab: int = getattr(text, "vocab_size", None) or getattr(config, "vocab_size", None) or 100
    return torch.randint(min(5, vocab - 1), vocab, (batch, length), generator=generator)


def padding_mask(batch: int, length: int) -> torch.Tensor:
    """Ones, except the tail of the last row when there is more than one: it exercises the masking path."""
    mask = torch.ones(batch, length, dtype=torch.long)
    if batch > 1 and length > 4:
        mask[-1, -(length // 4) :] = 0
    return mask


def _image_size(config: Any) -> tuple[int, int]:
    config = tower(config, "vision")  # CLIP-style: the vision tower's size
    size = getattr(config, "image_size", 224)
    if isinstance(size, (list, tuple)):
        return int(size[0]), int(size[1])
    return int(size), int(size)


def _make(inp: InputSpec, config: Any, shape: Shape, generator: torch.Generator) -> torch.Tensor:
    batch = shape[BATCH]
    seq = shape.get(DECODER_SEQUENCE if inp.kind.startswith("decoder_") else SEQUENCE, 1)
    if inp.kind in ("ids", "decoder_ids"):
        return token_ids(config, batch, seq, generator)
    if inp.kind in ("mask", "decoder_mask"):
        return padding_mask(batch, seq)
    if inp.kind == "positions":
        return torch.arange(seq).expand(batch, seq).contiguous()
    if inp.kind == "token_types":
        types = max(1, int(getattr(config, "type_vocab_size", 1) or 1))
        return torch.randint(0, types, (batch, seq), generator=generator)
    if inp.kind == "bbox":
        points = torch.randint(0, 1000, (batch, seq, 2, 2), generator=generator)
        low, high = points.min(dim=2).values, points.max(dim=2).values
        return torch.stack([low[..., 0], low[..., 1], high[..., 0], high[..., 1]], dim=-1)
    if inp.kind == "pixels":
        channels = int(getattr(tower(config, "vision"), "num_channels", 3))
        height, width = _image_size(config)
        return torch.randn(batch, channels, height, width, generator=generator)
    if inp.kind == "pixel_mask":  # DETR: which pixels are image, not padding; the last row's right edge is padding
        mask = torch.ones(batch, *_image_size(config), dtype=torch.long)
        if batch > 1:
            mask[-1, :, -(mask.shape[-1] // 4) :] = 0
        return mask
    if inp.kind == "audio":
        return torch.randn(batch, shape[AUDIO_SEQUENCE], generator=generator)
    if inp.kind == "features":  # Whisper: log-mel frames, exactly twice the encoder's positions
        frames = 2 * int(getattr(config, "max_source_positions", 1500))
        return torch.randn(batch, int(getattr(config, "num_mel_bins", 80)), frames, generator=generator)
    if inp.kind == "embeds":
        width = int(getattr(config, "d_model", getattr(config, "hidden_size", 32)))
        return torch.randn(batch, seq, width, generator=generator)
    raise ValueError(f"unknown input kind {inp.kind!r}")
