"""Task names, task inference from ``config.architectures`` and the support matrix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exporter.errors import UnsupportedTaskError
from exporter.specs import get_spec
from exporter.support import support_matrix, support_table_markdown, supported_tasks
from exporter.tasks import TASKS, infer_task

SEED_TASKS = {
    "default",
    "masked-lm",
    "causal-lm",
    "seq2seq-lm",
    "sequence-classification",
    "token-classification",
    "question-answering",
    "image-classification",
}


WITH_PAST_TASKS = {
    "default-with-past",
    "causal-lm-with-past",
    "seq2seq-lm-with-past",
    "speech2seq-lm-with-past",
    "vision2seq-lm-with-past",
}
#: The other features of transformers 4.38's ``FeaturesManager`` (issue 11).
OLD_FEATURES = {
    "multiple-choice",
    "semantic-segmentation",
    "image-segmentation",
    "object-detection",
    "speech2seq-lm",
    "vision2seq-lm",
}
#: Tasks of today's Hub families: CLIP/SigLIP, OWL-ViT, Wav2Vec2/HuBERT.
MODERN_TASKS = {"zero-shot-image-classification", "zero-shot-object-detection", "audio-classification", "ctc"}


def test_task_names_are_the_old_feature_names() -> None:
    assert set(TASKS) == SEED_TASKS | WITH_PAST_TASKS | OLD_FEATURES | MODERN_TASKS
    assert {name for name, task in TASKS.items() if task.with_past} == WITH_PAST_TASKS
    assert TASKS["seq2seq-lm-with-past"].base == "seq2seq-lm"


def test_with_past_tasks_follow_the_cache() -> None:
    """Decoders and seq2seq models get the -with-past variant of their LM tasks; encoders never do."""
    assert supported_tasks(get_spec("gpt2"))[-2:] == ("default-with-past", "causal-lm-with-past")
    assert {"default-with-past", "seq2seq-lm-with-past"} <= set(supported_tasks(get_spec("t5")))
    assert "causal-lm-with-past" not in supported_tasks(get_spec("t5"))  # T5 has no causal-lm head
    assert not WITH_PAST_TASKS & set(supported_tasks(get_spec("bert")))  # BERT's causal-lm has no cache export
    assert supported_tasks(get_spec("whisper")) == (
        "default",
        "speech2seq-lm",
        "default-with-past",
        "speech2seq-lm-with-past",
    )


def test_with_past_is_never_inferred() -> None:
    tasks = supported_tasks(get_spec("gpt2"))
    assert infer_task("gpt2", ["GPT2LMHeadModel"], tasks) == "causal-lm"
    assert infer_task("t5", ["T5ForConditionalGeneration"], supported_tasks(get_spec("t5"))) == "seq2seq-lm"


@pytest.mark.parametrize(
    ("model_type", "architecture", "task"),
    [
        ("bert", "BertForSequenceClassification", "sequence-classification"),
        ("bert", "BertForMaskedLM", "masked-lm"),
        ("bert", "BertLMHeadModel", "causal-lm"),
        ("bert", "BertModel", "default"),
        ("distilbert", "DistilBertForQuestionAnswering", "question-answering"),
        ("vit", "ViTForImageClassification", "image-classification"),
        ("xlm", "XLMWithLMHeadModel", "masked-lm"),
        ("whisper", "WhisperForConditionalGeneration", "speech2seq-lm"),
        ("vision-encoder-decoder", "VisionEncoderDecoderModel", "vision2seq-lm"),
        ("owlvit", "OwlViTForObjectDetection", "zero-shot-object-detection"),
        ("owlv2", "Owlv2Model", "default"),
    ],
)
def test_infer_task(model_type: str, architecture: str, task: str) -> None:
    assert infer_task(model_type, [architecture], supported_tasks(get_spec(model_type))) == task


def test_infer_task_without_architectures_is_default() -> None:
    assert infer_task("bert", None, supported_tasks(get_spec("bert"))) == "default"


def test_infer_task_unknown_head() -> None:
    with pytest.raises(UnsupportedTaskError, match="pass --task"):
        infer_task("bert", ["BertForPreTraining"], supported_tasks(get_spec("bert")))


def test_not_exportable_types_have_no_tasks_and_a_reason() -> None:
    from exporter.support import not_exportable

    for name in ("longformer",):
        assert supported_tasks(get_spec(name)) == ()
        assert not_exportable(get_spec(name))["*"]
        assert f"| `{name}` | every task |" in support_table_markdown()


def test_vision_models_get_no_text_heads() -> None:
    assert supported_tasks(get_spec("vit")) == ("default", "image-classification")


def test_seed_architectures_are_all_supported() -> None:
    seed = {
        "albert", "beit", "bert", "big_bird", "camembert", "convbert", "data2vec-text", "data2vec-vision",
        "deit", "distilbert", "electra", "flaubert", "ibert", "layoutlm", "mobilebert", "perceiver",
        "roberta", "roformer", "squeezebert", "vit", "xlm", "xlm-roberta", "xlm-roberta-xl",
    }  # fmt: skip
    assert seed <= set(support_matrix())


def test_support_table_lists_every_architecture() -> None:
    table = support_table_markdown()
    for model_type in support_matrix():
        assert f"| `{model_type}` |" in table


def test_multiple_choice_for_every_type_transformers_has_a_head_for() -> None:
    """4.38 registered multiple-choice for 20 types; those still in transformers (longformer aside) have it."""
    old = {
        "albert", "bert", "big_bird", "camembert", "convbert", "data2vec-text", "deberta-v2", "distilbert",
        "electra", "flaubert", "ibert", "mobilebert", "rembert", "roberta", "roformer", "squeezebert", "xlm",
        "xlm-roberta",
    }  # fmt: skip
    matrix = support_matrix()
    assert {name for name in old if "multiple-choice" in matrix[name]} == old


def test_missing_old_types_are_supported() -> None:
    """The types of transformers 4.38's list the seed lacked (issue 11), by task."""
    matrix = support_matrix()
    expected = {
        "deberta": "question-answering",
        "deberta-v2": "multiple-choice",
        "bloom": "causal-lm-with-past",
        "codegen": "causal-lm-with-past",
        "mt5": "seq2seq-lm-with-past",
        "longt5": "seq2seq-lm-with-past",
        "rembert": "causal-lm",
        "resnet": "image-classification",
        "convnext": "image-classification",
        "swin": "image-classification",
        "levit": "image-classification",
        "mobilenet_v1": "image-classification",
        "mobilenet_v2": "semantic-segmentation",
        "mobilevit": "semantic-segmentation",
        "poolformer": "image-classification",
        "segformer": "semantic-segmentation",
        "yolos": "object-detection",
        "layoutlmv3": "token-classification",
        "imagegpt": "image-classification",
        "whisper": "speech2seq-lm-with-past",
        "clip": "zero-shot-image-classification",
        "vision-encoder-decoder": "vision2seq-lm-with-past",
        "owlvit": "zero-shot-object-detection",
        "groupvit": "default",
    }
    assert {name: task for name, task in expected.items() if task in matrix.get(name, ())} == expected


