"""Both kinds of checkpoint the old ``transformers.onnx`` tripped on export and validate here.

It wanted a ``pytorch_model.bin`` ("There should be a pytorch_model.bin") and, on current torch,
failed its own input check ("Model and config inputs doesn't match"). Here a safetensors-only folder
and a ``.bin``-only folder (``torch.save`` of a plain state dict) both export, validate, and the
exported ONNX model reproduces the very model the test saved, so the weights were really read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from exporter import ExportRequest, run_export
from exporter.sample import tiny_config

TASK = "sequence-classification"


def _model() -> Any:
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(7)
    return AutoModelForSequenceClassification.from_config(tiny_config("distilbert", TASK)).eval()


def _save_safetensors(model: Any, path: Path) -> None:
    model.save_pretrained(path)


def _save_bin(model: Any, path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(path)
    torch.save(model.state_dict(), path / "pytorch_model.bin")


def _onnx_logits(onnx_path: Path, ids: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feeds = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
    return np.asarray(session.run(["logits"], {i.name: feeds[i.name] for i in session.get_inputs()})[0])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("save", "weights"),
    [(_save_safetensors, "model.safetensors"), (_save_bin, "pytorch_model.bin")],
    ids=["safetensors-only", "bin-only"],
)
def test_checkpoint_kind_exports_and_validates(save: Any, weights: str, tmp_path: Path) -> None:
    model = _model()
    checkpoint = tmp_path / "checkpoint"
    save(model, checkpoint)
    weight_files = sorted(p.name for p in checkpoint.iterdir() if p.suffix in (".bin", ".safetensors"))
    assert weight_files == [weights]

    report = run_export(ExportRequest(model=str(checkpoint), output_dir=tmp_path / "out", task=TASK))

    assert report.status == "passed"
    assert {fmt.format for fmt in report.formats} == {"onnx", "torchscript"}
    assert len({tuple(s.items()) for s in report.shapes}) == 2
    ids = torch.randint(5, 128, (2, 9), generator=torch.Generator().manual_seed(3))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask).logits.numpy()
    np.testing.assert_allclose(_onnx_logits(tmp_path / "out" / "model.onnx", ids, mask), expected, atol=1e-4)
