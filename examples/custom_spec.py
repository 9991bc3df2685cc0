"""Specs for architectures the exporter does not know: the counterpart of the old custom ``OnnxConfig``.

Two examples, each a :class:`exporter.ModelSpec` you pass as ``--spec examples/custom_spec.py:NAME``
(or register from Python with :func:`exporter.register_spec`):

``MEGATRON``
    Megatron-BERT is a transformers architecture this exporter has no spec for. Its heads come from
    transformers' auto classes; the spec only says which inputs to feed and the tolerance::

        exporter export --spec examples/custom_spec.py:MEGATRON --model ./my-megatron --task sequence-classification out/

``SENSOR``
    A model that is not in transformers at all: :class:`SensorClassifier`, defined below, classifies
    sequences of sensor readings (float features, not token ids). The spec names the class to build,
    makes its dummy inputs and declares its output. Importing this file registers its config with
    ``AutoConfig`` so that its checkpoints' ``config.json`` can be read::

        exporter export --spec examples/custom_spec.py:SENSOR --model ./my-sensor --task sequence-classification out/

See ``docs/custom-architectures.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from exporter import InputSpec, ModelSpec

# ── Megatron-BERT: known to transformers, unknown to the exporter ─────────────────────────────────────────

MEGATRON = ModelSpec(
    model_type="megatron-bert",
    # Ids and a padding mask (token types default to zeros). Both vary in batch and sequence.
    inputs=(InputSpec(name="input_ids", kind="ids"), InputSpec(name="attention_mask", kind="mask")),
    # Tasks default to every text head transformers has for ``megatron-bert``; list them to narrow it down.
    tasks=("default", "masked-lm", "sequence-classification", "token-classification", "question-answering"),
    atol=1e-4,
)

# ── A fully custom architecture, defined here ─────────────────────────────────────────────────────


@strict
class SensorConfig(PreTrainedConfig):
    """A 1-D convolutional classifier over ``num_features`` readings per time step (a transformers 5 config)."""

    model_type = "tiny-sensor"

    num_features: int = 6
    hidden_size: int = 16
    kernel_size: int = 3


class SensorClassifier(PreTrainedModel):
    """Convolution over time, masked mean pooling over the valid steps, a linear head."""

    config_class = SensorConfig
    base_model_prefix = "sensor"

    def __init__(self, config: SensorConfig) -> None:
        super().__init__(config)
        self.conv = torch.nn.Conv1d(
            config.num_features, config.hidden_size, config.kernel_size, padding=config.kernel_size // 2
        )
        self.classifier = torch.nn.Linear(config.hidden_size, int(config.num_labels or 2))
        self.post_init()

    def forward(self, features: torch.Tensor, attention_mask: torch.Tensor | None = None) -> SequenceClassifierOutput:
        hidden = torch.nn.functional.gelu(self.conv(features.transpose(1, 2))).transpose(1, 2)
        if attention_mask is None:
            attention_mask = torch.ones(features.shape[:2], dtype=torch.long, device=features.device)
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        return SequenceClassifierOutput(logits=self.classifier(pooled))


def sensor_inputs(config: Any, shape: Mapping[str, int], generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Dummy readings ``(batch, sequence, num_features)`` and a mask with the last row half padded."""
    batch, steps = shape["batch_size"], shape["sequence_length"]
    mask = torch.ones(batch, steps, dtype=torch.long)
    if batch > 1:
        mask[-1, steps // 2 :] = 0
    return {"features": torch.randn(batch, steps, config.num_features, generator=generator), "attention_mask": mask}


AutoConfig.register(SensorConfig.model_type, SensorConfig, exist_ok=True)

SENSOR = ModelSpec(
    model_type=SensorConfig.model_type,
    # ``embeds`` inputs vary in batch and sequence (axes 0 and 1): named so in the ONNX graph.
    inputs=(InputSpec(name="features", kind="embeds"), InputSpec(name="attention_mask", kind="mask")),
    tasks=("sequence-classification",),
    model_class=SensorClassifier,
    dummy_inputs=sensor_inputs,
    output_names=("logits",),
    atol=1e-5,
)
