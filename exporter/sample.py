"""Tiny random-weight checkpoints built locally: the Quickstart's sample and the tests' fixtures.

No network: a config from ``AutoConfig.for_model`` with small sizes, random weights saved as
safetensors, and for text models a word-piece tokenizer over a small vocabulary made here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from exporter.tasks import get_task

_BERT_LIKE = {
    "vocab_size": 128,
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 4,
    "intermediate_size": 37,
    "max_position_embeddings": 64,
}
_VISION = {
    "image_size": 32,
    "patch_size": 8,
    "num_channels": 3,
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 4,
    "intermediate_size": 37,
}
#: BEiT-style semantic segmentation reads four hidden states of the stack (``out_indices``).
_VISION_SEGMENTATION = {**_VISION, "num_hidden_layers": 4, "out_indices": [1, 2, 3, 4], "pool_scales": [1, 2]}
_XLM = {"vocab_size": 128, "emb_dim": 32, "n_layers": 1, "n_heads": 4, "max_position_embeddings": 64}
# Decoders and seq2seq models get two layers: the cache of a -with-past export is per layer.
_BART_LIKE = {
    "vocab_size": 128,
    "d_model": 32,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
    "encoder_ffn_dim": 37,
    "decoder_ffn_dim": 37,
    "max_position_embeddings": 64,
}
# GPT-style special ids inside the tiny vocabulary. A classification head pools the last non-padding
# token, so it needs a padding id (0: never a dummy id).
_GPT_IDS = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
# Llama-style: grouped-query attention (2 key/value heads for 4 query heads), explicit head size.
_LLAMA_LIKE = {
    "vocab_size": 128,
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "max_position_embeddings": 64,
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
}

_T5_LIKE = {
    "vocab_size": 128,
    "d_model": 32,
    "d_kv": 8,
    "d_ff": 37,
    "num_layers": 2,
    "num_decoder_layers": 2,
    "num_heads": 4,
    "relative_attention_num_buckets": 8,
    "relative_attention_max_distance": 16,
    "decoder_start_token_id": 0,
}
# Mixture-of-experts decoders: four small experts, two per token.
# grouped_mm wants each expert's row stride a multiple of 16 bytes: sizes multiples of 4 floats.
_MOE = {**_LLAMA_LIKE, "intermediate_size": 32, "num_experts_per_tok": 2}
_QWEN_MOE = {**_MOE, "num_experts": 4, "moe_intermediate_size": 16, "shared_expert_intermediate_size": 16}
# Vision backbones: 32 × 32 pixels (``image_size`` is set for those whose config has none).
_SMALL_IMAGE = {"image_size": 32, "num_channels": 3}

_SPEECH = {
    "vocab_size": 32,
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 4,
    "intermediate_size": 37,
    "conv_dim": [8, 8],
    "conv_stride": [5, 2],
    "conv_kernel": [10, 3],
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 4,
    "classifier_proj_size": 16,
}
_CLIP_TEXT = {
    "vocab_size": 128,
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_hidden_layers": 1,
    "num_attention_heads": 4,
    "max_position_embeddings": 64,
}

#: Small sizes per model type: every architecture the test-suite exports.
TINY_CONFIGS: dict[str, dict[str, Any]] = {
    "albert": {**_BERT_LIKE, "embedding_size": 16},
    "bert": _BERT_LIKE,
    "big_bird": {**_BERT_LIKE, "block_size": 4, "num_random_blocks": 2},
    "camembert": _BERT_LIKE,
    "convbert": {**_BERT_LIKE, "embedding_size": 32},
    "data2vec-text": _BERT_LIKE,
    "distilbert": {
        "vocab_size": 128,
        "dim": 32,
        "n_layers": 1,
        "n_heads": 4,
        "hidden_dim": 37,
        "max_position_embeddings": 64,
    },
    "electra": {**_BERT_LIKE, "embedding_size": 16},
    "flaubert": _XLM,
    "ibert": _BERT_LIKE,
    "layoutlm": _BERT_LIKE,
    "mobilebert": {
        **_BERT_LIKE,
        "embedding_size": 16,
        "intra_bottleneck_size": 16,
        "num_feedforward_networks": 1,
    },
    "perceiver": {
        "vocab_size": 128,
        "max_position_embeddings": 64,
        "num_latents": 8,
        "d_latents": 16,
        "d_model": 32,
        "num_blocks": 1,
        "num_self_attends_per_block": 1,
        "num_self_attention_heads": 2,
        "num_cross_attention_heads": 1,
        "image_size": 8,
    },
    "roberta": _BERT_LIKE,
    "roformer": {**_BERT_LIKE, "embedding_size": 32},
    "squeezebert": {**_BERT_LIKE, "embedding_size": 32, "intermediate_size": 64},
    "xlm": _XLM,
    "xlm-roberta": _BERT_LIKE,
    "xlm-roberta-xl": _BERT_LIKE,
    "beit": _VISION_SEGMENTATION,
    # Seed decoders and seq2seq models. Special token ids are moved inside the tiny vocabulary.
    "bart": _BART_LIKE,
    "bigbird_pegasus": {**_BART_LIKE, "attention_type": "original_full", "block_size": 4, "num_random_blocks": 2},
    "blenderbot": _BART_LIKE,
    "blenderbot-small": _BART_LIKE,
    "m2m_100": _BART_LIKE,
    "marian": {**_BART_LIKE, "pad_token_id": 1, "decoder_start_token_id": 1, "eos_token_id": 0},
    "mbart": _BART_LIKE,
    "plbart": _BART_LIKE,
    "t5": _T5_LIKE,
    "mt5": _T5_LIKE,
    "longt5": {**_T5_LIKE, "local_radius": 4, "global_block_size": 4},
    "gpt2": {"vocab_size": 128, "n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 64, **_GPT_IDS},
    "gpt_neo": {
        "vocab_size": 128,
        "hidden_size": 32,
        "num_layers": 2,
        "num_heads": 4,
        "attention_types": [[["global", "local"], 1]],
        "max_position_embeddings": 64,
        **_GPT_IDS,
    },
    "gptj": {
        "vocab_size": 128,
        "n_embd": 32,
        "n_layer": 2,
        "n_head": 4,
        "n_positions": 64,
        "rotary_dim": 4,
        **_GPT_IDS,
    },
    # Modern decoder LMs.
    "llama": _LLAMA_LIKE,
    "mistral": _LLAMA_LIKE,
    "qwen2": _LLAMA_LIKE,
    "qwen3": _LLAMA_LIKE,
    "phi3": _LLAMA_LIKE,
    "gemma2": _LLAMA_LIKE,
    "gemma3_text": _LLAMA_LIKE,
    "granite": _LLAMA_LIKE,
    "olmo2": _LLAMA_LIKE,
    "falcon": {
        "vocab_size": 128,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 64,
        **_GPT_IDS,
    },
    "gemma": _LLAMA_LIKE,
    "gpt_neox": {**_LLAMA_LIKE, "rotary_pct": 0.5},
    "mixtral": {**_MOE, "num_local_experts": 4},
    "phi": {**_LLAMA_LIKE, "partial_rotary_factor": 0.5},
    "qwen2_moe": _QWEN_MOE,
    "qwen3_moe": _QWEN_MOE,
    "smollm3": _LLAMA_LIKE,
    "starcoder2": _LLAMA_LIKE,
    "bloom": {"vocab_size": 128, "hidden_size": 32, "n_layer": 2, "n_head": 4, **_GPT_IDS},
    "codegen": {
        "vocab_size": 128,
        "n_embd": 32,
        "n_layer": 2,
        "n_head": 4,
        "n_positions": 64,
        "rotary_dim": 4,
        **_GPT_IDS,
    },
    # Encoders added with issue 11.
    "deberta": _BERT_LIKE,
    "deberta-v2": _BERT_LIKE,
    "rembert": {**_BERT_LIKE, "input_embedding_size": 16, "output_embedding_size": 16},
    "mpnet": _BERT_LIKE,
    "nomic_bert": {**_BERT_LIKE, "head_dim": 8},
    "layoutlmv3": {
        **_BERT_LIKE,
        "max_position_embeddings": 128,
        "input_size": 32,
        "image_size": 32,
        "patch_size": 8,
        "coordinate_size": 4,
        "shape_size": 8,
        "rel_pos_bins": 8,
        "max_rel_pos": 16,
        "rel_2d_pos_bins": 8,
        "max_rel_2d_pos": 32,
    },
    "imagegpt": {"vocab_size": 17, "n_positions": 64, "n_embd": 32, "n_layer": 2, "n_head": 4},
    "longformer": {**_BERT_LIKE, "attention_window": 4},
    "modernbert": {
        **_BERT_LIKE,
        "num_hidden_layers": 2,
        "global_attn_every_n_layers": 2,
        "local_attention": 8,
        "pad_token_id": 0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "cls_token_id": 1,
        "sep_token_id": 2,
    },
    # Speech and image-text models.
    "wav2vec2": _SPEECH,
    "hubert": _SPEECH,
    "whisper": {
        **_BART_LIKE,
        "num_mel_bins": 8,
        "max_source_positions": 16,
        "max_target_positions": 32,
        "decoder_start_token_id": 1,
        "begin_suppress_tokens": None,
        "suppress_tokens": None,
        **_GPT_IDS,
    },
    # A ViT encoder and a GPT-2 decoder with cross-attention (ViT-GPT2 captioning; TrOCR is the same shape).
    "vision-encoder-decoder": {
        "encoder": {"model_type": "vit", **_VISION},
        "decoder": {
            "model_type": "gpt2",
            "vocab_size": 128,
            "n_embd": 32,
            "n_layer": 2,
            "n_head": 4,
            "n_positions": 64,
            "is_decoder": True,
            "add_cross_attention": True,
            **_GPT_IDS,
        },
        "decoder_start_token_id": 1,
        **_GPT_IDS,
    },
    "clip": {"text_config": _CLIP_TEXT, "vision_config": _VISION, "projection_dim": 16},
    # Two grouping stages: 16 patches → 4 group tokens → 2 output groups.
    "groupvit": {
        "text_config": _CLIP_TEXT,
        "vision_config": {
            **_VISION,
            "num_hidden_layers": 2,
            "depths": [1, 1],
            "num_group_tokens": [4, 0],
            "num_output_groups": [4, 2],
        },
        "projection_dim": 16,
        "projection_intermediate_dim": 32,
    },
    # The detector compares image-patch embeddings with the text queries' projections: equal widths.
    "owlvit": {"text_config": _CLIP_TEXT, "vision_config": _VISION, "projection_dim": 32},
    "owlv2": {"text_config": _CLIP_TEXT, "vision_config": _VISION, "projection_dim": 32},
    "siglip": {"text_config": _CLIP_TEXT, "vision_config": _VISION},
    "data2vec-vision": _VISION_SEGMENTATION,
    "deit": _VISION,
    "vit": _VISION,
    "dinov2": _VISION,
    "yolos": {**_VISION, "image_size": [32, 32], "num_detection_tokens": 4},
    "detr": {
        # The segmentation head fuses three backbone stages: four stages, 64 × 64 pixels.
        **_SMALL_IMAGE,
        "image_size": 64,
        "use_timm_backbone": False,
        "use_pretrained_backbone": False,
        "backbone": None,
        "backbone_config": {
            "model_type": "resnet",
            "embedding_size": 8,
            "hidden_sizes": [8, 8, 16, 16],
            "depths": [1, 1, 1, 1],
            "out_features": ["stage1", "stage2", "stage3", "stage4"],
        },
        "d_model": 32,
        "encoder_layers": 1,
        "decoder_layers": 1,
        # The segmentation head's group norm wants d_model + heads divisible by 8.
        "encoder_attention_heads": 8,
        "decoder_attention_heads": 8,
        "encoder_ffn_dim": 37,
        "decoder_ffn_dim": 37,
        "num_queries": 5,
    },
    "convnext": {**_SMALL_IMAGE, "hidden_sizes": [8, 16], "depths": [1, 1], "num_stages": 2},
    "levit": {
        "image_size": 64,
        "hidden_sizes": [16, 32, 48],
        "num_attention_heads": [1, 2, 3],
        "depths": [1, 1, 1],
        "key_dim": [8, 8, 8],
    },
    "mobilenet_v1": {**_SMALL_IMAGE, "depth_multiplier": 0.25},
    "mobilenet_v2": {**_SMALL_IMAGE, "depth_multiplier": 0.25},
    "mobilevit": {
        **_SMALL_IMAGE,
        "hidden_sizes": [16, 16, 16],
        "neck_hidden_sizes": [8, 8, 8, 16, 16, 16, 32],
        "num_attention_heads": 2,
    },
    "poolformer": {**_SMALL_IMAGE, "hidden_sizes": [8, 8, 16, 16], "depths": [1, 1, 1, 1]},
    "resnet": {**_SMALL_IMAGE, "embedding_size": 8, "hidden_sizes": [8, 16], "depths": [1, 1]},
    "segformer": {
        **_SMALL_IMAGE,
        "num_encoder_blocks": 2,
        "depths": [1, 1],
        "sr_ratios": [2, 1],
        "hidden_sizes": [8, 16],
        "patch_sizes": [7, 3],
        "strides": [4, 2],
        "num_attention_heads": [1, 2],
        "mlp_ratios": [2, 2],
        "decoder_hidden_size": 16,
    },
    "swin": {
        "image_size": 32,
        "patch_size": 4,
        "embed_dim": 8,
        "depths": [1, 1],
        "num_heads": [2, 2],
        "window_size": 2,
    },
}

_WORDS = [
    "the",
    "a",
    "model",
    "export",
    "onnx",
    "runtime",
    "torch",
    "script",
    "hub",
    "bot",
    "pull",
    "request",
    "test",
    "tiny",
    "random",
    "weight",
    "check",
    "shape",
    "batch",
    "sequence",
    "token",
    "vision",
    "text",
    "encoder",
    "decoder",
    "value",
    "key",
    "query",
    "layer",
    "head",
]


def tiny_config(model_type: str, task: str = "default", **overrides: Any) -> Any:
    """A small config of ``model_type`` whose ``architectures`` names the head of ``task``."""
    from transformers import AutoConfig

    kwargs = {**TINY_CONFIGS.get(model_type, {}), **overrides}
    config = AutoConfig.for_model(model_type, **kwargs)
    from exporter.specs import SPECS

    spec = SPECS.get(model_type)
    own = spec.task_model_class.get(task) if spec is not None else None
    classes = (own,) if own else get_task(task).model_classes(model_type)
    if classes:
        config.architectures = [classes[0]]
    return config


def build_sample_checkpoint(
    path: Path,
    model_type: str = "bert",
    task: str = "sequence-classification",
    seed: int = 0,
    **overrides: Any,
) -> Path:
    """Write a tiny random checkpoint of ``model_type`` with the head of ``task`` into ``path``."""
    from exporter.specs import get_spec

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    spec = get_spec(model_type)
    if task == "causal-lm" and spec.family == "encoder":
        # An encoder trained as a causal LM says so in its config (the Hub's BERT-as-decoder checkpoints do).
        overrides = {"is_decoder": True, **overrides}
    config = tiny_config(model_type, task, **overrides)
    for key, value in spec.config_overrides.get(task, {}).items():
        setattr(config, key, value)
    torch.manual_seed(seed)
    model_class = spec.model_class_for(task)
    model = model_class.from_config(config) if hasattr(model_class, "from_config") else model_class(config)
    model.save_pretrained(path)
    if spec.modality == "text" and model_type in TINY_CONFIGS:
        save_tokenizer(path, int(getattr(config, "vocab_size", 128)))
    return path


def save_tokenizer(path: Path, vocab_size: int) -> None:
    """A word-piece tokenizer over a vocabulary of ``vocab_size`` entries made from a fixed word list."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = [
        *specials,
        *_WORDS,
        *"abcdefghijklmnopqrstuvwxyz",
        *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"),
    ]
    pieces += [f"[unused{i}]" for i in range(max(0, vocab_size - len(pieces)))]
    vocab = {piece: index for index, piece in enumerate(pieces[:vocab_size])}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.BertProcessing(("[SEP]", vocab["[SEP]"]), ("[CLS]", vocab["[CLS]"]))
    tokenizer.decoder = decoders.WordPiece()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    fast.save_pretrained(path)
    # transformers 5 names the class ``TokenizersBackend``, unknown to transformers 4 (which Optimum
    # pins); ``PreTrainedTokenizerFast`` is its alias in 5 and the class in 4: both load it.
    config_file = path / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_file.write_text(json.dumps(config, indent=2) + "\n")


def reweight_checkpoint(path: Path, seed: int, scale: float = 0.02) -> Path:
    """Add seeded noise to every float weight of the checkpoint in ``path`` and save it back.

    A new commit of the same architecture with other weights, as a fine-tune makes one. A fresh
    random init leaves many weights equal (every LayerNorm scale is ones); trained ones differ.
    """
    import transformers
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(path)
    model_class = getattr(transformers, (config.architectures or [""])[0], None) or AutoModel
    model = model_class.from_pretrained(path)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype) * scale)
    model.save_pretrained(path)
    return path
