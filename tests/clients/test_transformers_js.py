"""transformers.js 3 and 4 load the exported files as the bot's pull request lays them out, and agree with PyTorch.

Each case builds a tiny checkpoint (config, weights, a real tokenizer), exports it into the
checkpoint's ``onnx/`` folder (the layout a merged bot PR leaves in the repository), runs
``run.mjs`` with one transformers.js major from npm, and compares:

* generation: transformers.js's greedy tokens equal ``model.generate``'s on the same input ids;
* classification: its logits are close to PyTorch's.

The repositories and PyTorch's answers come from ``repos.py``. The default run has GPT-2 and T5
with transformers.js 4; the rest of the matrix is ``heavy``. ``npm ci --ignore-scripts`` in ``tests/clients`` installs both
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

from exporter.agreement import AGREEMENT
from exporter.report import Report
from tests.clients.repos import CASES, NEW_TOKENS, classifier_logits, export_repo, generate, pytorch_model
from tests.conftest import CLIENTS

DEFAULT_RUN = {("gpt2", "tjs4"), ("t5", "tjs4")}


def _param(model_type: str, library: str) -> Any:
    marks = [pytest.mark.node, pytest.mark.slow]
    if (model_type, library) not in DEFAULT_RUN:
        marks.append(pytest.mark.heavy)
    return pytest.param(model_type, library, marks=marks, id=f"{model_type}-{library}")


def run_client(library: str, folder: Path, task: str, dtype: str = "fp32") -> dict[str, Any]:
    """``run.mjs``'s JSON for one transformers.js major, loading the ``dtype`` files."""
    command = ["node", str(CLIENTS / "run.mjs"), library, str(folder), task, str(NEW_TOKENS), dtype]
    done = subprocess.run(command, cwd=CLIENTS, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{library} failed on {folder.name}:\n{done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(("model_type", "library"), [_param(m, lib) for m in CASES for lib in ("tjs3", "tjs4")])
def test_transformers_js_matches_pytorch(model_type: str, library: str, tmp_path: Path) -> None:
    folder = export_repo(model_type, tmp_path / model_type)
    task = CASES[model_type][1]
    result = run_client(library, folder, task)
    model = pytorch_model(model_type, folder)
    if task == "text-classification":
        expected = classifier_logits(model, result["input_ids"])
        np.testing.assert_allclose(np.array(result["logits"]), expected, atol=1e-4)
        assert result["label"] == model.config.id2label[int(expected.argmax())]
        return
    expected = generate(model, result["input_ids"])
    new = expected[len(result["input_ids"]) :] if task == "text-generation" else expected[1:]
    assert len(set(new)) > 1, f"degenerate sample {expected}: the comparison would prove little"
    assert result["tokens"] == expected


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
