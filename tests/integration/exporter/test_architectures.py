"""Every supported architecture × task exports to both formats and validates on two shapes."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from exporter.axes import graph_axes
from exporter.merge import onnx_file
from exporter.run import ExportRequest, run_export
from exporter.sample import TINY_CONFIGS
from exporter.specs import get_spec
from exporter.support import support_matrix
from exporter.tasks import get_task

PAIRS = [(model_type, task) for model_type, tasks in support_matrix().items() for task in tasks]
SEQ2SEQ_COMPONENTS = ["encoder_model", "decoder_model", "decoder_with_past_model"]
#: Every dimension name a graph may carry (the others are fixed sizes).
NAMED_AXES = {
    "batch_size",
    "sequence_length",
    "past_sequence_length",
    "past_sequence_length + sequence_length",
    "encoder_sequence_length",
    "encoder_sequence_length_out",
    "decoder_sequence_length",
    "past_decoder_sequence_length",
    "past_decoder_sequence_length + decoder_sequence_length",
    "num_choices",
    "audio_sequence_length",
}
#: The default run's pairs: one representative per family and input kind, and every task at least once.
#: The rest of the matrix is marked ``exhaustive`` (``pytest -m exhaustive``, CI's ``.ci/run``): each
#: export is seconds of torch.export however tiny the model, and the other pairs differ from these
#: only by a head or a block transformers shares across architectures.
REPRESENTATIVES = {
    ("bert", "sequence-classification"),  # text encoder
    ("bert", "multiple-choice"),  # 3-D inputs: batch × num_choices × sequence
    ("bert", "causal-lm"),  # an encoder's causal head, exported as the checkpoint is
    ("distilbert", "question-answering"),
    ("deberta-v2", "masked-lm"),  # disentangled relative attention
    ("layoutlm", "token-classification"),  # bounding boxes
    ("layoutlmv3", "token-classification"),  # bounding boxes and the page's pixels
    ("imagegpt", "image-classification"),  # an image as colour-cluster ids
    ("perceiver", "default"),  # embedded inputs
    ("vit", "image-classification"),  # vision transformer
    ("resnet", "image-classification"),  # convolutional backbone
    ("segformer", "semantic-segmentation"),
    ("yolos", "object-detection"),  # logits + pred_boxes
    ("clip", "zero-shot-image-classification"),  # text and pixels together
    ("owlvit", "zero-shot-object-detection"),  # text queries and pixels → boxes
    ("wav2vec2", "ctc"),  # raw audio
    ("hubert", "audio-classification"),
    ("detr", "image-segmentation"),  # pixels + pixel_mask, a CNN backbone under a transformer
    ("whisper", "speech2seq-lm"),  # log-mel frames + decoder ids
    ("whisper", "speech2seq-lm-with-past"),  # encoder on frames + merged decoder without an encoder mask
    ("vision-encoder-decoder", "vision2seq-lm"),  # pixels + decoder ids
    ("vision-encoder-decoder", "vision2seq-lm-with-past"),  # encoder on pixels + merged decoder
    ("gpt2", "default"),
    ("gpt2", "sequence-classification"),
    ("gpt2", "causal-lm-with-past"),  # decoder with its cache
    ("llama", "causal-lm-with-past"),  # grouped-query attention, rotary positions
    ("mixtral", "causal-lm-with-past"),  # mixture of experts
    ("bart", "seq2seq-lm"),
    ("bart", "default-with-past"),
    ("t5", "seq2seq-lm-with-past"),  # encoder + two decoders
}


def group(model_type: str) -> tuple[str, str, tuple[str, ...]]:
    """Family, modality and input kinds: what the generic code treats differently."""
    spec = get_spec(model_type)
    return spec.family, spec.modality, tuple(sorted({inp.kind for inp in spec.inputs}))


def in_default_run(model_type: str, task: str) -> bool:
    """Whether the default (tier-1) run exports this pair; see :data:`REPRESENTATIVES`."""
    return (model_type, task) in REPRESENTATIVES


def _param(model_type: str, task: str) -> object:
    marks = [pytest.mark.slow] + ([] if in_default_run(model_type, task) else [pytest.mark.exhaustive])
    return pytest.param(model_type, task, marks=marks, id=f"{model_type}-{task}")


def expected_components(model_type: str, task: str) -> list[str]:
    """The files a pair writes: a seq2seq model with past is split in three, everything else is one graph."""
    seq2seq = get_spec(model_type).family == "encoder-decoder" and get_task(task).base != "causal-lm"
    return SEQ2SEQ_COMPONENTS if get_task(task).with_past and seq2seq else ["model"]


def test_every_supported_pair_has_a_test() -> None:
    """The registry and the test matrix cannot drift apart: each pair needs a tiny config here."""
    untested = sorted({model_type for model_type, _ in PAIRS} - set(TINY_CONFIGS))
    assert not untested, f"supported but untested architectures: {untested}"
    assert len(PAIRS) >= 200
    with_past = {task for _, task in PAIRS if get_task(task).with_past}
    assert with_past == {
        "default-with-past",
        "causal-lm-with-past",
        "seq2seq-lm-with-past",
        "speech2seq-lm-with-past",
        "vision2seq-lm-with-past",
    }
    # every representative is a supported pair, and every task of the matrix is in the default run
    assert not REPRESENTATIVES - set(PAIRS), REPRESENTATIVES - set(PAIRS)
    assert {t for m, t in PAIRS if in_default_run(m, t)} == {t for _, t in PAIRS}
    # ... and every family, modality and set of input kinds the generic code treats differently
    default = [(m, t) for m, t in PAIRS if in_default_run(m, t)]
    missing = {group(m) for m, _ in PAIRS} - {group(m) for m, _ in default}
    assert not missing, f"no default-run pair for {missing}"
    assert len(default) <= 45  # the budget of the default run


@pytest.mark.parametrize(("model_type", "task"), [_param(m, t) for m, t in PAIRS])
def test_export_and_validate(model_type: str, task: str, checkpoint_factory, tmp_path: Path) -> None:
    checkpoint = checkpoint_factory(model_type, get_task(task).base)
    report = run_export(ExportRequest(model=str(checkpoint), task=task, output_dir=tmp_path))

    assert report.status == "passed", report.failures()
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["status"] == "passed"
    assert data["model_type"] == model_type
    assert data["task"] == task
    components = expected_components(model_type, task)
    expected = [(fmt, c) for fmt in ("onnx", "torchscript") for c in components]
    assert [(f["format"], f["component"]) for f in data["formats"]] == expected
    shapes = {json.dumps(s, sort_keys=True) for s in data["shapes"]}
    assert len(shapes) == 2
    for fmt in data["formats"]:
        assert len(fmt["checks"]) == 2
        assert fmt["method"] in ({"torchscript", "transformers"} if fmt["format"] == "onnx" else {"trace"})
        assert all(check["outputs"] for check in fmt["checks"])
    written = {f["path"] for f in data["files"]}
    assert {onnx_file(c) for c in components} | {f"{c}.pt" for c in components} <= written
    assert not {"decoder_model.onnx", "decoder_with_past_model.onnx"} & written  # merged: clients load one file
    for name in sorted(path for path in written if path.endswith(".onnx")):
        dims = graph_axes(onnx.load(str(tmp_path / name), load_external_data=False).graph)
        symbolic = {str(dim) for shape in dims.values() for dim in shape if isinstance(dim, str)}
        # an output's own quantity (frames of a speech encoder …) is named after that output
        symbolic -= {f"{out}_dim_{i}" for out, shape in dims.items() for i in range(1, len(shape))}
        assert symbolic <= NAMED_AXES, f"{name}: axes not named as clients read them: {symbolic - NAMED_AXES}"
        # every dimension is a name or a size (a client sizing a buffer from metadata reads 0 otherwise)
        assert all(dim != 0 for shape in dims.values() for dim in shape), f"{name}: dimensions left blank: {dims}"
        # transformers.js resolves only `batch_size` when it makes the first step's empty cache
        assert all(shape[0] == "batch_size" for shape in dims.values() if shape and isinstance(shape[0], str))
    if get_task(task).with_past:
        outputs = {out["name"] for fmt in data["formats"] for out in fmt["checks"][0]["outputs"]}
        assert any(name.startswith("present.1.") for name in outputs)
        # validated with a real, non-empty past of two different lengths
        past = {
            check["shape"][axis]
            for fmt in data["formats"]
            for check in fmt["checks"]
            for axis in ("past_sequence_length", "past_decoder_sequence_length")
            if axis in check["shape"]
        }
        assert len(past) == 2 and min(past) > 0
