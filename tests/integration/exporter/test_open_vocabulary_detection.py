"""OWL-ViT's detector reads every text query of every image in one ``input_ids`` batch
(``images × queries`` rows): the exported graph must take more queries than it was traced with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from exporter.run import ExportRequest, run_export


@pytest.mark.slow
@pytest.mark.exhaustive
def test_owlvit_detector_takes_several_queries_per_image(checkpoint_factory, tmp_path: Path) -> None:
    import onnxruntime as ort
    from transformers import AutoModelForZeroShotObjectDetection

    checkpoint = checkpoint_factory("owlvit", "zero-shot-object-detection")
    report = run_export(ExportRequest(model=str(checkpoint), task="zero-shot-object-detection", output_dir=tmp_path))
    assert report.status == "passed", report.failures()
    model = AutoModelForZeroShotObjectDetection.from_pretrained(checkpoint).eval()
    generator = torch.Generator().manual_seed(0)
    queries = torch.randint(5, 128, (3, 7), generator=generator)  # one image, three queries
    inputs = {
        "input_ids": queries,
        "attention_mask": torch.ones_like(queries),
        "pixel_values": torch.randn(1, 3, 32, 32, generator=generator),
    }
    with torch.no_grad():
        expected = model(**inputs)
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    logits, boxes = session.run(["logits", "pred_boxes"], {name: t.numpy() for name, t in inputs.items()})
    assert logits.shape == (1, 16, 3)  # a score per patch and query
    np.testing.assert_allclose(logits, expected.logits.numpy(), atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(boxes, expected.pred_boxes.numpy(), atol=1e-4, rtol=1e-4)
    traced = torch.jit.load(str(tmp_path / "model.pt"))
    with torch.no_grad():
        outputs = traced(*(inputs[name] for name in ("input_ids", "attention_mask", "pixel_values")))
    torch.testing.assert_close(outputs[0], expected.logits, atol=1e-4, rtol=1e-4)
