"""Specs of the seed list's encoder and vision architectures.

Most need nothing but their modality: inputs come from the forward signature and tasks from
transformers' auto mappings. The exceptions say why.
"""

from __future__ import annotations

from exporter.specs.base import TEXT_INPUTS, InputSpec, ModelSpec

TEXT_ENCODERS = (
    "albert",
    "bert",
    "camembert",
    "convbert",
    "data2vec-text",
    "deberta",
    "deberta-v2",
    "distilbert",
    "electra",
    "flaubert",
    "ibert",
    "mobilebert",
    "rembert",
    "roberta",
    "roformer",
    "squeezebert",
    "xlm",
    "xlm-roberta",
    "xlm-roberta-xl",
)
VISION_ENCODERS = ("beit", "data2vec-vision", "deit", "vit")
#: Sentence-embedding encoders of today's Hub: ``default`` is the ``last_hidden_state`` that
#: sentence-transformers and transformers.js pool.
EMBEDDING_ENCODERS = ("modernbert", "mpnet", "nomic_bert")

SPECS: list[ModelSpec] = [
    # The causal-lm head is exported as the checkpoint is: causal when its config says ``is_decoder``,
    # bidirectional otherwise, exactly what ``AutoModelForCausalLM.from_pretrained`` runs.
    *(ModelSpec(model_type=name) for name in TEXT_ENCODERS if name not in ("flaubert", "mobilebert")),
    # transformers maps no causal LM to Flaubert; its LM head is XLM's, which is XLM's causal-lm.
    ModelSpec(model_type="flaubert", task_model_class={"causal-lm": "FlaubertWithLMHeadModel"}),
    # BigBird falls back to full attention on short inputs; its block-sparse path needs sequences
    # longer than the ones validated here, and the fallback is what short inputs run.
    ModelSpec(model_type="big_bird"),
    # MobileBERT's trigram embedding slices the sequence: length 2 takes another path.
    ModelSpec(model_type="mobilebert", axis_min={"sequence_length": 3}),
    *(ModelSpec(model_type=name) for name in EMBEDDING_ENCODERS),
    # Longformer's sliding-window attention chunks the sequence with sizes computed from the data.
    ModelSpec(
        model_type="longformer",
        not_exportable=(
            "its sliding-window attention computes its chunk count from the data: a TorchScript trace bakes "
            "in one sequence length (another fails in ONNX Runtime's Reshape), and torch.export stops at a "
            "data-dependent guard on the chunk count (2*u4 - 1 < 0)"
        ),
    ),
    # LayoutLM reads one bounding box per token.
    ModelSpec(model_type="layoutlm", inputs=(*TEXT_INPUTS, InputSpec(name="bbox", kind="bbox"))),
    # LayoutLMv3 reads the page too: boxes per token and the page's pixels.
    ModelSpec(
        model_type="layoutlmv3",
        inputs=(*TEXT_INPUTS, InputSpec(name="bbox", kind="bbox"), InputSpec(name="pixel_values", kind="pixels")),
    ),
    *(ModelSpec(model_type=name, modality="vision", atol=1e-4) for name in VISION_ENCODERS),
    # ImageGPT reads an image as a sequence of colour-cluster ids.
    ModelSpec(
        model_type="imagegpt",
        modality="vision",
        inputs=(InputSpec(name="input_ids", kind="ids"), InputSpec(name="attention_mask", kind="mask")),
    ),
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
