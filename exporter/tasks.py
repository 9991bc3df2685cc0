"""Task names (those of the old ``transformers.onnx``), the auto class behind each, and task inference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transformers.models.auto import modeling_auto

from exporter.errors import UnsupportedTaskError

WITH_PAST = "-with-past"


@dataclass(frozen=True)
class Task:
    """A task: the transformers auto class that builds its head and the mapping that says who has one."""

    name: str
    auto_class: str
    mapping: str
    modality: str = "any"
    #: A ``-with-past`` task: the graphs take the past key/values and return the present ones.
    with_past: bool = False
    #: Text inputs get a ``num_choices`` axis: ``batch × num_choices × sequence`` (multiple choice).
    choices: bool = False

    @property
    def base(self) -> str:
        """The task without its ``-with-past`` suffix (``causal-lm-with-past`` → ``causal-lm``)."""
        return self.name.removesuffix(WITH_PAST)

    def model_classes(self, model_type: str) -> tuple[str, ...]:
        """Class names transformers maps ``model_type`` to for this task (empty when it has none)."""
        names = getattr(modeling_auto, self.mapping).get(model_type, ())
        return (names,) if isinstance(names, str) else tuple(names)

    def auto(self) -> Any:
        """The auto class itself (``AutoModelForSequenceClassification`` …)."""
        import transformers

        return getattr(transformers, self.auto_class)


TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task("default", "AutoModel", "MODEL_MAPPING_NAMES"),
        Task("masked-lm", "AutoModelForMaskedLM", "MODEL_FOR_MASKED_LM_MAPPING_NAMES", "text"),
        Task("causal-lm", "AutoModelForCausalLM", "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES", "text"),
        Task("seq2seq-lm", "AutoModelForSeq2SeqLM", "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES", "text"),
        Task(
            "sequence-classification",
            "AutoModelForSequenceClassification",
            "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",
            "text",
        ),
        Task(
            "token-classification",
            "AutoModelForTokenClassification",
            "MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES",
            "text",
        ),
        Task(
            "question-answering",
            "AutoModelForQuestionAnswering",
            "MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES",
            "text",
        ),
        Task(
            "multiple-choice",
            "AutoModelForMultipleChoice",
            "MODEL_FOR_MULTIPLE_CHOICE_MAPPING_NAMES",
            "text",
            choices=True,
        ),
        Task(
            "image-classification",
            "AutoModelForImageClassification",
            "MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES",
            "vision",
        ),
        Task(
            "semantic-segmentation",
            "AutoModelForSemanticSegmentation",
            "MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES",
            "vision",
        ),
        Task(
            "image-segmentation",
            "AutoModelForImageSegmentation",
            "MODEL_FOR_IMAGE_SEGMENTATION_MAPPING_NAMES",
            "vision",
        ),
        Task("object-detection", "AutoModelForObjectDetection", "MODEL_FOR_OBJECT_DETECTION_MAPPING_NAMES", "vision"),
        Task(
            "zero-shot-image-classification",
            "AutoModelForZeroShotImageClassification",
            "MODEL_FOR_ZERO_SHOT_IMAGE_CLASSIFICATION_MAPPING_NAMES",
            "multimodal",
        ),
        Task(
            "zero-shot-object-detection",
            "AutoModelForZeroShotObjectDetection",
            "MODEL_FOR_ZERO_SHOT_OBJECT_DETECTION_MAPPING_NAMES",
            "multimodal",
        ),
        Task(
            "audio-classification",
            "AutoModelForAudioClassification",
            "MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES",
            "audio",
        ),
        Task("ctc", "AutoModelForCTC", "MODEL_FOR_CTC_MAPPING_NAMES", "audio"),
        Task("speech2seq-lm", "AutoModelForSpeechSeq2Seq", "MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES", "audio"),
        # 4.38's ``AutoModelForVision2Seq`` is transformers 5's image-text-to-text auto class.
        Task("vision2seq-lm", "AutoModelForImageTextToText", "MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES", "vision"),
        Task("default-with-past", "AutoModel", "MODEL_MAPPING_NAMES", "text", with_past=True),
        Task(
            "causal-lm-with-past", "AutoModelForCausalLM", "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES", "text", with_past=True
        ),
        Task(
            "seq2seq-lm-with-past",
            "AutoModelForSeq2SeqLM",
            "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES",
            "text",
            with_past=True,
        ),
        Task(
            "speech2seq-lm-with-past",
            "AutoModelForSpeechSeq2Seq",
            "MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES",
            "audio",
            with_past=True,
        ),
        Task(
            "vision2seq-lm-with-past",
            "AutoModelForImageTextToText",
            "MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES",
            "vision",
            with_past=True,
        ),
    )
}
AUTO = "auto"


def get_task(name: str) -> Task:
    """The task called ``name``, or a one-line error listing the valid names."""
    try:
        return TASKS[name]
    except KeyError:
        valid = ", ".join([AUTO, *TASKS])
        raise UnsupportedTaskError(f"unknown task {name!r}; valid tasks: {valid}") from None


def infer_task(model_type: str, architectures: list[str] | None, supported: tuple[str, ...]) -> str:
    """The task whose head is the checkpoint's ``config.architectures[0]``; ``default`` when none is named.

    Only tasks in ``supported`` are considered, so the answer is always exportable; a ``-with-past``
    task is never inferred (it is a choice of graph, not of head): pass it with ``--task``.
    """
    if not architectures:
        return "default"
    architecture = architectures[0]
    # Most specific first: a class can sit in two mappings (XLMWithLMHeadModel is masked- and causal-lm).
    for name in supported:
        if name != "default" and not TASKS[name].with_past and architecture in TASKS[name].model_classes(model_type):
            return name
    if architecture in TASKS["default"].model_classes(model_type):
        return "default"
    raise UnsupportedTaskError(
        f"cannot infer the task of {architecture} ({model_type}); pass --task, one of: {', '.join(supported)}"
    )
