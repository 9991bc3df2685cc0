"""Load an exported repository folder with Optimum's ``ORTModelFor*`` and print what it computes, as JSON.

Runs in the Optimum venv (``tests/support/optimum.py``), not the project's: it imports neither
the project nor pytest.

    python run_optimum.py <folder> <task> [new_tokens]

<folder> is laid out as the bot's pull request leaves a repository: config.json, the tokenizer
files and onnx/ (``model.onnx``, or ``encoder_model.onnx`` + ``decoder_model_merged.onnx``), loaded
as a user would: ``from_pretrained(folder, subfolder="onnx")``. Tasks, as in ``run.mjs``:

  text-generation       greedy decoding of a causal LM: {"input_ids": [...], "tokens": [...]}
  text2text-generation  greedy decoding of a seq2seq LM: the same
  text-classification   {"input_ids": [...], "logits": [...], "label": "..."}

Every result also says which ONNX files the model's sessions opened (``files``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from optimum.onnxruntime import ORTModelForCausalLM, ORTModelForSeq2SeqLM, ORTModelForSequenceClassification
from transformers import AutoTokenizer

PROMPT = "the model reads a tiny random text"
MODELS = {
    "text-generation": ORTModelForCausalLM,
    "text2text-generation": ORTModelForSeq2SeqLM,
    "text-classification": ORTModelForSequenceClassification,
}


def _files(model: object) -> list[str]:
    """Names of the ONNX files the model's sessions were created from."""
    parts = [model, *(getattr(model, name, None) for name in ("encoder", "decoder", "decoder_with_past"))]
    paths = [getattr(part, "path", None) for part in parts]
    return sorted(path.name for path in paths if isinstance(path, Path))


def main(folder: str, task: str, new_tokens: int) -> dict[str, object]:
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = MODELS[task].from_pretrained(folder, subfolder="onnx")
    inputs = tokenizer(PROMPT, return_tensors="pt")
    result: dict[str, object] = {"input_ids": inputs["input_ids"][0].tolist(), "files": _files(model)}
    if task == "text-classification":
        with torch.no_grad():
            logits = model(**inputs).logits[0]
        result |= {"logits": logits.tolist(), "label": model.config.id2label[int(logits.argmax())]}
    else:
        # ids and mask only: the tiny checkpoints' word-piece tokenizer also returns token_type_ids
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        tokens = model.generate(ids, attention_mask=mask, max_new_tokens=new_tokens, do_sample=False, num_beams=1)
        result["tokens"] = tokens[0].tolist()
    return result


if __name__ == "__main__":
    folder, task, *rest = sys.argv[1:]
    print(json.dumps(main(folder, task, int(rest[0]) if rest else 8)))