def test_modern_families_are_supported() -> None:
    matrix = support_matrix()
    for name in ("mpnet", "modernbert", "nomic_bert"):
        assert "default" in matrix[name]
    assert "image-classification" in matrix["dinov2"]
    assert {"audio-classification", "ctc"} <= set(matrix["wav2vec2"]) & set(matrix["hubert"])
    assert "zero-shot-image-classification" in matrix["siglip"]
    decoders = ("gpt_neox", "phi", "falcon", "gemma", "starcoder2", "smollm3", "mixtral", "qwen2_moe", "qwen3_moe")
    assert all("causal-lm-with-past" in matrix[name] for name in decoders)


def test_every_pair_of_transformers_onnx_is_supported_or_refused_with_a_reason() -> None:
    """All 59 types and 265 (type, feature) pairs the old ``transformers.onnx`` registered (issue 11)."""
    from exporter.support import not_exportable

    data = json.loads((Path(__file__).parents[2] / "data" / "transformers_onnx_features.json").read_text())
    old = data["features"]
    assert (len(old), sum(len(features) for features in old.values())) == (59, 265)
    matrix = support_matrix()
    gaps = []
    for model_type, features in old.items():
        name = next((n for n in (model_type, model_type.replace("-", "_")) if n in matrix), None)
        if name is None:
            gaps.append((model_type, "every feature"))
            continue
        refused = not_exportable(get_spec(name))
        gaps += [(name, f) for f in features if f not in matrix[name] and not {"*", f} & set(refused)]
    assert gaps == []
