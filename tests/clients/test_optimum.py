"""Optimum's ``ORTModelFor*`` loads the exported files as the bot's pull request lays them out, and agrees with PyTorch.

Optimum pins transformers < 4.58, so it runs in its own venv (``tests/support/optimum.py``), in a
subprocess: ``run_optimum.py`` loads the repository folder built by ``repos.py`` with
``from_pretrained(folder, subfolder="onnx")`` and prints its input ids and output. The project's
PyTorch (transformers 5, this process) gives the reference:

* generation (GPT-2, Llama ``causal-lm-with-past``; T5 ``seq2seq-lm-with-past``, merged layout):
  Optimum's greedy tokens equal ``model.generate``'s, and its sessions opened the files transformers.js
  opens (``model.onnx``; ``encoder_model.onnx`` + ``decoder_model_merged.onnx``);
* classification (BERT): logits within 1e-4 of PyTorch's, and the same label.

Optimum's tokenizer (transformers 4.57) must also give the ids this process's gives: the tiny
checkpoints are saved by transformers 5 (``exporter/sample.py`` writes a tokenizer class both read).
The README's Optimum snippet is run as written, on the T5 folder.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.clients.repos import (
    CASES,
    NEW_TOKENS,
    PROMPT,
    assert_matches_pytorch,
    export_repo,
    generate,
    pytorch_model,
)
from tests.conftest import CLIENTS
from tests.support.optimum import ensure_optimum_venv

ROOT = CLIENTS.parents[1]
pytestmark = [pytest.mark.optimum, pytest.mark.slow, pytest.mark.heavy]
#: The ONNX files each client task opens.
FILES = {
    "text-generation": ["model.onnx"],
    "text2text-generation": ["decoder_model_merged.onnx", "encoder_model.onnx"],
    "text-classification": ["model.onnx"],
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``repo(model_type)``: its exported repository folder, built once per module."""
    built: dict[str, Path] = {}

    def make(model_type: str) -> Path:
        if model_type not in built:
            built[model_type] = export_repo(model_type, tmp_path_factory.mktemp("optimum") / model_type)
        return built[model_type]

    return make


def run_in_optimum(*args: str) -> Any:
    """The last stdout line, as JSON, of ``python *args`` in the Optimum venv."""
    command = [str(ensure_optimum_venv()), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"Optimum failed:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def _tokenizer_ids(folder: Path) -> list[int]:
    from transformers import AutoTokenizer

    ids: list[int] = AutoTokenizer.from_pretrained(folder)(PROMPT)["input_ids"]
    return ids


@pytest.mark.parametrize("model_type", ["gpt2", "llama", "t5", "bert"])
def test_optimum_matches_pytorch(model_type: str, repo: Callable[[str], Path]) -> None:
    folder = repo(model_type)
    task = CASES[model_type][1]
    result = run_in_optimum(str(CLIENTS / "run_optimum.py"), str(folder), task, str(NEW_TOKENS))
    assert result["input_ids"] == _tokenizer_ids(folder), "transformers 4 and 5 tokenize the checkpoint differently"
    assert result["files"] == FILES[task]
    assert_matches_pytorch(model_type, folder, result)


def readme_optimum_snippet() -> str:
    """The Python block of the README's "Use the files" section that loads with Optimum."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Use the files", 1)[1].split("\n### ", 1)[0]
    [snippet] = [block for block in re.findall(r"```python\n(.*?)```", section, re.DOTALL) if "optimum" in block]
    return snippet


def test_readme_optimum_snippet_gives_pytorchs_tokens(repo: Callable[[str], Path]) -> None:
    """The README's snippet, run as written with the repo id replaced by the local T5 folder."""
    folder = repo("t5")
    snippet = readme_optimum_snippet()
    assert '"alice/tiny-t5"' in snippet and f"max_new_tokens={NEW_TOKENS}" in snippet and PROMPT in snippet
    code = snippet.replace('"alice/tiny-t5"', repr(str(folder)))
    code += "\nimport json\nprint(json.dumps(tokens[0].tolist()))\n"
    tokens = run_in_optimum("-c", code)
    assert tokens == generate(pytorch_model("t5", folder), _tokenizer_ids(folder))
