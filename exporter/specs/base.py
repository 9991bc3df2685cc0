"""What an architecture needs to be exported: a small declarative spec per family.

Generic code derives the rest from the model: which of the spec's candidate inputs the forward
signature takes, the output names (from an eager run), the head (from the task's auto class).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

# How a dummy tensor is made; see ``exporter.dummy_inputs``.
InputKind = Literal[
    "ids", "mask", "token_types", "bbox", "pixels", "embeds", "positions", "decoder_ids", "decoder_mask",
    "audio", "features", "pixel_mask",
]  # fmt: skip
#: ``multimodal`` models (CLIP, SigLIP) get the tasks of every modality transformers has a head for.
Modality = Literal["text", "vision", "audio", "multimodal"]
#: ``encoder``: one stack; ``decoder``: a causal LM with a key/value cache; ``encoder-decoder``: seq2seq with one.
Family = Literal["encoder", "decoder", "encoder-decoder"]
#: Rounding of float32 grows with the activations' scale, not with each element's own value: a tiny T5
#: with large weights (``initializer_factor=3``) needs 7e-5 on its logits. A wrong mask or cache moves
#: outputs by whole percents, far beyond it.
DEFAULT_RTOL = 1e-4
DummyFactory = Callable[[Any, Mapping[str, int], torch.Generator], dict[str, torch.Tensor]]
ModelHook = Callable[[torch.nn.Module], None]


@dataclass(frozen=True, kw_only=True)
class InputSpec:
    """One forward argument: its name and the kind of dummy tensor it takes."""

    name: str
    kind: InputKind

    @property
    def dynamic_axes(self) -> dict[int, str]:
        """Axes that vary at run time, by position, named as ONNX consumers expect."""
        if self.kind in ("pixels", "features", "pixel_mask"):  # images, and log-mel frames of a fixed length (Whisper)
            return {0: "batch_size"}
        if self.kind == "audio":
            return {0: "batch_size", 1: "audio_sequence_length"}
        if self.kind in ("decoder_ids", "decoder_mask"):
            return {0: "batch_size", 1: "decoder_sequence_length"}
        return {0: "batch_size", 1: "sequence_length"}


TEXT_INPUTS = (
    InputSpec(name="input_ids", kind="ids"),
    InputSpec(name="attention_mask", kind="mask"),
    InputSpec(name="token_type_ids", kind="token_types"),
)
VISION_INPUTS = (InputSpec(name="pixel_values", kind="pixels"),)
DECODER_INPUTS = (InputSpec(name="input_ids", kind="ids"), InputSpec(name="attention_mask", kind="mask"))
SEQ2SEQ_INPUTS = (
    *DECODER_INPUTS,
    InputSpec(name="decoder_input_ids", kind="decoder_ids"),
    InputSpec(name="decoder_attention_mask", kind="decoder_mask"),
)


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """What differs for one ``model_type``; everything else is derived.

    Attributes:
        model_type: ``config.model_type`` this spec covers.
        modality: picks default inputs and the tasks that make sense (vision models get no text heads).
        inputs: candidate inputs; those the forward signature lacks are dropped.
        task_inputs: per-task replacement of ``inputs`` (Perceiver's ``inputs`` is ids or pixels).
        tasks: tasks to offer; ``None`` means every task of the modality transformers has a head for.
        atol: absolute tolerance for validation; ``task_atol`` overrides it per task.
        rtol: relative tolerance, per element of the reference (``|a - b| <= atol + rtol * |b|``, as
            :func:`numpy.allclose`); ``task_rtol`` overrides it per task.
        config_overrides: applied to the config before the model is built, per task.
        dummy_inputs: a custom factory ``(config, shape, generator) -> tensors`` replacing the generic one.
        model_class: for architectures transformers' auto classes don't know (user specs).
        task_model_class: transformers class name per task whose auto class has none for this type
            (Flaubert's LM head as its ``causal-lm``, as XLM's is and as ``transformers.onnx`` exported it).
        output_names: outputs to export, in order (default: every tensor of an eager run);
            ``task_output_names`` overrides them per task.
        axis_min: smallest size a dynamic axis may take, where the model's code needs one.
        sequence_headroom: sequence axes stay this far below ``max_position_embeddings`` (GPT-Neo slices
            its causal-mask buffer, whose full length takes another path).
        family: ``decoder`` and ``encoder-decoder`` models also get the ``-with-past`` tasks; an
            ``encoder-decoder`` one is split into ``encoder_model`` / ``decoder_model`` /
            ``decoder_with_past_model`` graphs for its ``-with-past`` tasks (``seq2seq-lm``, ``speech2seq-lm``,
            ``vision2seq-lm``, ``default``).
        prepare_model: rewrites the loaded model in place before export, keeping its math exactly
            (Bloom's GeLU is an ``autograd.Function`` TorchScript cannot trace: its forward function is).
        not_exportable: why no task of this type can be exported on the installed torch/transformers
            (``exporter features`` and the support table show it; the CLI refuses with exit 4).
        task_not_exportable: the same, per task.
        ids_end_with_eos: dummy token ids end with ``config.eos_token_id`` (BART-style classification
            heads pool the hidden state at the ``</s>`` token and need exactly one per row).
    """

    model_type: str
    modality: Modality = "text"
    inputs: tuple[InputSpec, ...] = ()
    task_inputs: Mapping[str, tuple[InputSpec, ...]] = field(default_factory=dict)
    tasks: tuple[str, ...] | None = None
    atol: float = 1e-4
    task_atol: Mapping[str, float] = field(default_factory=dict)
    rtol: float = DEFAULT_RTOL
    task_rtol: Mapping[str, float] = field(default_factory=dict)
    config_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    dummy_inputs: DummyFactory | None = None
    model_class: type | None = None
    task_model_class: Mapping[str, str] = field(default_factory=dict)
    output_names: tuple[str, ...] | None = None
    task_output_names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    axis_min: Mapping[str, int] = field(default_factory=dict)
    sequence_headroom: int = 0
    family: Family = "encoder"
    ids_end_with_eos: bool = False
    prepare_model: ModelHook | None = None
    not_exportable: str | None = None
    task_not_exportable: Mapping[str, str] = field(default_factory=dict)

    def inputs_for(self, task: str) -> tuple[InputSpec, ...]:
        task = task.removesuffix("-with-past")
        if task in self.task_inputs:
            return self.task_inputs[task]
        if self.inputs:
            return self.inputs
        return VISION_INPUTS if self.modality == "vision" else TEXT_INPUTS

    def output_names_for(self, task: str) -> tuple[str, ...] | None:
        return self.task_output_names.get(task.removesuffix("-with-past"), self.output_names)

    def model_class_for(self, task: str) -> Any:
        """The class that builds ``task``'s head: the spec's own, its per-task one, or the task's auto class."""
        import transformers

        from exporter.tasks import get_task

        if self.model_class is not None:
            return self.model_class
        if task in self.task_model_class:
            return getattr(transformers, self.task_model_class[task])
        return get_task(task).auto()

    def atol_for(self, task: str) -> float:
        return self.task_atol.get(task, self.atol)

    def rtol_for(self, task: str) -> float:
        return self.task_rtol.get(task, self.rtol)
