"""Specs of the seed list's encoder and vision architectures.

Most need nothing but their modality: inputs come from the forward signature and tasks from
transformers' auto mappings. The exceptions say why.
"""

from __future__ import annotations

from exporter.specs.base import TEXT_INPUTS, InputSpec, ModelSpec

_DECODER = {"causal-lm": {"is_decoder": True, "use_cache": False}}

TEXT_ENCODERS = (
    "albert",
    "bert",
    "camembert",
    "convbert",
    "data2vec-text",
    "distilbert",
    "electra",
    "flaubert",
    "ibert",
    "mobilebert",
    "roberta",
    "roformer",
    "squeezebert",
    "xlm",
    "xlm-roberta",
    "xlm-roberta-xl",
)
VISION_ENCODERS = ("beit", "data2vec-vision", "deit", "vit")

SPECS: list[ModelSpec] = [
    *(ModelSpec(model_type=name, config_overrides=_DECODER) for name in TEXT_ENCODERS if name != "mobilebert"),
    # BigBird falls back to full attention on short inputs; its block-sparse path needs sequences
    # longer than the ones validated here, and the fallback is what short inputs run.
    ModelSpec(model_type="big_bird", config_overrides=_DECODER),
    # MobileBERT's trigram embedding slices the sequence: length 2 takes another path.
    ModelSpec(model_type="mobilebert", config_overrides=_DECODER, axis_min={"sequence_length": 3}),
    # LayoutLM reads one bounding box per token.
    ModelSpec(model_type="layoutlm", inputs=(*TEXT_INPUTS, InputSpec(name="bbox", kind="bbox"))),
    *(ModelSpec(model_type=name, modality="vision", atol=1e-4) for name in VISION_ENCODERS),
    # Perceiver takes a single `inputs` argument: token ids for text heads, pixels for the image head.
    ModelSpec(
        model_type="perceiver",
        inputs=(InputSpec(name="inputs", kind="ids"), InputSpec(name="attention_mask", kind="mask")),
        task_inputs={
            # The bare model has no preprocessor: it takes already embedded inputs.
            "default": (
                InputSpec(name="inputs", kind="embeds"),
                InputSpec(name="attention_mask", kind="mask"),
            ),
            "image-classification": (InputSpec(name="inputs", kind="pixels"),),
        },
        tasks=("default", "masked-lm", "sequence-classification", "image-classification"),
    ),
]
