"""transformers.js 3 and 4 load the exported files as the bot's pull request lays them out, and agree with PyTorch.

Each case builds a tiny checkpoint (config, weights, a real tokenizer), exports it into the
checkpoint's ``onnx/`` folder (the layout a merged bot PR leaves in the repository), runs
``run.mjs`` with one transformers.js major from npm, and compares:

* generation: transformers.js's greedy tokens equal ``model.generate``'s on the same input ids;
* classification: its logits are close to PyTorch's;
* Whisper: greedy tokens from log-mel frames (``input_features``, no tokenizer) equal ``model.generate``'s;
* q8 (``dtype: "q8"``): the BERT classifier, GPT-2 and T5 generation meet the report's q8 criterion,
  and the generating client runs the quantized files exactly as ONNX Runtime (Python) does.

The repositories and PyTorch's answers come from ``repos.py``. The default run has GPT-2 and T5
(fp32 and q8) with transformers.js 4; the rest of the matrix is ``heavy``. ``npm ci
--ignore-scripts`` in ``tests/clients`` installs both majors offline-safe (onnxruntime-node's CPU
binaries ship in the package; its install script only downloads optional extras).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from exporter.agreement import AGREEMENT
from exporter.report import Report
from exporter.run import ExportRequest, run_export
from exporter.sample import build_sample_checkpoint
from tests.clients.repos import (
    CASES,
    NEW_TOKENS,
    WIDE_INIT,
    assert_matches_pytorch,
    classifier_logits,
    export_repo,
    pytorch_model,
)
from tests.conftest import CLIENTS

DEFAULT_RUN = {("gpt2", "tjs4"), ("t5", "tjs4")}


def _param(model_type: str, library: str) -> Any:
    marks = [pytest.mark.node, pytest.mark.slow]
    if (model_type, library) not in DEFAULT_RUN:
        marks.append(pytest.mark.heavy)
    return pytest.param(model_type, library, marks=marks, id=f"{model_type}-{library}")


def run_client(
    library: str, folder: Path, task: str, dtype: str = "fp32", new_tokens: int = NEW_TOKENS
) -> dict[str, Any]:
    """``run.mjs``'s JSON for one transformers.js major, loading the ``dtype`` files."""
    command = ["node", str(CLIENTS / "run.mjs"), library, str(folder), task, str(new_tokens), dtype]
    done = subprocess.run(command, cwd=CLIENTS, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{library} failed on {folder.name}:\n{done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(("model_type", "library"), [_param(m, lib) for m in CASES for lib in ("tjs3", "tjs4")])
def test_transformers_js_matches_pytorch(model_type: str, library: str, tmp_path: Path) -> None:
    folder = export_repo(model_type, tmp_path / model_type)
    task = CASES[model_type][1]
    result = run_client(library, folder, task)
    assert_matches_pytorch(model_type, folder, result)


@pytest.mark.parametrize(
    "library",
    [pytest.param(lib, marks=[pytest.mark.node, pytest.mark.slow, pytest.mark.heavy]) for lib in ("tjs3", "tjs4")],
)
def test_transformers_js_q8_classifier_meets_the_reported_criterion(library: str, tmp_path: Path) -> None:
    """transformers.js loads ``model_quantized.onnx`` (its ``q8``) and agrees with PyTorch as the report says."""
    folder = export_repo("bert", tmp_path / "bert", dtypes=("fp32", "q8"))
    [variant] = [v for v in Report.read(folder / "onnx").variants if v.dtype == "q8"]
    assert variant.passed and variant.file == "model_quantized.onnx"
    result = run_client(library, folder, "text-classification", dtype="q8")
    expected = classifier_logits(pytorch_model("bert", folder), result["input_ids"])
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
    import torch
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


#: model type → (seed, config init) of a tiny checkpoint whose q8 export passes its criterion. A tiny
#: random T5's q8 often misses it (flat random logits: encoder cosine 0.94–0.98 at initializer
#: factor 3, one or two flipped positions of 19 at 1.5 for most seeds), and a failed variant fails
#: the export, so no PR carries it. Which seeds pass moves with package releases (seed 5 at 1.5 passed
#: on transformers 5.24 and missed by one position later). At factor 1.0 the q8 agrees everywhere but
#: greedy decoding repeats one token (a degenerate sample); seed 0 at 1.5 passes (decoder top-1 ≥ 94.7 %,
#: cosine ≥ 0.998) and generates varied tokens.
Q8_CHECKPOINTS: dict[str, tuple[int, dict[str, Any]]] = {
    "gpt2": (0, WIDE_INIT["gpt2"]),
    "t5": (0, {"initializer_factor": 1.5}),
}
Q8_NEW_TOKENS = 16


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(-1).astype(np.float64), b.reshape(-1).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize(
    ("model_type", "library"), [_param(m, lib) for m in Q8_CHECKPOINTS for lib in ("tjs3", "tjs4")]
)
def test_transformers_js_q8_generation_meets_the_reported_criterion(
    model_type: str, library: str, tmp_path: Path
) -> None:
    """transformers.js generates with the q8 files (``dtype: "q8"``) as validated, and agrees with PyTorch as reported.

    Quantized weights may change a greedy token, so equality with ``model.generate`` is not the
    criterion. Instead, on the client's own output sequence (prompt + 16 generated tokens):

    * the client ran the q8 file as the exporter validated it: its greedy tokens equal those of an
      ONNX Runtime (Python) greedy loop over the same ``*_quantized.onnx`` files, and its logits of one
      teacher-forced pass over that sequence equal ONNX Runtime's of the same file (1e-4) while
      differing from the fp32 file's (so the q8 file is the one it loaded);
    * those logits meet the report's q8 criterion against eager PyTorch on the same sequence: top-1
      agreement at every position ≥ 90 % and cosine similarity ≥ 0.99 (``exporter.agreement``).
    """
    import torch

    from tests.support.greedy import forward_decoder_only, forward_seq2seq, greedy_decoder_only, greedy_seq2seq

    seed, init = Q8_CHECKPOINTS[model_type]
    folder = export_repo(model_type, tmp_path / model_type, dtypes=("fp32", "q8"), seed=seed, **init)
    onnx = folder / "onnx"
    variants = [v for v in Report.read(onnx).variants if v.dtype == "q8"]
    assert variants and all(v.passed for v in variants), variants
    task = CASES[model_type][1]
    result = run_client(library, folder, task, dtype="q8", new_tokens=Q8_NEW_TOKENS)
    tokens, logits = result["tokens"], np.array(result["logits"]).reshape(result["logits_dims"])
    prompt, sequence = np.array([result["input_ids"]]), np.array([tokens])
    model = pytorch_model(model_type, folder)
    eos = model.config.eos_token_id
    with torch.no_grad():
        if task == "text-generation":
            generated = tokens[prompt.shape[1] :]
            loop = greedy_decoder_only(onnx, prompt, Q8_NEW_TOKENS, eos, suffix="_quantized")
            runtime, fp32 = (forward_decoder_only(onnx, sequence, suffix) for suffix in ("_quantized", ""))
            expected = model(input_ids=torch.tensor(sequence)).logits.numpy()
        else:
            generated = tokens[1:]
            loop = greedy_seq2seq(onnx, prompt, Q8_NEW_TOKENS, tokens[0], eos, suffix="_quantized")
            runtime, fp32 = (forward_seq2seq(onnx, prompt, sequence, suffix) for suffix in ("_quantized", ""))
            source = torch.tensor(prompt)
            expected = model(input_ids=source, decoder_input_ids=torch.tensor(sequence)).logits.numpy()
    assert len(set(generated)) > 1, f"degenerate sample {tokens}: the comparison would prove little"
    assert generated == loop
    np.testing.assert_allclose(logits, runtime, atol=1e-4, rtol=1e-4)
    assert not np.allclose(logits, fp32, atol=1e-4, rtol=1e-4), "the client ran the fp32 file, not the q8 one"
    top1 = float(np.mean(logits.argmax(-1) == expected.argmax(-1)))
    assert top1 >= AGREEMENT["q8"].top1, top1
    assert _cosine(logits, expected) >= AGREEMENT["q8"].cosine
