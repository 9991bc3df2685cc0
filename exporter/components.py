"""Components: the graphs one export writes, each exported and validated by every format on its own.

Most tasks have one component, ``model``: the model itself with the spec's inputs. A ``-with-past``
task wraps the model so its cache comes in and out as named tensors (:mod:`exporter.past`):

=========================== ================================================================
task                        components (files ``<name>.onnx`` / ``<name>.pt``)
=========================== ================================================================
decoder ``*-with-past``     ``model``: ``input_ids``, ``attention_mask`` (past + new tokens),
                            ``position_ids`` (when the model takes them), ``past_key_values.*``
seq2seq ``*-with-past``     ``encoder_model``; ``decoder_model`` (first step, no past in, the
                            whole cache out); ``decoder_with_past_model`` (past in, the
                            updated self-attention cache and the cross-attention one out).
                            In ONNX the two decoders become the branches of one
                            ``decoder_model_merged`` (:mod:`exporter.merge`). The encoder
                            takes ids and mask, Whisper's ``input_features`` or
                            ``pixel_values`` (a vision encoder-decoder)
=========================== ================================================================

Each component makes its own sample inputs for a shape: the past is real, from running the model
on a prefix of ``past_sequence`` tokens, never random tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from exporter import dummy_inputs
from exporter.past import DecoderWithPast, Seq2SeqDecoder, Seq2SeqEncoder
from exporter.tasks import get_task
from exporter.tensors import flatten_tensors

if TYPE_CHECKING:
    from exporter.loading import Loaded

InputFactory = Callable[[Mapping[str, int], int], dict[str, Any]]
_BATCH_SEQUENCE = {0: dummy_inputs.BATCH, 1: dummy_inputs.SEQUENCE}
_BATCH_ENCODER_SEQUENCE = {0: dummy_inputs.BATCH, 1: dummy_inputs.ENCODER_SEQUENCE}


@dataclass(frozen=True)
class Component:
    """One graph: a module, how to make its (possibly nested) inputs for a shape, and their dynamic axes.

    Attributes:
        name: the file stem (``model``, ``encoder_model`` …).
        module: called with the inputs as keyword arguments.
        make_inputs: ``(shape, seed) -> inputs``; the same shape and seed give the same tensors.
        axes: dynamic axes of each flat input name, by position (``{0: "batch_size", 2: "past_sequence_length"}``).
        output_names: outputs to export, in order; ``None``: every tensor of an eager run.
    """

    name: str
    module: Any
    make_inputs: InputFactory
    axes: Callable[[str], Mapping[int, str]]
    output_names: tuple[str, ...] | None = None

    def dynamic_axes(self, sample: Mapping[str, Any]) -> dict[str, Mapping[int, str]]:
        return {name: self.axes(name) for name in flatten_tensors(sample)}


def build_components(loaded: Loaded) -> list[Component]:
    """The graphs of ``loaded.task``: one ``model``, or the cache-carrying ones of a ``-with-past`` task."""
    task = get_task(loaded.task)
    if not task.with_past:
        return [_single(loaded)]
    main = "last_hidden_state" if task.base == "default" else "logits"
    if loaded.spec.family == "encoder-decoder" and task.base != "causal-lm":
        return seq2seq_components(loaded, main)
    return [decoder_component(loaded, main)]


def _single(loaded: Loaded) -> Component:
    choices = get_task(loaded.task).choices

    def make(shape: Mapping[str, int], seed: int) -> dict[str, Any]:
        if not choices:
            return dict(dummy_inputs.make_inputs(loaded.spec, loaded.inputs, loaded.config, shape, seed=seed))
        shape = dummy_inputs.complete_shape(shape)
        flat = {**shape, dummy_inputs.BATCH: shape[dummy_inputs.BATCH] * shape[dummy_inputs.NUM_CHOICES]}
        tensors = dummy_inputs.make_inputs(loaded.spec, loaded.inputs, loaded.config, flat, seed=seed)
        return dummy_inputs.with_choices(tensors, shape[dummy_inputs.NUM_CHOICES])

    by_name = {
        inp.name: dummy_inputs.choices_axes(inp.dynamic_axes) if choices else inp.dynamic_axes for inp in loaded.inputs
    }
    names = loaded.spec.output_names_for(loaded.task)
    module = SelectOutputs(loaded.model, names).eval() if names else loaded.model
    return Component("model", module, make, lambda name: by_name.get(name, {}), names)


class SelectOutputs(torch.nn.Module):
    """The model returning only the named top-level tensors of its output (CLIP's nested tower outputs are left out)."""

    def __init__(self, model: torch.nn.Module, names: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, **inputs: Any) -> dict[str, torch.Tensor]:
        outputs = self.model(**inputs)
        return {name: outputs[name] for name in self.names}


def _past_axes(name: str) -> Mapping[int, str]:
    """Axes of a decoder's cache tensors."""
    return {0: dummy_inputs.BATCH, 2: dummy_inputs.PAST_SEQUENCE}


def _seq2seq_past_axes(name: str, encoder_varies: bool = True) -> Mapping[int, str]:
    """Axes of a seq2seq decoder's cache: the cross-attention part is as long as the encoder's output."""
    if name.endswith((".encoder.key", ".encoder.value")):
        return {0: dummy_inputs.BATCH, 2: dummy_inputs.ENCODER_SEQUENCE} if encoder_varies else {0: dummy_inputs.BATCH}
    return {0: dummy_inputs.BATCH, 2: dummy_inputs.PAST_DECODER_SEQUENCE}


def _encoder_axes(axes: Mapping[int, str]) -> dict[int, str]:
    """A seq2seq encoder input's axes: its token axis is the ``encoder_sequence_length`` of the decoder's inputs."""
    return {
        position: dummy_inputs.ENCODER_SEQUENCE if name == dummy_inputs.SEQUENCE else name
        for position, name in axes.items()
    }


def _left_padded(batch: int, length: int) -> torch.Tensor:
    """Ones, but the first position of the last row is padding: a batch of generations pads on the left."""
    mask = torch.ones(batch, length, dtype=torch.long)
    if batch > 1:
        mask[-1, 0] = 0
    return mask


def decoder_component(loaded: Loaded, main: str) -> Component:
    """``model`` taking ``past_key_values.{i}.key`` / ``.value`` and returning ``present.{i}.*``."""
    module = DecoderWithPast(loaded.model, main).eval()
    takes_positions = "position_ids" in loaded.forward_parameters

    def make(shape: Mapping[str, int], seed: int) -> dict[str, Any]:
        shape = dummy_inputs.complete_shape(shape)
        batch, new, past = shape[dummy_inputs.BATCH], shape[dummy_inputs.SEQUENCE], shape[dummy_inputs.PAST_SEQUENCE]
        generator = torch.Generator().manual_seed(seed)
        prefix = dummy_inputs.token_ids(loaded.config, batch, past, generator)
        mask = _left_padded(batch, past + new)
        positions = torch.arange(past + new).expand(batch, -1)
        first: dict[str, Any] = {"input_ids": prefix, "attention_mask": mask[:, :past]}
        if takes_positions:
            first["position_ids"] = positions[:, :past]
        with torch.no_grad():
            cache = module(**first)["present"]
        sample: dict[str, Any] = {"input_ids": dummy_inputs.token_ids(loaded.config, batch, new, generator)}
        sample["attention_mask"] = mask
        if takes_positions:
            sample["position_ids"] = positions[:, past:].contiguous()
        sample["past_key_values"] = cache
        return sample

    def axes(name: str) -> Mapping[int, str]:
        if name == "attention_mask":
            return {0: dummy_inputs.BATCH, 1: dummy_inputs.TOTAL_SEQUENCE}
        return _BATCH_SEQUENCE if name in ("input_ids", "position_ids") else _past_axes(name)

    return Component("model", module, make, axes)


def seq2seq_components(loaded: Loaded, main: str) -> list[Component]:
    """``encoder_model``, ``decoder_model`` (first step) and ``decoder_with_past_model``.

    The encoder takes the spec's encoder-side inputs (token ids and mask, Whisper's log-mel frames,
    an image); the decoders take ``encoder_attention_mask`` only when the encoder has a mask.
    """
    encoder = Seq2SeqEncoder(loaded.model).eval()
    decoder = Seq2SeqDecoder(loaded.model, main).eval()
    config = loaded.config
    source_inputs = tuple(inp for inp in loaded.inputs if not inp.kind.startswith("decoder_"))
    source_axes = {inp.name: _encoder_axes(inp.dynamic_axes) for inp in source_inputs}
    masked = "attention_mask" in source_axes
    # Whisper's frames and an image's patches give the encoder a fixed length: only the batch varies.
    varies = any(dummy_inputs.ENCODER_SEQUENCE in axes.values() for axes in source_axes.values())
    context_axes = _BATCH_ENCODER_SEQUENCE if varies else {0: dummy_inputs.BATCH}

    def encoder_inputs(shape: Mapping[str, int], seed: int) -> dict[str, Any]:
        return dict(dummy_inputs.make_inputs(loaded.spec, source_inputs, config, shape, seed=seed))

    def decoder_inputs(shape: Mapping[str, int], seed: int, with_past: bool = False) -> dict[str, Any]:
        shape = dummy_inputs.complete_shape(shape)
        source = encoder_inputs(shape, seed)
        generator = torch.Generator().manual_seed(seed + 1000)
        with torch.no_grad():
            hidden = encoder(**source)["last_hidden_state"]
        sample: dict[str, Any] = {
            "input_ids": dummy_inputs.token_ids(
                config, shape[dummy_inputs.BATCH], shape[dummy_inputs.DECODER_SEQUENCE], generator
            ),
            "encoder_hidden_states": hidden,
        }
        if masked:
            sample["encoder_attention_mask"] = source["attention_mask"]
        if with_past:
            prefix = dummy_inputs.token_ids(
                config, shape[dummy_inputs.BATCH], shape[dummy_inputs.PAST_SEQUENCE], generator
            )
            with torch.no_grad():
                sample["past_key_values"] = decoder(**{**sample, "input_ids": prefix})["present"]
        return sample

    def decoder_axes(name: str) -> Mapping[int, str]:
        if name == "input_ids":
            return {0: dummy_inputs.BATCH, 1: dummy_inputs.DECODER_SEQUENCE}
        if name in ("encoder_hidden_states", "encoder_attention_mask"):
            return context_axes
        return _seq2seq_past_axes(name, varies)

    return [
        Component("encoder_model", encoder, encoder_inputs, lambda name: source_axes.get(name, {})),
        Component("decoder_model", decoder, decoder_inputs, decoder_axes),
        Component("decoder_with_past_model", decoder, lambda s, i: decoder_inputs(s, i, True), decoder_axes),
    ]
