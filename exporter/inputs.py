"""Dummy inputs: deterministic tensors of a requested shape, made from the spec and the config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from exporter.specs import InputSpec, ModelSpec

Shape = Mapping[str, int]

#: Shape the model is exported (and traced) at, then validation shapes; the second differs in every axis.
EXPORT_SHAPE = {"batch": 2, "sequence": 16}
VALIDATION_SHAPES = ({"batch": 2, "sequence": 16}, {"batch": 3, "sequence": 11})


def shape_for(spec: ModelSpec, task: str, shape: Shape) -> dict[str, int]:
    """Drop axes the inputs do not have (vision inputs have no sequence axis)."""
    axes = {axis for inp in spec.inputs_for(task) for axis in inp.dynamic_axes.values()}
    return {axis: size for axis, size in shape.items() if axis in axes}


def select_inputs(spec: ModelSpec, task: str, forward_parameters: set[str]) -> tuple[InputSpec, ...]:
    """The spec's candidate inputs that this model's forward actually takes."""
    return tuple(inp for inp in spec.inputs_for(task) if inp.name in forward_parameters)


def make_inputs(
    spec: ModelSpec, inputs: tuple[InputSpec, ...], config: Any, shape: Shape, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Tensors for one shape. The same seed and shape always give the same tensors."""
    generator = torch.Generator().manual_seed(seed)
    if spec.dummy_inputs is not None:
        return spec.dummy_inputs(config, shape, generator)
    return {inp.name: _make(inp, config, shape, generator) for inp in inputs}


def _image_size(config: Any) -> tuple[int, int]:
    size = getattr(config, "image_size", 224)
    if isinstance(size, (list, tuple)):
        return int(size[0]), int(size[1])
    return int(size), int(size)


def _make(inp: InputSpec, config: Any, shape: Shape, generator: torch.Generator) -> torch.Tensor:
    batch = shape["batch"]
    seq = shape.get("sequence", 1)
    if inp.kind == "ids":
        vocab = int(getattr(config, "vocab_size", 100))
        # Skip the low ids, which are special tokens in most vocabularies.
        return torch.randint(min(5, vocab - 1), vocab, (batch, seq), generator=generator)
    if inp.kind == "mask":
        mask = torch.ones(batch, seq, dtype=torch.long)
        if batch > 1 and seq > 4:
            mask[-1, -(seq // 4) :] = 0  # one padded row exercises the masking path
        return mask
    if inp.kind == "token_types":
        types = max(1, int(getattr(config, "type_vocab_size", 1) or 1))
        return torch.randint(0, types, (batch, seq), generator=generator)
    if inp.kind == "bbox":
        points = torch.randint(0, 1000, (batch, seq, 2, 2), generator=generator)
        low, high = points.min(dim=2).values, points.max(dim=2).values
        return torch.stack([low[..., 0], low[..., 1], high[..., 0], high[..., 1]], dim=-1)
    if inp.kind == "pixels":
        channels = int(getattr(config, "num_channels", 3))
        height, width = _image_size(config)
        return torch.randn(batch, channels, height, width, generator=generator)
    if inp.kind == "embeds":
        width = int(getattr(config, "d_model", getattr(config, "hidden_size", 32)))
        return torch.randn(batch, seq, width, generator=generator)
    raise ValueError(f"unknown input kind {inp.kind!r}")
