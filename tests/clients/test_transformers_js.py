"""transformers.js 3 and 4 load the exported files as the bot's pull request lays them out, and agree with PyTorch.

Each case builds a tiny checkpoint (config, weights, a real tokenizer), exports it into the
checkpoint's ``onnx/`` folder (the layout a merged bot PR leaves in the repository), runs
``run.mjs`` with one transformers.js major from npm, and compares:

* generation: transformers.js's greedy tokens equal ``model.generate``'s on the same input ids;
* classification: its logits are close to PyTorch's;
* Whisper: greedy tokens from log-mel frames (``input_features``, no tokenizer) equal ``model.generate``'s.

Weights are wider than the usual init, so a random model does not repeat one token forever, and
a test refuses a degenerate sample. The default run has GPT-2 and T5 with transformers.js 4; the
rest of the matrix is ``heavy``. ``npm ci --ignore-scripts`` in ``tests/clients`` installs both
majors offline-safe (onnxruntime-node's CPU binaries ship in the package; its install script only
downloads optional extras).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from exporter.agreement import AGREEMENT
from exporter.report import Report
from exporter.run import ExportRequest, run_export
from exporter.sample import build_sample_checkpoint
from tests.conftest import CLIENTS

NEW_TOKENS = 8
#: Wider weights than the 0.02 init (see tests/integration/exporter/test_generation.py).
WIDE_INIT: dict[str, dict[str, Any]] = {
    "gpt2": {"initializer_range": 0.3},
    "llama": {"initializer_range": 0.3},
    "t5": {"initializer_factor": 3.0},
    "bart": {"init_std": 0.3},
    "bert": {},
}
#: model type → (exporter task, transformers.js task)
CASES = {
    "gpt2": ("causal-lm-with-past", "text-generation"),
    "llama": ("causal-lm-with-past", "text-generation"),
    "t5": ("seq2seq-lm-with-past", "text2text-generation"),
    "bart": ("seq2seq-lm-with-past", "text2text-generation"),
    "bert": ("sequence-classification", "text-classification"),
}
DEFAULT_RUN = {("gpt2", "tjs4"), ("t5", "tjs4")}


def _param(model_type: str, library: str) -> Any:
    marks = [pytest.mark.node, pytest.mark.slow]
    if (model_type, library) not in DEFAULT_RUN:
        marks.append(pytest.mark.heavy)
    return pytest.param(model_type, library, marks=marks, id=f"{model_type}-{library}")


def export_repo(model_type: str, folder: Path, dtypes: tuple[str, ...] = ("fp32",)) -> Path:
    """A repository folder as a merged bot PR leaves it: checkpoint files plus the export under ``onnx/``."""
    task = CASES[model_type][0]
    base = task.removesuffix("-with-past")
    build_sample_checkpoint(folder, model_type, base, **WIDE_INIT[model_type])
    # Wide weights give larger activations: an absolute tolerance scaled to them (the tokens are the test).
    request = ExportRequest(
        model=str(folder), task=task, output_dir=folder / "onnx", formats=("onnx",), atol=1e-3, dtypes=dtypes
    )
    report = run_export(request)
    assert report.status == "passed", report.failures()
    return folder


def run_client(library: str, folder: Path, task: str, dtype: str = "fp32") -> dict[str, Any]:
    """``run.mjs``'s JSON for one transformers.js major, loading the ``dtype`` files."""
    command = ["node", str(CLIENTS / "run.mjs"), library, str(folder), task, str(NEW_TOKENS), dtype]
    done = subprocess.run(command, cwd=CLIENTS, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{library} failed on {folder.name}:\n{done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _generate(model: Any, input_ids: list[int]) -> list[int]:
    ids = torch.tensor([input_ids])
    with torch.no_grad():
        output = model.generate(
            ids, attention_mask=torch.ones_like(ids), do_sample=False, num_beams=1, max_new_tokens=NEW_TOKENS
        )
    tokens: list[int] = output[0].tolist()
    return tokens


@pytest.mark.parametrize(("model_type", "library"), [_param(m, lib) for m in CASES for lib in ("tjs3", "tjs4")])
def test_transformers_js_matches_pytorch(model_type: str, library: str, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoModelForSequenceClassification

    folder = export_repo(model_type, tmp_path / model_type)
    task = CASES[model_type][1]
    result = run_client(library, folder, task)
    if task == "text-classification":
        model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
        ids = torch.tensor([result["input_ids"]])
        with torch.no_grad():
            expected = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0].numpy()
        np.testing.assert_allclose(np.array(result["logits"]), expected, atol=1e-4)
        assert result["label"] == model.config.id2label[int(expected.argmax())]
        return
    auto = AutoModelForCausalLM if task == "text-generation" else AutoModelForSeq2SeqLM
    expected = _generate(auto.from_pretrained(folder).eval(), result["input_ids"])
    new = expected[len(result["input_ids"]) :] if task == "text-generation" else expected[1:]
    assert len(set(new)) > 1, f"degenerate sample {expected}: the comparison would prove little"
    assert result["tokens"] == expected


@pytest.mark.parametrize(
    "library",
    [pytest.param(lib, marks=[pytest.mark.node, pytest.mark.slow, pytest.mark.heavy]) for lib in ("tjs3", "tjs4")],
)
def test_transformers_js_q8_classifier_meets_the_reported_criterion(library: str, tmp_path: Path) -> None:
    """transformers.js loads ``model_quantized.onnx`` (its ``q8``) and agrees with PyTorch as the report says."""
    from transformers import AutoModelForSequenceClassification

    folder = export_repo("bert", tmp_path / "bert", dtypes=("fp32", "q8"))
    [variant] = [v for v in Report.read(folder / "onnx").variants if v.dtype == "q8"]
    assert variant.passed and variant.file == "model_quantized.onnx"
    result = run_client(library, folder, "text-classification", dtype="q8")
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    ids = torch.tensor([result["input_ids"]])
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0].numpy()
    got = np.array(result["logits"])
    cosine = float(got @ expected / (np.linalg.norm(got) * np.linalg.norm(expected)))
    assert int(got.argmax()) == int(expected.argmax())
    assert cosine >= AGREEMENT["q8"].cosine, cosine
    assert not np.allclose(got, expected, atol=1e-6), "the q8 file gave fp32's exact logits: not the quantized one"


@pytest.mark.parametrize(
    "library",
    [pytest.param(lib, marks=[pytest.mark.node, pytest.mark.slow, pytest.mark.heavy]) for lib in ("tjs3", "tjs4")],
)
def test_transformers_js_whisper_generates_from_input_features(library: str, tmp_path: Path) -> None:
    """Whisper with past (``encoder_model.onnx`` + ``decoder_model_merged.onnx``): transformers.js's
    ``generate`` on log-mel frames gives ``model.generate``'s tokens, start token included."""
    from transformers import AutoModelForSpeechSeq2Seq

    folder = tmp_path / "whisper"
    build_sample_checkpoint(folder, "whisper", "speech2seq-lm", init_std=0.3)
    request = ExportRequest(
        model=str(folder), task="speech2seq-lm-with-past", output_dir=folder / "onnx", formats=("onnx",), atol=1e-3
    )
    assert run_export(request).status == "passed"
    model = AutoModelForSpeechSeq2Seq.from_pretrained(folder).eval()
    config = model.config
    features = torch.randn(
        1, config.num_mel_bins, 2 * config.max_source_positions, generator=torch.Generator().manual_seed(0)
    )
    (folder / "input_features.json").write_text(
        json.dumps({"dims": list(features.shape), "data": features.flatten().tolist()})
    )
    with torch.no_grad():
        generated = model.generate(input_features=features, do_sample=False, num_beams=1, max_new_tokens=NEW_TOKENS)
    expected: list[int] = generated[0].tolist()
    if expected[0] != config.decoder_start_token_id:  # Whisper's generate may leave the start token out
        expected = [config.decoder_start_token_id, *expected]
    assert len(set(expected[1:])) > 1, f"degenerate sample {expected}: the comparison would prove little"
    assert run_client(library, folder, "speech2seq-generation")["tokens"] == expected
