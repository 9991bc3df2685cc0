"""Specs of speech and image-text models: Whisper, Wav2Vec2/HuBERT, CLIP/SigLIP, vision encoder-decoders.

Speech encoders take raw audio (``input_values``, a ``batch × audio_sequence`` float tensor);
Whisper takes log-mel frames of the fixed length its encoder was built for (``input_features``,
dynamic in the batch only) and decoder ids. CLIP and SigLIP take text and pixels together.
"""

from __future__ import annotations

from typing import Any

from exporter.specs.base import InputSpec, ModelSpec

_AUDIO = (InputSpec(name="input_values", kind="audio"),)
_IMAGE_TEXT = (
    InputSpec(name="input_ids", kind="ids"),
    InputSpec(name="attention_mask", kind="mask"),
    InputSpec(name="pixel_values", kind="pixels"),
)
_WHISPER = (
    InputSpec(name="input_features", kind="features"),
    InputSpec(name="decoder_input_ids", kind="decoder_ids"),
)
_IMAGE_TO_TEXT = (
    InputSpec(name="pixel_values", kind="pixels"),
    InputSpec(name="decoder_input_ids", kind="decoder_ids"),
)
#: Raw-audio encoders: the bare model, audio classification, CTC.
SPEECH_ENCODERS = ("hubert", "wav2vec2")
#: Zero-shot image classifiers: image and text embeddings, and the logits between them.
IMAGE_TEXT = ("clip", "siglip")
#: Open-vocabulary detectors: boxes for text queries (``input_ids`` holds the queries of every image).
OPEN_VOCABULARY_DETECTORS = ("owlvit", "owlv2")
_CONTRASTIVE_OUTPUTS = ("logits_per_image", "logits_per_text", "text_embeds", "image_embeds")


def _contrastive(name: str, tasks: tuple[str, ...], **extra: Any) -> ModelSpec:
    """A CLIP-style image-text model: both towers' inputs, the contrastive outputs."""
    return ModelSpec(
        model_type=name,
        modality="multimodal",
        inputs=_IMAGE_TEXT,
        tasks=tasks,
        output_names=_CONTRASTIVE_OUTPUTS,
        **extra,
    )


SPECS: list[ModelSpec] = [
    # The feature encoder's convolutions need a few frames' worth of samples (0.1 s at 16 kHz).
    *(
        ModelSpec(model_type=name, modality="audio", inputs=_AUDIO, axis_min={"audio_sequence_length": 1600})
        for name in SPEECH_ENCODERS
    ),
    # The towers' own outputs (``text_model_output`` …) are nested outputs, left out.
    *(_contrastive(name, ("default", "zero-shot-image-classification")) for name in IMAGE_TEXT),
    # GroupViT: CLIP-style contrastive towers whose vision tower groups patches into segments;
    # transformers has only the bare model (no zero-shot head class), whose logits are the scores.
    _contrastive("groupvit", ("default",)),
    # OWL-ViT / OWLv2: the CLIP-style model, and the detector (``logits`` per query, ``pred_boxes``).
    *(
        _contrastive(
            name,
            ("default", "zero-shot-object-detection"),
            task_output_names={
                "zero-shot-object-detection": ("logits", "pred_boxes", "text_embeds", "image_embeds", "class_embeds")
            },
        )
        for name in OPEN_VOCABULARY_DETECTORS
    ),
    # Without past: the decoder's first step in one graph. With past: the seq2seq layout clients load
    # (``encoder_model`` on ``input_features``; ``decoder_model_merged`` without an encoder mask).
    ModelSpec(
        model_type="whisper",
        modality="audio",
        family="encoder-decoder",
        inputs=_WHISPER,
        tasks=("default", "speech2seq-lm", "default-with-past", "speech2seq-lm-with-past"),
    ),
    # An image encoder (ViT, Swin …) and a text decoder with cross-attention (GPT-2, TrOCR …): image
    # captioning and OCR. With past: ``encoder_model`` on ``pixel_values`` + the merged decoder,
    # the layout transformers.js loads for TrOCR and ViT-GPT2.
    ModelSpec(
        model_type="vision-encoder-decoder",
        modality="vision",
        family="encoder-decoder",
        inputs=_IMAGE_TO_TEXT,
        tasks=("vision2seq-lm", "vision2seq-lm-with-past"),
    ),
]
