"""Graphs with a key/value cache: transformers' ``Cache`` objects in the model, named tensors at the edges.

ONNX Runtime users (Optimum, transformers.js) feed and fetch the cache as one tensor per layer and
per key/value, ``[batch, heads, length, head_dim]``:

* decoder-only: ``past_key_values.{i}.key`` / ``.value`` in, ``present.{i}.key`` / ``.value`` out;
* seq2seq: ``past_key_values.{i}.decoder.key`` (self-attention) and ``past_key_values.{i}.encoder.key``
  (cross-attention) in, ``present.{i}.decoder.key`` … out (the encoder ones only from the first step,
  since they never change afterwards: a later step returns them as it was fed them).

The wrappers here turn those tensors into the ``DynamicCache`` / ``EncoderDecoderCache`` the
model's forward takes and back, so the model itself runs unmodified; torch.export traces through the
cache objects with the pytree registration transformers' exporter installs.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicCache, EncoderDecoderCache
from transformers.modeling_outputs import BaseModelOutput

#: ``{"0": {"key": tensor, "value": tensor}, "1": …}``: one layer's cache tensors by layer index.
PastTensors = dict[str, dict[str, Any]]


def cache_layers(cache: Cache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(keys, values)`` of each layer of a (non encoder-decoder) cache."""
    layers: list[Any] = list(cache.layers)
    return [(layer.keys, layer.values) for layer in layers]


def to_named(layers: list[tuple[torch.Tensor, torch.Tensor]]) -> PastTensors:
    return {str(i): {"key": keys, "value": values} for i, (keys, values) in enumerate(layers)}


def from_named(past: PastTensors) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(past[str(i)]["key"], past[str(i)]["value"]) for i in range(len(past))]


def output_cache(outputs: Any) -> Any:
    """The cache a model returned (``cache`` in transformers 5, ``past_key_values`` before)."""
    cache = getattr(outputs, "cache", None)
    return cache if cache is not None else outputs.past_key_values


class DecoderWithPast(torch.nn.Module):
    """A decoder-only model taking and returning its cache as named tensors.

    ``past_key_values`` may be ``None`` (an empty cache): that is how the first step's cache is
    made for validation. ``attention_mask`` covers the past and the new tokens.
    """

    def __init__(self, model: torch.nn.Module, main_output: str) -> None:
        super().__init__()
        self.model = model
        self.main_output = main_output

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        past_key_values: PastTensors | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> dict[str, Any]:
        cache = DynamicCache(from_named(past_key_values)) if past_key_values else DynamicCache()
        extra = {"position_ids": position_ids} if position_ids is not None else {}
        outputs = self.model(input_ids=input_ids, attention_mask=attention_mask, cache=cache, use_cache=True, **extra)
        return {self.main_output: outputs[self.main_output], "present": to_named(cache_layers(output_cache(outputs)))}


class Seq2SeqEncoder(torch.nn.Module):
    """The encoder stack of a seq2seq model → ``last_hidden_state``.

    It takes what the encoder reads: ``input_ids`` and ``attention_mask`` (text), ``input_features``
    (Whisper's log-mel frames) or ``pixel_values`` (a vision encoder-decoder's image).
    """

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.encoder = model.get_encoder()

    def forward(self, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"last_hidden_state": self.encoder(**inputs).last_hidden_state}


class Seq2SeqDecoder(torch.nn.Module):
    """The decoder of a seq2seq model, run on the encoder's output, with its cache as named tensors.

    ``encoder_attention_mask`` is the text encoder's mask; encoders without one (Whisper, vision
    encoders) attend to every position and the graph has no such input.
    Without ``past_key_values`` it is the first step: it returns the self- and cross-attention
    cache. With them, the updated self-attention cache and the cross-attention one as it was fed
    (both steps have the same outputs, as the branches of a merged decoder must).
    The whole model is called with ``encoder_outputs`` so its own head and cache logic run.
    """

    def __init__(self, model: torch.nn.Module, main_output: str) -> None:
        super().__init__()
        self.model = model
        self.main_output = main_output

    def forward(
        self,
        input_ids: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor | None = None,
        past_key_values: dict[str, dict[str, dict[str, Any]]] | None = None,
    ) -> dict[str, Any]:
        if past_key_values:
            layers: list[Any] = [past_key_values[str(i)] for i in range(len(past_key_values))]
            self_attention = DynamicCache([(layer["decoder"]["key"], layer["decoder"]["value"]) for layer in layers])
            cross_attention = DynamicCache([(layer["encoder"]["key"], layer["encoder"]["value"]) for layer in layers])
            cache = EncoderDecoderCache(self_attention, cross_attention)
        else:
            cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        mask = {} if encoder_attention_mask is None else {"attention_mask": encoder_attention_mask}
        outputs = self.model(
            **mask,
            encoder_outputs=BaseModelOutput(last_hidden_state=encoder_hidden_states),
            decoder_input_ids=input_ids,
            cache=cache,
            use_cache=True,
        )
        result = output_cache(outputs)
        present: dict[str, dict[str, Any]] = {
            name: {"decoder": layer} for name, layer in to_named(cache_layers(result.self_attention_cache)).items()
        }
        if past_key_values:
            for name in present:
                present[name]["encoder"] = dict(past_key_values[name]["encoder"])
        else:
            for name, layer in to_named(cache_layers(result.cross_attention_cache)).items():
                present[name]["encoder"] = layer
        return {self.main_output: outputs[self.main_output], "present": present}
